//! "Export my data" (`GET /account/export`: what the service keeps about the account, as a
//! JSON attachment) and "delete my account" (`GET|POST /account/delete`).
//!
//! Security decisions:
//! - Both need the browser session; the deletion form is CSRF-protected and needs the current
//!   password again (wrong ones count like on the password page).
//! - Deletion is allowed only if every tenant of the account allows it
//!   (`self_service_deletion`), never to platform administrators or a tenant's owner. It ends
//!   every session and revokes every refresh-token family in the same transaction that removes
//!   the account; the security events about it stay.
//! - The export never holds a secret (no password hash, no second factor's secret).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::clients::rfc3339;
use crate::store::now_ms;
use crate::store::users::{SessionRow, UserRow};
use crate::tenants;
use crate::web::account::{csrf_field, nav, notice, reauthenticate, record, session_tenant};
use crate::web::account_form::AccountForm;
use crate::web::authorize::current_session;
use crate::web::page::{Brand, branded_account_page, not_signed_in, unavailable};
use crate::web::page::{SESSION_COOKIE, escape, set_cookie};

/// `GET /account/export`: what the service keeps about the account, as JSON.
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    match export_json(&state, &session, &user).await {
        Ok(v) => {
            let mut r = axum::Json(v).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"tansu-account.json\""),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        Err(e) => unavailable(&e),
    }
}

async fn export_json(
    state: &AppState,
    session: &SessionRow,
    user: &UserRow,
) -> anyhow::Result<serde_json::Value> {
    let now = now_ms();
    let store = &state.store;
    let mut memberships = Vec::new();
    for m in store.memberships_of_user(&user.id).await? {
        let t = store.tenant_by_id(&m.tenant_id).await?;
        memberships.push(serde_json::json!({
            "tenant_id": m.tenant_id,
            "tenant_slug": t.as_ref().map(|t| t.slug.clone()),
            "tenant_name": t.as_ref().map(|t| t.name.clone()),
            "roles": m.roles,
            "since": rfc3339(m.created_at),
        }));
    }
    let sessions: Vec<_> = store
        .sessions_of_user(&user.id, now)
        .await?
        .iter()
        .map(|s| {
            serde_json::json!({
                "id": s.id, "tenant_id": s.tenant_id, "methods": s.amr,
                "signed_in_at": rfc3339(s.auth_time), "expires_at": rfc3339(s.expires_at),
                "current": s.id == session.id,
            })
        })
        .collect();
    let clients: Vec<_> = store
        .granted_clients(&user.id, now)
        .await?
        .iter()
        .map(|c| {
            serde_json::json!({
                "client_id": c.client_id, "name": c.name,
                "scopes": c.scopes.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                "live_grants": c.live_grants,
            })
        })
        .collect();
    let linked: Vec<_> = store
        .federated_identities_of_user(&user.id, None)
        .await?
        .iter()
        .map(|l| {
            serde_json::json!({
                "tenant_id": l.tenant_id, "provider_id": l.provider_id, "issuer": l.issuer,
                "subject": l.subject, "email": l.email, "linked_at": rfc3339(l.created_at),
                "last_used_at": rfc3339(l.last_used_at),
            })
        })
        .collect();
    let proof = store.email_proof(&user.id).await?;
    Ok(serde_json::json!({
        "account": {
            "id": user.id,
            "email": user.email,
            "email_verified_at": proof.as_ref().map(|p| rfc3339(p.at)),
            "email_vouched_by": proof.and_then(|p| p.vouched_by),
            "name": user.name,
            "created_at": rfc3339(user.created_at),
            "updated_at": rfc3339(user.updated_at),
            "two_step_verification": crate::mfa::enrolled(store, &user.id).await?,
        },
        "memberships": memberships,
        "sessions": sessions,
        "clients": clients,
        "linked_sign_ins": linked,
        "exported_at": rfc3339(now),
    }))
}

