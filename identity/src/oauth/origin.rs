//! Browser origins at the client-authenticating endpoints (token, revocation, introspection).
//!
//! A page on another origin calling these endpoints is a public client running in a browser:
//! the browser sets `Origin`, the page cannot. Such a request is served only when the client
//! lists that origin in its `allowed_origins`; any other (another site's page, a sandboxed
//! `null` origin, a confidential client, whose secret must never be in a page) is refused as
//! `unauthorized_client` before the grant is looked at, so a page elsewhere cannot redeem a
//! code or refresh token in the user's browser. The answer then names the origin in
//! `Access-Control-Allow-Origin` (the gateway hands these paths' CORS to identity: `cors` rules
//! with `origins = "client"`). A request with no `Origin`, or the issuer's own, is not a
//! cross-origin one.

use axum::http::header::{self, HeaderMap, HeaderValue};

use super::OAuthError;
use crate::AppState;
use crate::store::clients::ClientRow;

/// The `Origin` of a cross-origin request (`Some("null")` included); `None` for a request with
/// no `Origin` or the issuer's own.
fn cross_origin<'h>(state: &AppState, headers: &'h HeaderMap) -> Option<&'h str> {
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("null");
    let own = url::Url::parse(&state.config.issuer)
        .is_ok_and(|u| u.origin().ascii_serialization() == origin);
    (!own).then_some(origin)
}

/// Refuses a cross-origin request for a client that does not allow its origin; the origin to
/// name in the answer when it is allowed.
pub fn check(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientRow,
) -> Result<Option<HeaderValue>, OAuthError> {
    let Some(origin) = cross_origin(state, headers) else {
        return Ok(None);
    };
    if client.confidential || !client.allowed_origins.iter().any(|o| o == origin) {
        return Err(OAuthError::unauthorized_client(
            "the client does not allow requests from this browser origin",
        ));
    }
    Ok(HeaderValue::from_str(origin).ok())
}

/// Names the allowed origin in an answer (`Vary: Origin` either way, for caches).
pub fn allow(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
}
