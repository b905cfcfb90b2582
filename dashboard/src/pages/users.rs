//! Users and roles of a tenant: search, cursor pages (sorted by identity), invite or create a
//! user (with a role and an optional password); per user: disable/enable, reset the password,
//! reset MFA, assign a role and revoke one (a user's passkeys: [`super::passkeys`]) — each destructive one confirmed first.

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{AddedMember, Member, NewMember, Page, PasswordReset};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::USERS;
use crate::page::AdminSession;
use crate::scope::{chosen_tenant, form_tenant, section_url, tenant_api, tenant_scope};
use crate::widgets::{
    ListSort, Sorts, after_param, badge, choose_tenant, hidden, pager, sort_links, tq, urlencode,
};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/users", get(users).post(invite_user))
        .route(
            "/users/{uid}/status",
            get(status_confirm).post(change_status),
        )
        .route(
            "/users/{uid}/password",
            get(password_page).post(reset_password),
        )
        .route("/users/{uid}/roles", get(role_confirm).post(change_role))
        .route("/users/{uid}/mfa", get(mfa_confirm).post(reset_mfa))
}

const USER_SORTS: Sorts = &[("created", "Created"), ("email", "Email"), ("name", "Name")];

#[derive(Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    search: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    fn of(tid: &str) -> Self {
        Self {
            tenant: tid.to_owned(),
            ..Self::default()
        }
    }
}

async fn users(admin: AdminSession, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    users_page(&admin, &q, Outcome::none()).await
}

async fn users_page(
    admin: &AdminSession,
    q: &ListQuery,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let sort = ListSort::parse(&q.sort, &q.order, USER_SORTS, false)
        .ok_or_else(|| PageError::invalid_sort(admin, USERS, USER_SORTS))?;
    let mut scope = tenant_scope(admin, &q.tenant, USERS).await?;
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, choose_tenant()).into_any();
        return Ok(admin.render_with(USERS.active, USERS.title, content, outcome.status, None));
    }
    let search = q.search.trim();
    let path = format!(
        "{}?limit=50&search={}&{}{}",
        tenant_api(&tid, "users", "", ""),
        urlencode(search),
        sort.query(),
        after_param(q.after.trim())
    );
    let list: Page<Member> = admin
        .identity()
        .get(&path)
        .await
        .map_err(|e| PageError::api(admin, USERS.active, USERS.title, e))?;
    let here = format!(
        "{}&search={}",
        section_url(admin, USERS, &tid),
        urlencode(search)
    );
    let first = format!("{here}&{}", sort.query());
    let next = list
        .next_after
        .as_ref()
        .map(|n| format!("{first}{}", after_param(n)));
    let content = (
        outcome.message,
        header,
        view(
            admin.base(),
            admin.csrf(),
            &tid,
            search,
            &list.items,
            pager(first, next),
            sort_links(&here, USER_SORTS, &sort),
        ),
    )
        .into_any();
    Ok(admin.render_with(USERS.active, USERS.title, content, outcome.status, None))
}

/// The fields of every user form (each form sends those it needs).
#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    confirm: String,
}

async fn invite_user(form: CsrfForm<UserForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    let role = if f.role.is_empty() { "User" } else { &f.role };
    let new = NewMember {
        email: f.email.trim().to_owned(),
        name: f.name.trim().to_owned(),
        password: Some(f.password.clone()).filter(|p| !p.is_empty()),
        roles: Some(vec![role.to_owned()]),
    };
    let added = admin
        .identity()
        .call::<_, AddedMember>(Method::POST, &tenant_api(&tid, "users", "", ""), Some(&new))
        .await;
    let outcome = outcome(
        admin,
        USERS,
        "Inviting the user",
        added,
        |added| match added {
            AddedMember::Invited(i) => format!(
                "{} has an account already and is invited ({}): the membership starts when they accept.",
                i.email,
                i.roles.join(", ")
            ),
            AddedMember::Member(m) => {
                format!("{} is now a member ({}).", m.email, m.roles.join(", "))
            }
        },
    )?;
    users_page(admin, &ListQuery::of(&tid), outcome).await
}

async fn get_user(admin: &AdminSession, tid: &str, uid: &str) -> Result<Member, PageError> {
    admin
        .identity()
        .get(&tenant_api(tid, "users", uid, ""))
        .await
        .map_err(|e| PageError::api(admin, USERS.active, USERS.title, e))
}

/// Disable or enable: the value of `to`, and its button.
fn toggle_action(to: &str) -> Option<(&'static str, &'static str)> {
    match to {
        "disable" => Some(("disable", "Disable")),
        "enable" => Some(("enable", "Enable")),
        _ => None,
    }
}

#[derive(Deserialize)]
struct ItemQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    role: String,
}

