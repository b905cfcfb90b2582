//! The account's MFA: enrolment for a signed-in user (`GET|POST /account/mfa`), and
//! self-service regeneration of recovery codes: a signed-in user with MFA asks for a new set on the account page (`POST /account/mfa/recovery-codes`); the old set stops
//! working at once and the new one is shown once.
//!
//! Security decisions:
//! - The form is CSRF-protected (double submit, like every form of the service) and needs a
//!   current TOTP code (re-authentication: a stolen session alone cannot mint codes). A
//!   recovery code is not accepted here: it would let one leaked code renew all of them.
//! - The TOTP code is spent like at sign-in (one use per time step).
//! - Wrong codes count against the key `r:<user id>` with the service's lockout threshold and
//!   duration, so codes cannot be guessed through this form.
//! - Every attempt is a security event (`mfa.recovery_codes_regenerated`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::events;
use crate::mfa::{self, CodeOutcome};
use crate::store::now_ms;
use crate::store::users::UserRow;
use crate::web::account::session_tenant;
use crate::web::account_form::AccountForm;
use crate::web::authorize::{AuthorizeError, current_session};
use crate::web::page::escape;
use crate::web::page::{Brand, account_page, not_signed_in, unavailable};
use crate::web::steps::enrolment_html;
use crate::web::steps::recovery_html;

/// The security event of a regeneration (outcome `success` or `failure`).
pub const MFA_RECOVERY_REGENERATED: &str = "mfa.recovery_codes_regenerated";

/// The account page of a user with MFA on: codes left and the regeneration form.
pub(crate) async fn enrolled_page(
    state: &AppState,
    headers: &HeaderMap,
    (user, brand): (&UserRow, Option<&Brand>),
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let left = match state.store.recovery_codes_left(&user.id).await {
        Ok(n) => n,
        Err(e) => return unavailable(&e),
    };
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let action = format!("{}account/mfa/recovery-codes", state.config.issuer);
    account_page(state, headers, status, brand, |csrf| {
        format!(
            "<h1>Two-step verification is on</h1><p>{left} recovery codes left. To set it up \
             again, ask an administrator to reset it.</p>\
             <h2>New recovery codes</h2>{error_html}<p>A new set replaces every code you have \
             now. Enter a code from your authenticator app to confirm.</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required></label>\
             <button type=\"submit\">Generate new recovery codes</button></form>",
            action = escape(&action),
            csrf = escape(csrf),
        )
    })
}

/// `POST /account/mfa/recovery-codes`: a new set of recovery codes, after a current TOTP code.
pub async fn regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    let brand = brand.as_ref();
    match mfa::enrolled(&state.store, &user.id).await {
        Ok(true) => {}
        Ok(false) => {
            return AuthorizeError::Page(
                StatusCode::CONFLICT,
                "Two-step verification is not on: set it up first.",
            )
            .into_response();
        }
        Err(e) => return unavailable(&e),
    }
    let meta = events::Meta::from_headers(&headers);
    let record = |outcome: &'static str, reason: Option<&'static str>| {
        events::record(
            &state.events,
            &meta,
            events::Event {
                tenant_id: session.tenant_id.as_deref(),
                kind: MFA_RECOVERY_REGENERATED,
                actor: format!("user:{}", user.id),
                outcome,
                details: serde_json::json!({"at": "account", "reason": reason}),
            },
        )
    };
    let lock_key = format!("r:{}", user.id);
    match state.store.locked_until(&[&lock_key], now_ms()).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            record("failure", Some("locked")).await;
            return enrolled_page(
                &state,
                &headers,
                (&user, brand),
                Some("Too many wrong codes. Wait a few minutes and retry."),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    }
    match mfa::regenerate_recovery_codes(
        &state.store,
        state.keys.master(),
        &user.id,
        form.get("code").unwrap_or(""),
    )
    .await
    {
        Ok(Ok(codes)) => {
            record("success", None).await;
            if let Err(e) = state.store.clear_login_failures(&lock_key).await {
                tracing::warn!(error = %e, "clearing the code failure counter failed");
            }
            tracing::info!(user_id = %user.id, "recovery codes regenerated");
            account_page(&state, &headers, StatusCode::OK, brand, |_| {
                format!(
                    "<h1>New recovery codes</h1><p>Your earlier recovery codes no longer work.</p>{}",
                    recovery_html(&codes)
                )
            })
        }
        Ok(Err(outcome)) => {
            let reason = if outcome == CodeOutcome::Replayed {
                "replayed"
            } else {
                "wrong_code"
            };
            record("failure", Some(reason)).await;
            let threshold = i64::from(state.config.login_lockout_threshold);
            let lock_ms = i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2);
            if let Err(e) = state
                .store
                .record_login_failure(&lock_key, now_ms(), threshold, lock_ms)
                .await
            {
                tracing::warn!(error = %e, "recording a wrong code failed");
            }
            enrolled_page(
                &state,
                &headers,
                (&user, brand),
                Some("Invalid code."),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e) => unavailable(&e),
    }
}

pub(crate) async fn enrolment_form(
    state: &AppState,
    headers: &HeaderMap,
    (user, brand): (&UserRow, Option<&Brand>),
    reuse: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let enrolment = match mfa::begin_enrolment(
        &state.store,
        state.keys.master(),
        &user.id,
        &user.email,
        reuse,
    )
    .await
    {
        Ok(Some(e)) => e,
        Ok(None) => {
            return crate::web::account_mfa::enrolled_page(
                state,
                headers,
                (user, brand),
                None,
                StatusCode::OK,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    };
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let action = format!("{}account/mfa", state.config.issuer);
    account_page(state, headers, status, brand, |csrf| {
        format!(
            "<h1>Set up two-step verification</h1>{error_html}<p>{setup}</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required></label>\
             <button type=\"submit\">Confirm</button></form>",
            setup = enrolment_html(&enrolment),
            action = escape(&action),
            csrf = escape(csrf),
        )
    })
}

/// `GET /account/mfa`: starts an enrolment for the signed-in user (a fresh secret each time
/// until confirmed), or says MFA is on.
pub async fn account_mfa(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    let page = (&user, brand.as_ref());
    enrolment_form(&state, &headers, page, false, None, StatusCode::OK).await
}

/// `POST /account/mfa`: confirms the enrolment with the first code; shows the recovery codes
/// once.
pub async fn account_mfa_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let meta = events::Meta::from_headers(&headers);
    let event = |outcome: &'static str| events::Event {
        tenant_id: session.tenant_id.as_deref(),
        kind: events::MFA_ENROL,
        actor: format!("user:{}", user.id),
        outcome,
        details: serde_json::json!({"at": "account"}),
    };
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    let brand = brand.as_ref();
    match mfa::confirm_enrolment(
        &state.store,
        state.keys.master(),
        &user.id,
        form.get("code").unwrap_or(""),
    )
    .await
    {
        Ok(Some(codes)) => {
            events::record(&state.events, &meta, event("success")).await;
            tracing::info!(user_id = %user.id, "MFA enrolled");
            account_page(&state, &headers, StatusCode::OK, brand, |_| {
                format!(
                    "<h1>Two-step verification is on</h1>{}",
                    recovery_html(&codes)
                )
            })
        }
        Ok(None) => {
            events::record(&state.events, &meta, event("failure")).await;
            enrolment_form(
                &state,
                &headers,
                (&user, brand),
                true,
                Some("Invalid code."),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e) => unavailable(&e),
    }
}
