//! The admin API for tenants (`/admin/tenants`) and their users
//! (`/admin/tenants/{tid}/users…`).
//!
//! Who may call it is decided by [`crate::http::policy`] (written down in
//! `docs/authorization.md`): platform administrators everything; a tenant's Owners and Admins
//! (`admin.tenant`) their own tenant only — any other tenant id answers 404 exactly like a
//! tenant that does not exist.
//!
//! Users are global identities with memberships. A tenant admin sees and changes a user only
//! through the membership in their tenant; what is global about the user (password, MFA, name,
//! disabled) only when their tenant created the account. Adding an account that exists already
//! invites it: the membership exists once the invitee, signed in, accepts
//! (`/account/invitations`), and until then the inviter learns nothing about the account.

// `Problem` is the handlers' error type, returned by the helpers too.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on, post, put};
use serde::{Deserialize, Serialize};
use tansu_shared::Problem;

use crate::AppState;
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::events::{self, Event, Meta, ROLE_CHANGE, TENANT_CHANGE, USER_CHANGE};
use crate::http::{Action, Caller, Rank, Target};
use crate::paging::{Sort, SortQuery, next_cursor};
use crate::store::invitations::InvitationRow;
use crate::store::tenants::{MembershipRow, TenantRow};
use crate::store::users::UserRow;
use crate::store::{new_id, now_ms};
use crate::tenants::{
    self, ROLE_USER, STATUS_ACTIVE, STATUS_DELETED, STATUS_SUSPENDED, TenantPolicy, TenantView,
};
use serde_json::json;

pub fn router() -> crate::http::Routes<AppState> {
    crate::http::Routes::new()
        .route("/admin/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/admin/tenants/{tid}",
            get(get_tenant)
                .patch(update_tenant)
                .merge(set_status(MethodFilter::DELETE, STATUS_DELETED)),
        )
        .route(
            "/admin/tenants/{tid}/suspend",
            set_status(MethodFilter::POST, STATUS_SUSPENDED),
        )
        .route(
            "/admin/tenants/{tid}/activate",
            set_status(MethodFilter::POST, STATUS_ACTIVE),
        )
        .route(
            "/admin/tenants/{tid}/users",
            post(create_user).get(list_users),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}",
            get(get_user).patch(update_user).delete(remove_user),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/disable",
            set_user_disabled(true),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/enable",
            set_user_disabled(false),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/password",
            post(reset_password),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/mfa/reset",
            post(reset_mfa),
        )
        .route("/admin/tenants/{tid}/users/{uid}/roles", put(set_roles))
        .route("/admin/tenants/{tid}/invitations", get(list_invitations))
        .route(
            "/admin/tenants/{tid}/invitations/{id}",
            axum::routing::delete(revoke_invitation),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/roles/{role}",
            put(assign_role).delete(revoke_role),
        )
        .merge(crate::roles::router())
}

/// How long an invitation waits for its invitee.
const INVITATION_LIFETIME_MS: i64 = 14 * 24 * 3600 * 1000;

pub(crate) async fn audit(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    tenant_id: &str,
    kind: &str,
    details: serde_json::Value,
) {
    events::record(
        state,
        meta,
        Event {
            tenant_id: Some(tenant_id),
            kind,
            actor: caller.event_actor(),
            outcome: "success",
            details,
        },
    )
    .await;
}

pub(crate) fn invalid(problems: Vec<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
    )
    .with_detail(problems.join("; "))
    .with_extension("errors", problems)
}

/// The outcome of a store write addressing one row: 404 when the row was not there.
pub(crate) fn found<E: std::fmt::Display>(written: Result<bool, E>) -> Result<(), Problem> {
    match written {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::not_found()),
        Err(e) => Err(store_failed(&e)),
    }
}

pub(crate) fn conflict(detail: &str) -> Problem {
    Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail.to_owned())
}

/// The tenant `tid`, once the policy allows `action` on it (404 when it does not exist).
pub(crate) async fn tenant_for(
    state: &AppState,
    caller: &Caller,
    action: &Action<'_>,
    tid: &str,
) -> Result<TenantRow, Problem> {
    caller.may(action)?;
    state
        .store
        .tenant_by_id(tid)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)
}

