//! The signed-in user's linked sign-ins on the account page (upstream identities of the
//! tenants' external providers), and `POST /account/identities`: removing one. The user sees
//! and removes only links of their own account.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::AppState;
use crate::clients::rfc3339;
use crate::store::federation::FederatedIdentityRow;
use crate::web::account::{csrf_field, overview_page};
use crate::web::account_form::AccountForm;
use crate::web::page::{escape, unavailable};

/// The user's links (none when they cannot be read: the page still shows the rest).
pub(crate) async fn linked(state: &AppState, user_id: &str) -> Vec<FederatedIdentityRow> {
    state
        .store
        .federated_identities_of_user(user_id, None)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading linked identities failed");
            Vec::new()
        })
}

/// The account page's section (empty without links).
pub(crate) fn section(state: &AppState, links: &[FederatedIdentityRow], csrf: &str) -> String {
    if links.is_empty() {
        return String::new();
    }
    let action = escape(&format!("{}account/identities", state.config.issuer));
    let items: String = links
        .iter()
        .map(|l| {
            format!(
                "<li>{who} at <code>{issuer}</code>, linked {at}\
                 <form method=\"post\" action=\"{action}\" class=\"inline\">{csrf}\
                 <input type=\"hidden\" name=\"identity\" value=\"{id}\">\
                 <button type=\"submit\" class=\"secondary\">Remove</button></form></li>",
                who = escape(l.email.as_deref().unwrap_or(&l.subject)),
                issuer = escape(&l.issuer),
                at = escape(rfc3339(l.created_at).get(..10).unwrap_or_default()),
                csrf = csrf_field(csrf),
                id = escape(&l.id),
            )
        })
        .collect();
    format!(
        "<h2>Linked sign-ins</h2><p>These accounts of other providers sign you in.</p>\
         <ul class=\"linked\">{items}</ul>"
    )
}

/// `POST /account/identities` with `identity`: removes one of the user's links.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let id = form.get("identity").unwrap_or("");
    let link = linked(&state, &user.id)
        .await
        .into_iter()
        .find(|l| l.id == id);
    let Some(link) = link else {
        let m = ("That linked sign-in is already gone.", true);
        return overview_page(&state, &headers, &session, &user, Some(m)).await;
    };
    match state
        .store
        .delete_federated_identity(&user.id, None, &link.id)
        .await
    {
        Ok(_) => {}
        Err(e) => return unavailable(&e),
    }
    let details = serde_json::json!({"identity": link.id, "issuer": link.issuer, "by": "user"});
    crate::web::federation::event(
        &state,
        &headers,
        &link.tenant_id,
        crate::federation::FEDERATION_UNLINK,
        format!("user:{}", user.id),
        "success",
        details,
    )
    .await;
    let m = ("The linked sign-in was removed.", false);
    overview_page(&state, &headers, &session, &user, Some(m)).await
}