/// A user's confirmation page: the tenant (checked), the user, and the question.
async fn user_confirm(
    admin: &AdminSession,
    tenant: &str,
    uid: &str,
    action: &str,
    extra: Vec<(&'static str, String)>,
    question: impl FnOnce(&Member) -> String,
    button: &'static str,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(admin, tenant, USERS).await?;
    let u = get_user(admin, &tid, uid).await?;
    let mut fields = vec![("tenant", tid.clone())];
    fields.extend(extra);
    Ok(Confirm {
        path: format!("users/{}/{action}", urlencode(uid)),
        fields,
        title: button.into(),
        question: question(&u),
        button,
        cancel: format!("{}{}", USERS.active, tq(&tid)),
    }
    .page(admin, USERS))
}

async fn status_confirm(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let (to, label) =
        toggle_action(q.to.trim()).ok_or_else(|| PageError::not_found(&admin, USERS.active))?;
    let question = move |u: &Member| {
        if to == "disable" {
            format!(
                "Disable {}? Their sessions end and their refresh tokens are revoked at once.",
                u.email
            )
        } else {
            format!("Enable {} again?", u.email)
        }
    };
    user_confirm(
        &admin,
        &q.tenant,
        &uid,
        "status",
        vec![("to", to.into())],
        question,
        label,
    )
    .await
}

/// A user action's identity call, its outcome, and the users page of the tenant.
async fn user_action(
    admin: &AdminSession,
    tid: &str,
    what: &str,
    answer: Result<Member, crate::api::ApiError>,
    success: impl FnOnce(&Member) -> String,
) -> Result<Response, PageError> {
    let outcome = outcome(admin, USERS, what, answer, success)?;
    users_page(admin, &ListQuery::of(tid), outcome).await
}

async fn change_status(
    Path(uid): Path<String>,
    form: CsrfForm<UserForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    let (to, _) = toggle_action(&f.to).ok_or_else(|| PageError::not_found(admin, USERS.active))?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("users/{}/status", urlencode(&uid)),
        &[("tenant", tid.as_str()), ("to", to)],
    )?;
    let answer = admin
        .identity()
        .call(
            Method::POST,
            &tenant_api(&tid, "users", &uid, to),
            None::<&()>,
        )
        .await;
    user_action(admin, &tid, "Changing the user's status", answer, |u| {
        let now = if u.disabled { "disabled" } else { "enabled" };
        format!("{} is now {now}.", u.email)
    })
    .await
}

async fn password_page(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(&admin, &q.tenant, USERS).await?;
    let u = get_user(&admin, &tid, &uid).await?;
    Ok(admin.render(
        USERS.active,
        "Reset password",
        password_form(admin.base(), admin.csrf(), &tid, &u),
    ))
}

async fn reset_password(
    Path(uid): Path<String>,
    form: CsrfForm<UserForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("users/{}/password", urlencode(&uid)),
        &[("tenant", tid.as_str())],
    )?;
    let reset = PasswordReset {
        password: f.password.clone(),
    };
    let answer = admin
        .identity()
        .send(
            Method::POST,
            &tenant_api(&tid, "users", &uid, "password"),
            Some(&reset),
        )
        .await;
    let outcome = outcome(admin, USERS, "Resetting the password", answer, |_| {
        "The password was reset.".to_owned()
    })?;
    users_page(admin, &ListQuery::of(&tid), outcome).await
}

/// "Reset MFA?" for a user of the tenant.
async fn mfa_confirm(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let question = |u: &Member| {
        format!(
            "Reset the MFA of {}? Their authenticator app and recovery codes stop working; they sign in with the password alone, or enrol again where the tenant requires MFA.",
            u.email
        )
    };
    user_confirm(
        &admin,
        &q.tenant,
        &uid,
        "mfa",
        Vec::new(),
        question,
        "Reset MFA",
    )
    .await
}

/// Removes the user's TOTP secret and recovery codes (identity's `…/mfa/reset`).
async fn reset_mfa(
    Path(uid): Path<String>,
    form: CsrfForm<UserForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("users/{}/mfa", urlencode(&uid)),
        &[("tenant", tid.as_str())],
    )?;
    let answer = admin
        .identity()
        .send(
            Method::POST,
            &tenant_api(&tid, "users", &uid, "mfa/reset"),
            None::<&()>,
        )
        .await;
    let outcome = outcome(admin, USERS, "Resetting MFA", answer, |_| {
        "MFA was reset: the user signs in with the password alone until they enrol again."
            .to_owned()
    })?;
    users_page(admin, &ListQuery::of(&tid), outcome).await
}

async fn role_confirm(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let role = q.role.trim().to_owned();
    let extra = vec![("role", role.clone()), ("action", "revoke".to_owned())];
    let question = |u: &Member| {
        format!(
            "Revoke the role {role} from {}? It applies from their next token.",
            u.email
        )
    };
    user_confirm(
        &admin,
        &q.tenant,
        &uid,
        "roles",
        extra,
        question,
        "Revoke role",
    )
    .await
}