// ---------------------------------------------------------------- tenants

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    slug: String,
    name: String,
    #[serde(default)]
    policy: Option<TenantPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantUpdate {
    slug: Option<String>,
    name: Option<String>,
    policy: Option<TenantPolicy>,
    status: Option<String>,
}

fn tenant_problems(t: &TenantRow, policy: &TenantPolicy) -> Vec<String> {
    let mut v = Vec::new();
    if !tenants::valid_slug(&t.slug) {
        v.push("slug: 3 to 63 characters of a-z 0-9 -, not a UUID".into());
    }
    if !tenants::valid_name(&t.name) {
        v.push("name: required, at most 200 characters".into());
    }
    if ![STATUS_ACTIVE, STATUS_SUSPENDED, STATUS_DELETED].contains(&t.status.as_str()) {
        v.push("status: active, suspended or deleted".into());
    }
    v.extend(policy.validate());
    v
}

async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(&Action::CreateTenant)?;
    let new: NewTenant = json_body(body).await?;
    let policy = new.policy.unwrap_or_default();
    let now = now_ms();
    let row = TenantRow {
        id: new_id(),
        slug: new.slug,
        name: new.name.trim().to_owned(),
        status: STATUS_ACTIVE.into(),
        policy: serde_json::to_string(&policy).map_err(|e| store_failed(&e))?,
        created_at: now,
        updated_at: now,
    };
    let problems = tenant_problems(&row, &policy);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    match state.store.insert_tenant(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(conflict("a tenant with this slug exists"));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %row.id, slug = %row.slug, "tenant created");
    audit(
        &state,
        &caller,
        &meta,
        &row.id,
        TENANT_CHANGE,
        json!({"action": "create", "slug": row.slug}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(TenantView::from(&row))).into_response())
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<String>,
    limit: Option<i64>,
    search: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 500)
    }

    /// The validated sort of the page (`allowed`: name → SQL expression).
    fn sort(&self, allowed: &[(&str, &'static str)]) -> Result<Sort, Problem> {
        Sort::parse(
            &SortQuery {
                sort: self.sort.clone(),
                order: self.order.clone(),
                after: self.after.clone(),
            },
            allowed,
        )
    }
}

/// `{"items": …, "next_after": …}`: a page of a sorted list and the cursor of the next one.
fn page_of<R, V: Serialize>(
    rows: &[R],
    limit: i64,
    sort: &Sort,
    key_and_id: impl Fn(&R) -> (String, String),
    view: impl Fn(&R) -> V,
) -> Json<serde_json::Value> {
    let next = next_cursor(rows, limit, sort, key_and_id);
    let items: Vec<V> = rows.iter().map(view).collect();
    Json(json!({ "items": items, "next_after": next }))
}

/// The sort keys of the tenant list (`created` = id, UUIDv7 creation order). Raw columns, so
/// a cursor holds exactly the stored value the keyset compares with.
const TENANT_SORTS: &[(&str, &str)] = &[
    ("created", ""),
    ("name", "name"),
    ("slug", "slug"),
    ("status", "status"),
];

async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.may(&Action::ListTenants)?;
    let (limit, sort) = (q.limit(), q.sort(TENANT_SORTS)?);
    let rows = state
        .store
        .list_tenants(&sort, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let key = q.sort.clone().unwrap_or_default();
    Ok(page_of(
        &rows,
        limit,
        &sort,
        |r| {
            let k = match key.as_str() {
                "name" => r.name.clone(),
                "slug" => r.slug.clone(),
                "status" => r.status.clone(),
                _ => String::new(),
            };
            (k, r.id.clone())
        },
        |r| TenantView::from(r),
    ))
}

async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<TenantView>, Problem> {
    Ok(Json(TenantView::from(
        &tenant_for(&state, &caller, &Action::ReadTenant(&tid), &tid).await?,
    )))
}

async fn save_tenant(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    mut row: TenantRow,
    update: TenantUpdate,
) -> Result<TenantRow, Problem> {
    let mut policy = TenantPolicy::of(&row);
    if let Some(v) = update.slug {
        row.slug = v;
    }
    if let Some(v) = update.name {
        row.name = v.trim().to_owned();
    }
    if let Some(v) = update.status {
        row.status = v;
    }
    if let Some(v) = update.policy {
        policy = v;
    }
    row.policy = serde_json::to_string(&policy).map_err(|e| store_failed(&e))?;
    row.updated_at = now_ms();
    let problems = tenant_problems(&row, &policy);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let updated = state.store.update_tenant(&row).await;
    state.tenant_status.invalidate(&row.id);
    match updated {
        Ok(true) => {}
        Ok(false) => return Err(Problem::not_found()),
        Err(e) if e.is_unique_violation() => {
            return Err(conflict("a tenant with this slug exists"));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %row.id, status = %row.status, "tenant updated");
    audit(
        state,
        caller,
        meta,
        &row.id,
        TENANT_CHANGE,
        json!({"action": "update", "status": row.status, "slug": row.slug}),
    )
    .await;
    Ok(row)
}

/// Platform admins change anything; a tenant's own admins (Owner/Admin) change only its
/// policy: name, slug and status stay the platform's (a tenant cannot reactivate or rename
/// itself). Another tenant answers 404, as everywhere.
async fn update_tenant(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Json<TenantView>, Problem> {
    let row = tenant_for(&state, &caller, &Action::UpdateTenantPolicy(&tid), &tid).await?;
    let update: TenantUpdate = json_body(body).await?;
    if update.slug.is_some() || update.name.is_some() || update.status.is_some() {
        caller.may(&Action::ChangeTenantIdentity).map_err(|_| {
            Problem::forbidden("tenant administrators change only their tenant's policy")
        })?;
    }
    let row = save_tenant(&state, &caller, &meta, row, update).await?;
    Ok(Json(TenantView::from(&row)))
}

/// The route setting the tenant's status (platform admins only): suspend, activate and
/// delete (marks the tenant deleted: its rows stay for the record; it signs nobody in).
fn set_status(method: MethodFilter, status: &'static str) -> MethodRouter<AppState> {
    on(
        method,
        move |State(state): State<AppState>,
              caller: Caller,
              meta: Meta,
              Path(tid): Path<String>| async move {
            let row = tenant_for(&state, &caller, &Action::ChangeTenantIdentity, &tid).await?;
            let update = TenantUpdate {
                status: Some(status.into()),
                ..TenantUpdate::default()
            };
            let row = save_tenant(&state, &caller, &meta, row, update).await?;
            Ok::<_, Problem>(Json(TenantView::from(&row)))
        },
    )
}

// ---------------------------------------------------------------- users

/// A user as a tenant's admin API shows it: the global identity and the roles in this tenant.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub disabled: bool,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn member_view(u: &UserRow, m: &MembershipRow) -> MemberView {
    MemberView {
        id: u.id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        disabled: u.disabled,
        tenant_id: m.tenant_id.clone(),
        roles: m.roles.clone(),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
    }
}

/// What the policy needs to know of a member.
fn target<'a>(u: &'a UserRow, m: &MembershipRow) -> Target<'a> {
    Target {
        user_id: &u.id,
        rank: Rank::of(&m.roles),
        platform_admin: u.platform_admin,
        home_tenant: u.home_tenant_id.as_deref(),
    }
}

