//! RP-initiated logout (`GET|POST /connect/endsession`, OIDC RP-Initiated Logout 1.0). An
//! `id_token_hint` of this browser's session, from a client whose registered post-logout URI
//! matches, signs out at once; any other request (no hint, or a hint of another session) asks
//! the user to confirm on a CSRF-protected page, so a link cannot sign someone out. A session
//! that signed in through a tenant's external provider goes on to that provider's logout when
//! no client waits for the browser (best effort: `web::federation::upstream_logout`).

use crate::AppState;
use crate::crypto;
use crate::oauth::params::{MAX_BODY_BYTES, Params};
use crate::store::now_ms;
use crate::web::authorize::AuthorizeError;
use crate::web::page::SESSION_COOKIE;
use crate::web::page::cookie_value;
use crate::web::page::csrf_matches;
use crate::web::page::csrf_token;
use crate::web::page::escape;
use crate::web::page::html;
use crate::web::page::page;
use crate::web::page::redirect;
use crate::web::page::set_cookie;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tansu_shared::auth::jws::MAX_TOKEN_LEN;
use tansu_shared::auth::{Audience, SignedToken};

/// Checks an `id_token_hint`: our signature and issuer; expiry is not checked (OIDC
/// RP-Initiated Logout §2 allows expired hints). Returns the client it was issued to and its
/// `sid`.
fn id_token_hint(state: &AppState, token: &str) -> Option<(String, Option<String>)> {
    let jws = SignedToken::parse(token, MAX_TOKEN_LEN).ok()?;
    let ring = state.keys.ring();
    let key = ring.get(jws.kid().ok()?)?;
    let hint: IdTokenHint = jws.verify(&key.verify).ok()?;
    if hint.iss != state.config.issuer {
        return None;
    }
    let aud = match hint.aud {
        Audience::One(a) => a,
        Audience::Many(a) => a.into_iter().next()?,
    };
    Some((aud, hint.sid))
}

/// The claims of an ID token that logout reads.
#[derive(serde::Deserialize)]
struct IdTokenHint {
    iss: String,
    aud: Audience,
    /// Required, as in every ID token; not read.
    #[serde(rename = "sub")]
    _sub: String,
    sid: Option<String>,
}

/// `GET|POST /connect/endsession` (OpenID Connect RP-Initiated Logout 1.0).
///
/// With a valid `id_token_hint` issued in this browser's session the relying party proves it
/// initiated the logout and the session ends at once; without one (or with a hint from another
/// session) the user confirms on a CSRF-protected form first, so a third-party page cannot sign
/// the user out. `post_logout_redirect_uri` must exactly match
/// one registered for the client named by the hint (or `client_id`); otherwise the user stays
/// here and sees a page.
pub async fn end_session(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = if method == axum::http::Method::POST {
        match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(b) => Params::parse(&b),
            Err(_) => {
                return AuthorizeError::Page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The request is too large.",
                )
                .into_response();
            }
        }
    } else {
        Params::parse(uri.query().unwrap_or("").as_bytes())
    };
    let Ok(params) = params else {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, "The logout request is malformed.")
            .into_response();
    };
    let bad = |m: &'static str| AuthorizeError::Page(StatusCode::BAD_REQUEST, m).into_response();
    let hint = match params.get("id_token_hint") {
        Some(t) => match id_token_hint(&state, t) {
            Some(h) => Some(h),
            None => return bad("The logout request carries an invalid id_token_hint."),
        },
        None => None,
    };
    let client_id = match (hint.as_ref().map(|h| h.0.as_str()), params.get("client_id")) {
        (Some(a), Some(b)) if a != b => return bad("client_id does not match the id_token_hint."),
        (Some(a), _) | (None, Some(a)) => Some(a.to_owned()),
        (None, None) => None,
    };
    let target = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => state.store.client_by_client_id(id).await.ok().flatten(),
                None => None,
            };
            match client {
                Some(c) if c.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                    Some(uri.to_owned())
                }
                _ => return bad("The post_logout_redirect_uri is not registered for this client."),
            }
        }
    };
    let confirmed = method == axum::http::Method::POST && params.get("confirm").is_some();
    if confirmed && !csrf_matches(&headers, &params) {
        return AuthorizeError::Page(
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this site.",
        )
        .into_response();
    }
    let session = match cookie_value(&headers, SESSION_COOKIE) {
        Some(token) => state
            .store
            .live_session(&crypto::sha256(token.as_bytes()), now_ms())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    // A hint proves the relying party's intent only for the session it was issued in: a hint
    // from another session (another user's, or an old one) asks the user first.
    let hint_is_for_this_session = match (&hint, &session) {
        (Some((_, Some(sid))), Some(s)) => *sid == s.id,
        (Some(_), None) => true,
        _ => false,
    };
    if !hint_is_for_this_session && !confirmed {
        return logout_confirmation(&state, &headers, &params, client_id.as_deref());
    }
    // Signed in through a tenant's provider: with no client to return to, on to its logout.
    let upstream = match (&session, &target) {
        (Some(s), None) => crate::web::federation::upstream_logout(&state, s).await,
        _ => None,
    };
    // End this browser's session (and the refresh token families issued in it).
    if let Some(session) = session {
        if let Err(e) = state.store.revoke_session(&session.id, now_ms()).await {
            tracing::error!(error = %e, "ending a session failed");
            return AuthorizeError::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Signing out is unavailable right now; retry later.",
            )
            .into_response();
        }
        tracing::info!(session = %session.id, "signed out");
    }
    let mut response = match target {
        Some(uri) => {
            let mut url = match url::Url::parse(&uri) {
                Ok(u) => u,
                Err(_) => return bad("The post_logout_redirect_uri is invalid."),
            };
            if let Some(s) = params.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            redirect(url.as_str())
        }
        None => match upstream {
            Some(url) => redirect(&url),
            None => html(
                StatusCode::OK,
                &page("Signed out", "<h1>You are signed out</h1>"),
            ),
        },
    };
    if let Some(c) = set_cookie(&state, SESSION_COOKIE, "", "Lax", 0) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn logout_confirmation(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    client_id: Option<&str>,
) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return AuthorizeError::Page(StatusCode::SERVICE_UNAVAILABLE, "Unavailable right now.")
            .into_response();
    };
    let hidden = |name: &str, value: Option<&str>| {
        value
            .map(|v| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape(name),
                    escape(v)
                )
            })
            .unwrap_or_default()
    };
    let body = format!(
        "<h1>Sign out?</h1><form method=\"post\" action=\"{action}\">{csrf}{confirm}{client}{target}{st}\
         <button type=\"submit\">Sign out</button></form>",
        action = escape(&format!("{}connect/endsession", state.config.issuer)),
        csrf = hidden("csrf", Some(&csrf)),
        confirm = hidden("confirm", Some("1")),
        client = hidden("client_id", client_id),
        target = hidden(
            "post_logout_redirect_uri",
            params.get("post_logout_redirect_uri")
        ),
        st = hidden("state", params.get("state")),
    );
    let mut response = html(StatusCode::OK, &page("Sign out", &body));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
