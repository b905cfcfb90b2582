//! A user's linked sign-ins (upstream identities of the tenant's external providers): the list,
//! and removing one, confirmed first (identity's `…/users/{uid}/identities`).

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{LinkedIdentity, Member};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::api::ApiError;
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{USERS, notice};
use crate::page::AdminSession;
use crate::scope::{chosen_tenant, form_tenant, tenant_api};
use crate::widgets::{tq, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new().route(
        "/users/{uid}/identities",
        get(identities).post(remove_identity),
    )
}

#[derive(Default, Deserialize)]
struct ItemQuery {
    #[serde(default)]
    tenant: String,
    /// The link to remove: the GET then asks for confirmation.
    #[serde(default)]
    identity: String,
}

#[derive(Default, Deserialize)]
struct RemoveForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    confirm: String,
}

/// The list of `uid`'s linked sign-ins in `tid`, or the question before removing one.
async fn identities(
    admin: AdminSession,
    Path(uid): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(&admin, &q.tenant, USERS).await?;
    if q.identity.is_empty() {
        return list_page(&admin, &tid, &uid, Outcome::none()).await;
    }
    let user: Member = admin
        .identity()
        .get(&tenant_api(&tid, "users", &uid, ""))
        .await
        .map_err(|e| PageError::api(&admin, USERS.active, USERS.title, e))?;
    Ok(Confirm {
        path: format!("users/{}/identities", urlencode(&uid)),
        fields: vec![("tenant", tid.clone()), ("identity", q.identity.clone())],
        title: "Remove the linked sign-in".into(),
        question: format!(
            "Remove this linked sign-in of {}? The provider's account no longer signs them in to this tenant.",
            user.email
        ),
        button: "Remove",
        cancel: format!("users/{}/identities{}", urlencode(&uid), tq(&tid)),
    }
    .page(&admin, USERS))
}

async fn remove_identity(
    Path(uid): Path<String>,
    form: CsrfForm<RemoveForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, USERS.active)?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("users/{}/identities", urlencode(&uid)),
        &[("tenant", tid.as_str()), ("identity", f.identity.as_str())],
    )?;
    if f.identity.is_empty() {
        return list_page(admin, &tid, &uid, Outcome::none()).await;
    }
    let path = tenant_api(
        &tid,
        "users",
        &uid,
        &format!("identities/{}", urlencode(&f.identity)),
    );
    let answer = admin
        .identity()
        .send(Method::DELETE, &path, None::<&()>)
        .await;
    let done = match answer {
        // Removed meanwhile (or never there): the list says what is left (a user who is no
        // member is the list's own 404).
        Err(ApiError::Status(404, _)) => Outcome::shown(notice(
            "success",
            "That linked sign-in is already gone.".to_owned(),
        )),
        answer => outcome(admin, USERS, "Removing the linked sign-in", answer, |_| {
            "The linked sign-in was removed.".to_owned()
        })?,
    };
    list_page(admin, &tid, &uid, done).await
}

async fn list_page(
    admin: &AdminSession,
    tid: &str,
    uid: &str,
    done: Outcome,
) -> Result<Response, PageError> {
    let path = tenant_api(tid, "users", uid, "identities");
    let items: Vec<LinkedIdentity> = admin
        .identity()
        .get(&path)
        .await
        .map_err(|e| PageError::api(admin, USERS.active, USERS.title, e))?;
    let base = admin.base().to_owned();
    let id = urlencode(uid);
    let rows = items
        .iter()
        .map(|l| {
            let href = format!(
                "{base}users/{id}/identities{}&identity={}",
                tq(tid),
                urlencode(&l.id)
            );
            view! {
                <tr>
                    <td><code>{l.issuer.clone()}</code></td>
                    <td>{l.email.clone().unwrap_or_else(|| l.subject.clone())}</td>
                    <td>{l.created_at.clone()}</td>
                    <td>{l.last_used_at.clone()}</td>
                    <td><a class="button secondary" href=href>"Remove…"</a></td>
                </tr>
            }
        })
        .collect_view();
    let empty = items
        .is_empty()
        .then(|| view! { <p class="muted">"No linked sign-ins."</p> });
    let back = format!("{base}users{}", tq(tid));
    let content = view! {
        {done.message}
        <div class="table"><table>
            <thead><tr><th>"Provider"</th><th>"Account"</th><th>"Linked"</th><th>"Last used"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {empty}
        <p><a href=back>"Back to the users"</a></p>
    }
    .into_any();
    Ok(admin.render_with(USERS.active, "Linked sign-ins", content, done.status, None))
}