/// Assigns a role, or revokes one (confirmed).
async fn change_role(
    Path(uid): Path<String>,
    form: CsrfForm<UserForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    let revoke = f.action == "revoke";
    if revoke {
        Confirm::required(
            admin,
            &f.confirm,
            &format!("users/{}/roles", urlencode(&uid)),
            &[
                ("tenant", tid.as_str()),
                ("role", f.role.as_str()),
                ("action", "revoke"),
            ],
        )?;
    }
    let method = if revoke { Method::DELETE } else { Method::PUT };
    let path = tenant_api(
        &tid,
        "users",
        &uid,
        &format!("roles/{}", urlencode(&f.role)),
    );
    let answer = admin.identity().call(method, &path, None::<&()>).await;
    user_action(admin, &tid, "Changing the roles", answer, |u| {
        format!("Roles of {}: {}.", u.email, u.roles.join(", "))
    })
    .await
}

fn view(
    base: &str,
    csrf: &str,
    tenant: &str,
    search: &str,
    items: &[Member],
    pager: AnyView,
    sorts: AnyView,
) -> AnyView {
    let role_options = || {
        view! {
            <option value="User">"User"</option>
            <option value="Admin">"Admin"</option>
            <option value="Owner">"Owner"</option>
        }
    };
    let rows = items
        .iter()
        .map(|u| {
            let id = urlencode(&u.id);
            let (to, label) = if u.disabled {
                ("enable", "Enable…")
            } else {
                ("disable", "Disable…")
            };
            let status_href = format!("{base}users/{id}/status{}&to={to}", tq(tenant));
            let password_href = format!("{base}users/{id}/password{}", tq(tenant));
            let mfa_href = format!("{base}users/{id}/mfa{}", tq(tenant));
            let linked_href = format!("{base}users/{id}/identities{}", tq(tenant));
            let passkeys_href = format!("{base}users/{id}/passkeys{}", tq(tenant));
            let role_buttons = u
                .roles
                .iter()
                .map(|r| {
                    let href = format!(
                        "{base}users/{id}/roles{}&role={}&action=revoke",
                        tq(tenant),
                        urlencode(r)
                    );
                    view! { <a class="badge" title="Revoke…" href=href>{format!("{r} ✕")}</a> " " }
                })
                .collect_view();
            let assign = view! {
                <form method="post" action=format!("{base}users/{id}/roles") class="inline">
                    {hidden("csrf", csrf)}
                    {hidden("tenant", tenant)}
                    {hidden("action", "assign")}
                    <select name="role" aria-label="Role to assign">{role_options()}</select>
                    <button class="secondary" type="submit">"Assign"</button>
                </form>
            };
            view! {
                <tr>
                    <td><strong>{u.email.clone()}</strong><br/>{u.name.clone()}<br/><code class="muted">{u.id.clone()}</code></td>
                    <td>{badge(if u.disabled { "disabled" } else { "enabled" })}</td>
                    <td>{role_buttons}{assign}</td>
                    <td>
                        <a class="button secondary" href=status_href>{label}</a> " "
                        <a class="button secondary" href=password_href>"Reset password…"</a> " "
                        <a class="button secondary" href=mfa_href>"Reset MFA…"</a> " "
                        <a class="button secondary" href=linked_href>"Linked sign-ins"</a>
                        <a class="button secondary" href=passkeys_href>"Passkeys…"</a>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <form class="card" method="get" action=format!("{base}users")>
            {hidden("tenant", tenant)}
            <label for="search">"Search (email or name)"</label>
            <input type="text" id="search" name="search" value=search.to_owned() maxlength="100"/>
            <p><button class="secondary" type="submit" id="search-users">"Search"</button></p>
        </form>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"User"</th><th>"Status"</th><th>"Roles"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
        <h2>"Invite or create a user"</h2>
        <form class="card" method="post" action=format!("{base}users")>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="email">"Email"</label>
            <input type="text" id="email" name="email" required=true maxlength="320"/>
            <label for="user-name">"Name"</label>
            <input type="text" id="user-name" name="name" maxlength="200"/>
            <label for="password">"Initial password (optional; empty: the user needs a reset)"</label>
            <input type="password" id="password" name="password" autocomplete="new-password"/>
            <label for="role">"Role"</label>
            <select id="role" name="role">{role_options()}</select>
            <p class="muted">"An existing account with this email is invited: it keeps its password."</p>
            <p><button type="submit" id="invite-user">"Invite user"</button></p>
        </form>
    }
    .into_any()
}

fn password_form(base: &str, csrf: &str, tenant: &str, user: &Member) -> AnyView {
    let action = format!("{base}users/{}/password", urlencode(&user.id));
    view! {
        <form class="card" method="post" action=action>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <p>"New password for " <strong>{user.email.clone()}</strong>
               ". The tenant's password policy applies; the user's current password stops working."</p>
            <label for="new-password">"New password"</label>
            <input type="password" id="new-password" name="password" required=true autocomplete="new-password"/>
            {hidden("confirm", "yes")}
            <p><button class="danger" type="submit" id="reset-password">"Reset password"</button> " "
               <a class="button secondary" href=format!("{base}users{}", tq(tenant))>"Cancel"</a></p>
        </form>
    }
    .into_any()
}
