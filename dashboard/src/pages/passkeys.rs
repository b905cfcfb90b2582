//! A user's passkeys in the tenant (`/users/{uid}/passkeys`): the list, and removing one
//! (confirmed first: `?remove=<id>` asks, the POST with `confirm=yes` removes).

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{Member, UserPasskey};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{USERS, notice};
use crate::page::AdminSession;
use crate::scope::{chosen_tenant, form_tenant, tenant_api};
use crate::widgets::{tq, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/users/{uid}/passkeys", get(list).post(remove))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    tenant: String,
    /// A passkey to ask about removing.
    #[serde(default)]
    remove: String,
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    confirm: String,
}

async fn list(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(&admin, &q.tenant, USERS).await?;
    let remove = q.remove.trim();
    if remove.is_empty() {
        return page(&admin, &tid, &uid, Outcome::none()).await;
    }
    let (user, keys) = read(&admin, &tid, &uid).await?;
    let key = keys
        .iter()
        .find(|k| k.id == remove)
        .ok_or_else(|| PageError::not_found(&admin, USERS.active))?;
    Ok(Confirm {
        path: format!("users/{}/passkeys", urlencode(&uid)),
        fields: vec![("tenant", tid.clone()), ("id", key.id.clone())],
        title: "Remove passkey".into(),
        question: format!(
            "Remove the passkey \u{201c}{}\u{201d} of {}? It stops signing them in at once.",
            key.name, user.email
        ),
        button: "Remove passkey",
        cancel: format!("users/{}/passkeys{}", urlencode(&uid), tq(&tid)),
    }
    .page(&admin, USERS))
}

async fn remove(
    Path(uid): Path<String>,
    form: CsrfForm<RemoveForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    let id = f.id.trim();
    if id.is_empty() {
        let chosen = Outcome::shown(notice("error", "Choose a passkey to remove.".into()));
        return page(admin, &tid, &uid, chosen).await;
    }
    Confirm::required(
        admin,
        &f.confirm,
        &format!("users/{}/passkeys", urlencode(&uid)),
        &[("tenant", tid.as_str()), ("remove", id)],
    )?;
    let answer = admin
        .identity()
        .send(
            Method::DELETE,
            &tenant_api(&tid, "users", &uid, &format!("passkeys/{}", urlencode(id))),
            None::<&()>,
        )
        .await;
    let done = outcome(admin, USERS, "Removing the passkey", answer, |_| {
        "The passkey was removed.".to_owned()
    })?;
    page(admin, &tid, &uid, done).await
}

async fn read(
    admin: &AdminSession,
    tid: &str,
    uid: &str,
) -> Result<(Member, Vec<UserPasskey>), PageError> {
    let api = |e| PageError::api(admin, USERS.active, USERS.title, e);
    let user: Member = admin
        .identity()
        .get(&tenant_api(tid, "users", uid, ""))
        .await
        .map_err(api)?;
    let keys: Vec<UserPasskey> = admin
        .identity()
        .get(&tenant_api(tid, "users", uid, "passkeys"))
        .await
        .map_err(api)?;
    Ok((user, keys))
}

async fn page(
    admin: &AdminSession,
    tid: &str,
    uid: &str,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (user, keys) = read(admin, tid, uid).await?;
    let base = admin.base();
    let rows = keys
        .iter()
        .map(|k| {
            let ask = format!(
                "{base}users/{}/passkeys{}&remove={}",
                urlencode(uid),
                tq(tid),
                urlencode(&k.id)
            );
            let synced = if k.backup_state {
                "synced"
            } else {
                "this device"
            };
            view! {
                <tr>
                    <td>{k.name.clone()}</td>
                    <td>{k.created_at.clone()}</td>
                    <td>{k.last_used_at.clone().unwrap_or_else(|| "never".into())}</td>
                    <td>{synced}</td>
                    <td><a class="button secondary" href=ask>"Remove…"</a></td>
                </tr>
            }
        })
        .collect_view();
    let table = if keys.is_empty() {
        view! { <p class="muted">"No passkeys in this tenant."</p> }.into_any()
    } else {
        view! {
            <div class="table"><table>
                <thead><tr><th>"Name"</th><th>"Added"</th><th>"Last used"</th><th>"Kept on"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table></div>
        }
        .into_any()
    };
    let back = format!("{base}users{}", tq(tid));
    let content = view! {
        {outcome.message}
        <p>"Passkeys of " <strong>{user.email.clone()}</strong> " registered for this tenant."</p>
        {table}
        <p><a class="button secondary" href=back>"Back to users"</a></p>
    }
    .into_any();
    Ok(admin.render_with(USERS.active, "Passkeys", content, outcome.status, None))
}