/// Why the account may not delete itself (`None`: it may).
async fn deletion_refused(
    state: &AppState,
    user: &UserRow,
) -> anyhow::Result<Option<&'static str>> {
    if user.platform_admin {
        return Ok(Some(
            "Platform administrators cannot delete their own account.",
        ));
    }
    for m in state.store.memberships_of_user(&user.id).await? {
        if m.roles.iter().any(|r| r == tenants::ROLE_OWNER) {
            return Ok(Some(
                "You own a tenant: hand its ownership to someone else first.",
            ));
        }
        let allowed = state
            .store
            .tenant_by_id(&m.tenant_id)
            .await?
            .is_some_and(|t| tenants::policy_of(&t).self_service_deletion);
        if !allowed {
            return Ok(Some(
                "Your organisation does not allow deleting accounts here; ask its administrators.",
            ));
        }
    }
    Ok(None)
}

/// `GET /account/delete`.
pub async fn delete_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    delete_page(&state, &headers, (&session, &user), None, StatusCode::OK).await
}

async fn delete_page(
    state: &AppState,
    headers: &HeaderMap,
    (session, user): (&SessionRow, &UserRow),
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let brand = session_tenant(state, session).await.map(|t| Brand::of(&t));
    let refused = match deletion_refused(state, user).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let action = format!("{}account/delete", state.config.issuer);
    let nav = nav(state, headers, "account/delete");
    let message = notice(message);
    let title = ("Delete your account", brand.as_ref());
    branded_account_page(state, headers, status, title, |csrf| {
        let form = match refused {
            Some(why) => format!("<p>{}</p>", escape(why)),
            None => format!(
                "<p>Deleting ends every session, takes back every app's access, and removes \
                 your account and its memberships. It cannot be undone.</p>\
                 <form method=\"post\" action=\"{action}\">{csrf}\
                 <label for=\"current\">Current password</label>\
                 <input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
                 <label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> \
                 I understand that my account is deleted for good.</label>\
                 <button type=\"submit\" class=\"danger\">Delete my account</button></form>",
                action = escape(&action),
                csrf = csrf_field(csrf),
            ),
        };
        format!("{nav}<h1>Delete your account</h1>{message}{form}")
    })
}

/// `POST /account/delete` with `current` and `confirm=yes`.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    match deletion_refused(&state, &user).await {
        Ok(None) => {}
        Ok(Some(why)) => {
            return delete_page(
                &state,
                &headers,
                (&session, &user),
                Some((why, true)),
                StatusCode::FORBIDDEN,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    }
    match reauthenticate(&state, &user, form.get("current").unwrap_or("")).await {
        Err(r) => return r,
        Ok(Some((m, status))) => {
            return delete_page(&state, &headers, (&session, &user), Some((m, true)), status).await;
        }
        Ok(None) => {}
    }
    if form.get("confirm") != Some("yes") {
        let m = "Tick the box to confirm.";
        return delete_page(
            &state,
            &headers,
            (&session, &user),
            Some((m, true)),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let memberships = state
        .store
        .memberships_of_user(&user.id)
        .await
        .unwrap_or_default();
    match state.store.delete_account(&user.id, now_ms()).await {
        Ok(_) => {}
        Err(e) => return unavailable(&e),
    }
    let details = serde_json::json!({"action": "account.delete", "user": user.id});
    record(&state, &headers, None, &user, "success", details.clone()).await;
    for m in &memberships {
        record(
            &state,
            &headers,
            Some(&m.tenant_id),
            &user,
            "success",
            details.clone(),
        )
        .await;
    }
    tracing::info!(user_id = %user.id, session = %session.id, "account deleted by its owner");
    let mut r = crate::web::page::html(
        StatusCode::OK,
        &crate::web::page::page(
            "Account deleted",
            "<h1>Your account was deleted</h1><p>Every session ended and every app's access \
             was taken back.</p>",
        ),
    );
    if let Some(c) = set_cookie(&state, SESSION_COOKIE, "", "Lax", 0) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}