/// The user `uid` through its membership in `tid` (404 when it has none, or when the policy
/// hides the user from the caller).
async fn member(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    uid: &str,
) -> Result<(TenantRow, UserRow, MembershipRow), Problem> {
    let tenant = tenant_for(state, caller, &Action::ReadMembers(tid), tid).await?;
    let m = state
        .store
        .membership(uid, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    let u = state
        .store
        .user_by_id(uid)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    caller.may(&Action::ReadMember {
        tid,
        target: target(&u, &m),
    })?;
    Ok((tenant, u, m))
}

/// [`member`], for an action on what is global about the user (name, password, MFA, disabled).
async fn member_identity(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    uid: &str,
) -> Result<(TenantRow, UserRow, MembershipRow), Problem> {
    let (tenant, u, m) = member(state, caller, tid, uid).await?;
    caller.may(&Action::ChangeIdentity {
        tid,
        target: target(&u, &m),
    })?;
    Ok((tenant, u, m))
}

/// The roles must exist in the tenant (built-in or custom).
async fn check_roles(state: &AppState, tenant_id: &str, roles: &[String]) -> Result<(), Problem> {
    for r in roles {
        if !crate::roles::exists(state, tenant_id, r)
            .await
            .map_err(|e| store_failed(&e))?
        {
            return Err(invalid(vec![format!(
                "roles: unknown role {:?} (Owner, Admin, User or a custom role of the tenant)",
                r.chars().take(64).collect::<String>()
            )]));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

pub(crate) fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 320
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// Creates a user in the tenant (the tenant is its home: it may later reset its
/// credentials), or, for an email that has an account already, invites it. A platform admin
/// adds an existing account at once; a tenant admin's invitation waits for the invitee to
/// accept it and answers 202 with the invitation only — nothing about the account.
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let add = Action::AddMember {
        tid: &tid,
        grants_owner: false,
    };
    let tenant = tenant_for(&state, &caller, &add, &tid).await?;
    let new: NewUser = json_body(body).await?;
    let email = new.email.trim().to_lowercase();
    let name = new.name.trim().to_owned();
    let mut problems = Vec::new();
    if !valid_email(&email) {
        problems.push("email: a valid address".to_owned());
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        problems.push("name: at most 200 characters".to_owned());
    }
    let policy = TenantPolicy::of(&tenant);
    if let Some(p) = &new.password {
        problems.extend(tenants::password_problems(p, &email, &name, &policy));
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let roles = dedup(new.roles.unwrap_or_else(|| vec![ROLE_USER.to_owned()]));
    caller.may(&Action::AddMember {
        tid: &tenant.id,
        grants_owner: Rank::of(&roles) == Rank::Owner,
    })?;
    check_roles(&state, &tenant.id, &roles).await?;
    let now = now_ms();
    let existing = state
        .store
        .user_by_email(&email)
        .await
        .map_err(|e| store_failed(&e))?;
    let user = match existing {
        Some(_) if !caller.is_platform() => {
            return invite(&state, &caller, &meta, &tenant, email, roles).await;
        }
        Some(u) => u,
        None => {
            // Without a password the account cannot sign in until a reset sets one.
            let password = match &new.password {
                Some(p) => p.clone(),
                None => crate::crypto::random_secret().map_err(|e| store_failed(&e))?,
            };
            let user = UserRow {
                id: new_id(),
                email: email.clone(),
                name: name.clone(),
                password_hash: state
                    .passwords
                    .hash(&password)
                    .await
                    .map_err(|e| store_failed(&e))?,
                tenant_id: None,
                roles: Vec::new(),
                disabled: false,
                platform_admin: false,
                home_tenant_id: Some(tenant.id.clone()),
                created_at: now,
                updated_at: now,
            };
            match state.store.insert_user(&user).await {
                Ok(()) => user,
                // Created meanwhile by someone else: an existing account, invited.
                Err(e) if e.is_unique_violation() && !caller.is_platform() => {
                    return invite(&state, &caller, &meta, &tenant, email, roles).await;
                }
                Err(e) if e.is_unique_violation() => state
                    .store
                    .user_by_email(&email)
                    .await
                    .map_err(|e| store_failed(&e))?
                    .ok_or_else(|| conflict("the user changed concurrently; retry"))?,
                Err(e) => return Err(store_failed(&e)),
            }
        }
    };
    if state
        .store
        .membership(&user.id, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?
        .is_some()
    {
        return Err(conflict("the user is already a member of this tenant"));
    }
    let m = MembershipRow {
        user_id: user.id.clone(),
        tenant_id: tenant.id.clone(),
        roles,
        created_at: now,
    };
    state
        .store
        .upsert_membership(&m)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %user.id, by = %caller.subject(), "member added");
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        USER_CHANGE,
        json!({"action": "add", "user": user.id, "roles": m.roles}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(member_view(&user, &m))).into_response())
}

/// An invitation as the tenant's admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationView {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub roles: Vec<String>,
    pub status: &'static str,
    pub created_at: String,
    pub expires_at: String,
}

impl From<&InvitationRow> for InvitationView {
    fn from(i: &InvitationRow) -> Self {
        Self {
            id: i.id.clone(),
            tenant_id: i.tenant_id.clone(),
            email: i.email.clone(),
            roles: i.roles.clone(),
            status: "pending",
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
        }
    }
}

/// Invites the account with `email` (which exists): 202 with the invitation. The answer is
/// the same whoever the account is (a platform administrator's invitation is stored like any
/// other, and can never be accepted), and says nothing about it.
async fn invite(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    tenant: &TenantRow,
    email: String,
    roles: Vec<String>,
) -> Result<Response, Problem> {
    let now = now_ms();
    let row = InvitationRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        email,
        roles,
        invited_by: caller.event_actor(),
        created_at: now,
        expires_at: now + INVITATION_LIFETIME_MS,
    };
    state
        .store
        .upsert_invitation(&row)
        .await
        .map_err(|e| store_failed(&e))?;
    audit(
        state,
        caller,
        meta,
        &tenant.id,
        USER_CHANGE,
        json!({"action": "invite", "invitation": row.id, "roles": row.roles}),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(InvitationView::from(&row))).into_response())
}

