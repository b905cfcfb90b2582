//! Sign-in (`login` → identity → `callback`), sign-out (`logout`, RP-initiated at identity)
//! and the signed-out page.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::error::PageError;
use crate::extract::CsrfSession;
use crate::frame;
use crate::http::{cookie, html, read_cookie, redirect, safe_return, set_cookie};
use crate::session::{LOGIN_COOKIE, PENDING_LIFETIME, SESSION_COOKIE};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/signed-out", get(signed_out))
}

fn failed(state: &AppState, status: StatusCode, message: impl Into<String>) -> PageError {
    PageError::Bare {
        status,
        base: state.base().to_owned(),
        message: message.into(),
    }
}

async fn login(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let return_to = safe_return(q.get("return_to").map_or("/", String::as_str));
    let (url, _, pending) = crate::oidc::begin(&state, return_to).await.map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "sign-in could not start");
        failed(
            &state,
            StatusCode::BAD_GATEWAY,
            "Sign-in could not start: the identity service is unavailable or misconfigured.",
        )
    })?;
    let sealed = state.sessions.seal_pending(&pending).map_err(|e| {
        tracing::error!(error = %format!("{e:#}"), "sign-in could not start");
        failed(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in could not start; try again.",
        )
    })?;
    let mut r = redirect(&url);
    set_cookie(
        &mut r,
        cookie(
            &state,
            LOGIN_COOKIE,
            &sealed,
            Some(PENDING_LIFETIME.as_secs()),
        ),
    );
    Ok(r)
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    if let Some(err) = q.get("error") {
        let code: String = err
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return Err(failed(
            &state,
            StatusCode::BAD_REQUEST,
            format!("Sign-in was not completed ({code})."),
        ));
    }
    let (Some(code), Some(oauth_state)) = (q.get("code"), q.get("state")) else {
        return Err(failed(
            &state,
            StatusCode::BAD_REQUEST,
            "The sign-in response is incomplete.",
        ));
    };
    // The state must match the one this browser started with (login CSRF): the login cookie
    // holds the sealed pending sign-in, which opens only for that state.
    let pending = read_cookie(&headers, LOGIN_COOKIE)
        .and_then(|c| state.sessions.open_pending(&c, oauth_state))
        .ok_or_else(|| {
            failed(
                &state,
                StatusCode::BAD_REQUEST,
                "The sign-in expired or was started in another browser. Please sign in again.",
            )
        })?;
    if let Some(iss) = q.get("iss")
        && iss != &state.config.issuer
    {
        return Err(failed(
            &state,
            StatusCode::BAD_REQUEST,
            "The sign-in response came from an unexpected issuer.",
        ));
    }
    let return_to = pending.return_to.clone();
    let session = crate::oidc::finish(&state, code.clone(), pending)
        .await
        .map_err(|e| {
            tracing::warn!(error = %format!("{e:#}"), "sign-in failed");
            failed(
                &state,
                StatusCode::BAD_GATEWAY,
                "Sign-in failed: the identity service's answer could not be verified.",
            )
        })?;
    let max_age = session.remaining().as_secs();
    tracing::info!(sub = %session.subject, admin = session.is_admin(), "dashboard sign-in");
    let id = state.sessions.insert(session).await.map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "dashboard session not stored");
        failed(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed: the session could not be stored. Try again in a moment.",
        )
    })?;
    let mut r = redirect(&state.url(&return_to));
    set_cookie(&mut r, cookie(&state, SESSION_COOKIE, &id, Some(max_age)));
    set_cookie(&mut r, cookie(&state, LOGIN_COOKIE, "", Some(0)));
    Ok(r)
}

/// Ends the dashboard session, then identity's (RP-initiated logout with `id_token_hint`).
async fn logout(State(state): State<AppState>, form: CsrfSession) -> Response {
    state.sessions.remove(&form.id).await;
    let url = crate::oidc::logout_url(&state, &form.session.id_token).await;
    let mut r = redirect(&url);
    set_cookie(&mut r, cookie(&state, SESSION_COOKIE, "", Some(0)));
    r
}

async fn signed_out(State(state): State<AppState>) -> Response {
    html(
        StatusCode::OK,
        frame::bare(
            "Signed out",
            "You have been signed out of the dashboard and of identity.",
            Some((state.url("login"), "Sign in again")),
        ),
    )
}
