//! `GET|POST /account/invitations`: a signed-in user's pending invitations to tenants, accepted
//! or declined here. Inviting an existing account never adds it to a tenant by itself (see
//! [`crate::admin::invitations`]): the account's owner decides, after proving who they are.
//!
//! Security decisions:
//! - The page needs the browser session (the issuer's cookie) and every form is
//!   CSRF-protected (double submit), like the other account pages.
//! - An invitation is matched to the account by its email and accepted in one transaction that
//!   deletes it and adds the membership with the invited roles — only once the account's
//!   address is proven for the inviting tenant (by mail, or by that tenant's own provider):
//!   an account can be created with anyone's address, and must not take over what is
//!   addressed to that mailbox.
//! - Accepting another tenant's invitation ends the hold of the tenant that created the
//!   account (its home tenant, which may reset its credentials): the account now opens a
//!   tenant that did not create it, so no single tenant may take it over
//!   ([`crate::store::Store::accept_invitation`]).
//! - Platform administrators accept no invitation: they are out of every tenant's reach
//!   (their pending invitations are not even listed).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::AppState;
use crate::events::{self, Event, Meta, USER_CHANGE};
use crate::store::invitations::InvitationRow;
use crate::store::now_ms;
use crate::store::users::UserRow;
use crate::web::account::session_tenant;
use crate::web::authorize::current_session;
use crate::web::page::{Brand, branded_account_page, not_signed_in, unavailable};
use crate::web::page::{FORM_EXPIRED, escape};

/// `GET /account/invitations`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    page(&state, &headers, (&user, brand.as_ref()), None).await
}

/// `POST /account/invitations` with `invitation` and `decision` (`accept` or `decline`).
pub async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match crate::web::page::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    let id = form.get("invitation").unwrap_or("");
    let now = now_ms();
    let (message, outcome) = match form.get("decision") {
        Some("accept") if user.platform_admin => (
            "Platform administrators cannot join a tenant by invitation.",
            None,
        ),
        Some("accept") => match address_proven(&state, &user, id, now).await {
            Ok(false) => (UNPROVEN, None),
            Ok(true) => match state
                .store
                .accept_invitation(id, &user.email, &user.id, now)
                .await
            {
                Ok(Some(m)) => ("Invitation accepted.", Some(("accept", m.tenant_id))),
                Ok(None) => ("This invitation is no longer open.", None),
                Err(e) => return unavailable(&e),
            },
            Err(e) => return unavailable(&e),
        },
        Some("decline") => match state.store.decline_invitation(id, &user.email).await {
            Ok(Some(tenant)) => ("Invitation declined.", Some(("decline", tenant))),
            Ok(None) => ("This invitation is no longer open.", None),
            Err(e) => return unavailable(&e),
        },
        _ => ("Choose accept or decline.", None),
    };
    if let Some((action, tenant_id)) = outcome {
        events::record(
            &state.events,
            &Meta::from_headers(&headers),
            Event {
                tenant_id: Some(&tenant_id),
                kind: USER_CHANGE,
                actor: format!("user:{}", user.id),
                outcome: "success",
                details: serde_json::json!({"action": format!("invitation.{action}"), "user": user.id, "invitation": id}),
            },
        )
        .await;
    }
    page(&state, &headers, (&user, brand.as_ref()), Some(message)).await
}

const OWN_ACCOUNT: &str = "Accepting an invitation of another tenant makes this account your \
     own: the tenant that created it no longer manages its password, second factors or name.";

const UNPROVEN: &str = "Confirm your address first: an invitation is for whoever receives \
     mail at it. Send yourself a confirmation link from your account page, follow it, then \
     accept.";

/// Whether the account's address is proven for the tenant of its open invitation `id`: by
/// mail, or by that tenant's own provider. Anyone may create an account with any address (a
/// tenant's administrator, a registration, another tenant's provider); only the mailbox's
/// owner may take what is addressed to it. `true` when no such invitation is open (the
/// acceptance then finds nothing).
async fn address_proven(
    state: &AppState,
    user: &UserRow,
    id: &str,
    now: i64,
) -> anyhow::Result<bool> {
    let open = state.store.invitations_for(&user.email, now).await?;
    let Some(invitation) = open.iter().find(|i| i.id == id) else {
        return Ok(true);
    };
    Ok(state
        .store
        .email_proof(&user.id)
        .await?
        .is_some_and(|p| p.counts_for(Some(&invitation.tenant_id))))
}

pub(crate) async fn page(
    state: &AppState,
    headers: &HeaderMap,
    (user, brand): (&UserRow, Option<&Brand>),
    message: Option<&str>,
) -> Response {
    let invitations: Vec<InvitationRow> = if user.platform_admin {
        Vec::new()
    } else {
        match state.store.invitations_for(&user.email, now_ms()).await {
            Ok(v) => v,
            Err(e) => return unavailable(&e),
        }
    };
    let mut rows = String::new();
    for i in &invitations {
        let name = match state.store.tenant_by_id(&i.tenant_id).await {
            Ok(Some(t)) => t.name,
            Ok(None) => continue,
            Err(e) => return unavailable(&e),
        };
        rows.push_str(&format!(
            "<li><strong>{name}</strong> as {roles} \
             <form method=\"post\" action=\"{action}\">{{csrf}}\
             <input type=\"hidden\" name=\"invitation\" value=\"{id}\">\
             <button type=\"submit\" name=\"decision\" value=\"accept\">Accept</button> \
             <button type=\"submit\" name=\"decision\" value=\"decline\">Decline</button></form></li>",
            name = escape(&name),
            roles = escape(&i.roles.join(", ")),
            action = escape(&format!("{}account/invitations", state.config.issuer)),
            id = escape(&i.id),
        ));
    }
    let message = message
        .map(|m| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(m)))
        .unwrap_or_default();
    let list = if rows.is_empty() {
        "<p>You have no pending invitations.</p>".to_owned()
    } else if user.home_tenant_id.is_some() {
        format!("<ul>{rows}</ul><p>{OWN_ACCOUNT}</p>")
    } else {
        format!("<ul>{rows}</ul>")
    };
    let title = ("Invitations", brand);
    branded_account_page(state, headers, StatusCode::OK, title, |csrf| {
        let hidden = format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
            escape(csrf)
        );
        format!(
            "<h1>Invitations</h1>{message}{}",
            list.replace("{csrf}", &hidden)
        )
    })
}