async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ReadMembers(&tid), &tid).await?;
    let rows = state
        .store
        .tenant_invitations(&tenant.id, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    let items: Vec<InvitationView> = rows.iter().map(InvitationView::from).collect();
    Ok(Json(json!({ "items": items })))
}

async fn revoke_invitation(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let add = Action::AddMember {
        tid: &tid,
        grants_owner: false,
    };
    let tenant = tenant_for(&state, &caller, &add, &tid).await?;
    found(state.store.delete_invitation(&tenant.id, &id).await)?;
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        USER_CHANGE,
        json!({"action": "revoke_invitation", "invitation": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The sort keys of a tenant's user list (`created` = user id).
const USER_SORTS: &[(&str, &str)] = &[("created", ""), ("email", "u.email"), ("name", "u.name")];

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ReadMembers(&tid), &tid).await?;
    let (limit, sort) = (q.limit(), q.sort(USER_SORTS)?);
    let search = q
        .search
        .as_deref()
        .map(|s| s.chars().take(100).collect::<String>());
    let mut rows = state
        .store
        .tenant_members(&tenant.id, search.as_deref(), &sort, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let key = q.sort.clone().unwrap_or_default();
    let key_and_id = |(u, _): &(UserRow, MembershipRow)| {
        let k = match key.as_str() {
            "email" => u.email.clone(),
            "name" => u.name.clone(),
            _ => String::new(),
        };
        (k, u.id.clone())
    };
    // The cursor is the page's own, before platform administrators are hidden from tenants.
    let next = next_cursor(&rows, limit, &sort, key_and_id);
    if !caller.is_platform() {
        rows.retain(|(u, _)| !u.platform_admin);
    }
    let items: Vec<MemberView> = rows.iter().map(|(u, m)| member_view(u, m)).collect();
    Ok(Json(json!({ "items": items, "next_after": next })))
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<Json<MemberView>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    Ok(Json(member_view(&u, &m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    name: Option<String>,
}

async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<Json<MemberView>, Problem> {
    let (_, mut u, m) = member_identity(&state, &caller, &tid, &uid).await?;
    let update: UserUpdate = json_body(body).await?;
    if let Some(name) = update.name {
        let name = name.trim().to_owned();
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(invalid(vec!["name: at most 200 characters".into()]));
        }
        u.name = name;
    }
    u.updated_at = now_ms();
    found(state.store.update_user_profile(&u).await)?;
    audit(
        &state,
        &caller,
        &meta,
        &tid,
        USER_CHANGE,
        json!({"action": "update", "user": u.id}),
    )
    .await;
    Ok(Json(member_view(&u, &m)))
}

async fn set_disabled(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    tid: &str,
    uid: &str,
    disabled: bool,
) -> Result<Json<MemberView>, Problem> {
    let (_, mut u, m) = member_identity(state, caller, tid, uid).await?;
    let now = now_ms();
    found(state.store.set_user_disabled(&u.id, disabled, now).await)?;
    u.disabled = disabled;
    u.updated_at = now;
    tracing::info!(tenant = %tid, user = %u.id, disabled, by = %caller.subject(), "user status changed");
    let action = if disabled { "disable" } else { "enable" };
    audit(
        state,
        caller,
        meta,
        tid,
        USER_CHANGE,
        json!({"action": action, "user": u.id}),
    )
    .await;
    Ok(Json(member_view(&u, &m)))
}

/// `POST …/disable` (`disabled`) or `…/enable`: a disabled user's sessions end and their
/// refresh token families are revoked.
fn set_user_disabled(disabled: bool) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              caller: Caller,
              meta: Meta,
              Path((tid, uid)): Path<(String, String)>| async move {
            set_disabled(&state, &caller, &meta, &tid, &uid, disabled).await
        },
    )
}

/// Removes the user from the tenant (the global identity stays).
async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, m) = member(&state, &caller, &tid, &uid).await?;
    caller.may(&Action::RemoveMember {
        tid: &tid,
        target: target(&u, &m),
    })?;
    state
        .store
        .delete_membership(&u.id, &tenant.id)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %u.id, by = %caller.subject(), "member removed");
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        USER_CHANGE,
        json!({"action": "remove", "user": u.id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    password: String,
}

/// Sets the user's password; their sessions end and their refresh token families are revoked
/// in the same transaction.
async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode, Problem> {
    let (tenant, u, _) = member_identity(&state, &caller, &tid, &uid).await?;
    let reset: PasswordReset = json_body(body).await?;
    let problems = tenants::password_problems(
        &reset.password,
        &u.email,
        &u.name,
        &TenantPolicy::of(&tenant),
    );
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let hash = state
        .passwords
        .hash(&reset.password)
        .await
        .map_err(|e| store_failed(&e))?;
    found(state.store.set_password(&u.id, &hash, now_ms()).await)?;
    tracing::info!(tenant = %tenant.id, user = %u.id, by = %caller.subject(), "password reset");
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        USER_CHANGE,
        json!({"action": "reset_password", "user": u.id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the user's TOTP secret and recovery codes: the user signs in with the password
/// alone (or enrols again when a tenant requires MFA). Their sessions end and their refresh
/// token families are revoked in the same transaction.
async fn reset_mfa(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, _) = member_identity(&state, &caller, &tid, &uid).await?;
    let had = state
        .store
        .reset_mfa(&u.id, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %tenant.id, user = %u.id, had, by = %caller.subject(), "MFA reset");
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        events::MFA_RESET,
        json!({"user": u.id, "had_mfa": had}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesBody {
    roles: Vec<String>,
}

fn dedup(roles: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

async fn save_roles(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    u: &UserRow,
    mut m: MembershipRow,
    roles: Vec<String>,
) -> Result<Json<MemberView>, Problem> {
    caller.may(&Action::SetRoles {
        tid: &m.tenant_id,
        target: target(u, &m),
        new_rank: Rank::of(&roles),
    })?;
    check_roles(state, &m.tenant_id, &roles).await?;
    m.roles = dedup(roles);
    state
        .store
        .upsert_membership(&m)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %m.tenant_id, user = %u.id, roles = ?m.roles, by = %caller.subject(), "roles changed");
    audit(
        state,
        caller,
        meta,
        &m.tenant_id,
        ROLE_CHANGE,
        json!({"user": u.id, "roles": m.roles}),
    )
    .await;
    Ok(Json(member_view(u, &m)))
}

async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<Json<MemberView>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let b: RolesBody = json_body(body).await?;
    save_roles(&state, &caller, &meta, &u, m, b.roles).await
}

async fn assign_role(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid, role)): Path<(String, String, String)>,
) -> Result<Json<MemberView>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let mut roles = m.roles.clone();
    roles.push(role);
    save_roles(&state, &caller, &meta, &u, m, roles).await
}

async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, uid, role)): Path<(String, String, String)>,
) -> Result<Json<MemberView>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let roles: Vec<String> = m.roles.iter().filter(|r| **r != role).cloned().collect();
    save_roles(&state, &caller, &meta, &u, m, roles).await
}
