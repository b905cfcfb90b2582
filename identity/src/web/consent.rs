//! Consent (`POST /consent`): a third-party client's requested scopes are shown once and the
//! grant remembered; first-party clients of the same tenant skip it. A client of another
//! tenant never skips consent.

use crate::AppState;
use crate::store::now_ms;
use crate::store::users::UserRow;
use crate::web::authorize::AuthRequest;
use crate::web::authorize::AuthorizeError;
use crate::web::authorize::InSession;
use crate::web::authorize::current_session;
use crate::web::authorize::error_redirect;
use crate::web::authorize::issue_code;
use crate::web::authorize::parse_request;
use crate::web::page::FORM_EXPIRED;
use crate::web::page::branded_page;
use crate::web::page::csrf_token;
use crate::web::page::escape;
use crate::web::page::html;
use crate::web::page::read_csrf_form;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Whether the user must consent first: third-party clients for scopes the user has not
/// granted them yet, and `prompt=consent`.
pub(crate) async fn consent_needed(
    state: &AppState,
    req: &AuthRequest,
    user: &UserRow,
) -> Result<bool, AuthorizeError> {
    if req.prompt.iter().any(|p| p == "consent") {
        return Ok(true);
    }
    if req.client.first_party {
        return Ok(false);
    }
    match state.store.consent(&user.id, &req.client.client_id).await {
        Ok(granted) => Ok(req.scopes.iter().any(|s| !granted.contains(s))),
        Err(e) => {
            tracing::error!(error = %e, "consent lookup failed");
            Err(AuthorizeError::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now; retry later.",
            ))
        }
    }
}

/// The consent page, or `consent_required` with `prompt=none`.
pub(crate) fn ask_consent(state: &AppState, headers: &HeaderMap, req: &AuthRequest) -> Response {
    if req.prompt.iter().any(|p| p == "none") {
        return error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "consent_required",
            "the user must consent",
        )
        .into_response();
    }
    consent_page(state, headers, req)
}

fn consent_page(state: &AppState, headers: &HeaderMap, req: &AuthRequest) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return AuthorizeError::Page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable right now.")
            .into_response();
    };
    let items: String = req
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let body = format!(
        "<h1>Allow access?</h1><p><strong>{client}</strong> asks for:</p><ul>{items}</ul>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        client = escape(&req.client.name),
        action = escape(&format!("{}consent", state.config.issuer)),
        csrf = escape(&csrf),
        request = escape(&req.raw),
    );
    let mut response = html(
        StatusCode::OK,
        &branded_page("Allow access", &body, req.brand.as_ref()),
    );
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `POST /consent`: the consent form's submission (needs the signed-in session).
pub async fn consent(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some((session, user)) = current_session(&state, &headers).await else {
        return AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "Your sign-in has ended. Start again from the application.",
        )
        .into_response();
    };
    match form.get("decision") {
        Some("allow") => {
            let mut granted = state
                .store
                .consent(&user.id, &req.client.client_id)
                .await
                .unwrap_or_default();
            for s in &req.scopes {
                if !granted.contains(s) {
                    granted.push(s.clone());
                }
            }
            if let Err(e) = state
                .store
                .save_consent(&user.id, &req.client.client_id, &granted, now_ms())
                .await
            {
                tracing::error!(error = %e, "storing consent failed");
                return AuthorizeError::Page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Unavailable right now; retry later.",
                )
                .into_response();
            }
            match issue_code(&state, &req, InSession::Stored(&session), &user).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        }
        Some("deny") => error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            "access_denied",
            "the user denied access",
        )
        .into_response(),
        _ => AuthorizeError::Page(StatusCode::BAD_REQUEST, "No decision was made.").into_response(),
    }
}
