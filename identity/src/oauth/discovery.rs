//! OpenID Connect Discovery 1.0 and RFC 8414 metadata, and the JWKS.
//!
//! Every URL is built from the configured issuer string, never from the request: behind the
//! gateway the service is reached at its root while the world knows it as `…/identity/`.
//! Only what is implemented is advertised; the list grows as grants and endpoints land.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::clients::GRANTS_IMPLEMENTED;
use crate::keys::SigningAlg;
use crate::scopes;
use crate::store::now_ms;

/// The metadata document (the same for both well-known names; RFC 8414 §3 allows the OIDC
/// members in the OAuth document).
pub fn metadata(state: &AppState) -> serde_json::Value {
    let issuer = &state.config.issuer;
    let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}connect/authorize"),
        "token_endpoint": format!("{issuer}connect/token"),
        "userinfo_endpoint": format!("{issuer}connect/userinfo"),
        "end_session_endpoint": format!("{issuer}connect/endsession"),
        "jwks_uri": format!("{issuer}.well-known/jwks"),
        "introspection_endpoint": format!("{issuer}connect/introspect"),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt"
        ],
        "revocation_endpoint": format!("{issuer}connect/revocation"),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
        ],
        "scopes_supported": scopes::known(state.config.dev_mode),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANTS_IMPLEMENTED,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "private_key_jwt", "none"
        ],
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": tansu_shared::auth::dpop::ALGORITHM_NAMES,
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "tid", "roles",
            "auth_time", "nonce", "at_hash", "sid", "amr", "email", "email_verified", "name"
        ],
    })
}

fn cacheable(value: serde_json::Value, max_age: u64) -> Response {
    let mut response = axum::Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`
pub async fn configuration(State(state): State<AppState>) -> Response {
    cacheable(metadata(&state), 300)
}

/// `GET /.well-known/jwks`: next, current and retiring keys. `max-age` is shorter than the
/// rotation lead time, so verifiers fetch a new key before it signs.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let policy = state.keys.policy();
    let grace = i64::try_from(policy.grace.as_millis()).unwrap_or(i64::MAX);
    let ring = state.keys.ring();
    let keys: Vec<&serde_json::Value> = ring.published(now_ms(), grace).map(|k| &k.jwk).collect();
    cacheable(json!({ "keys": keys }), policy.jwks_max_age().as_secs())
}

/// The link relation of an OpenID Connect issuer (OIDC Discovery §2).
const ISSUER_REL: &str = "http://openid.net/specs/connect/1.0/issuer";

/// `GET /.well-known/webfinger?resource=…&rel=…` (RFC 7033, OIDC Discovery §2): every resource
/// has this issuer. The answer is the same for any account, existing or not, so it tells
/// nothing about who has an account.
pub async fn webfinger(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let mut resource = None;
    let mut rels = Vec::new();
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "resource" if resource.is_none() => resource = Some(v.into_owned()),
            "resource" => return webfinger_bad("resource is repeated"),
            "rel" => rels.push(v.into_owned()),
            _ => {}
        }
    }
    let Some(resource) = resource.filter(|r| !r.is_empty() && r.len() <= 1024) else {
        return webfinger_bad("resource is required");
    };
    let links: Vec<_> = if rels.is_empty() || rels.iter().any(|r| r == ISSUER_REL) {
        vec![json!({ "rel": ISSUER_REL, "href": state.config.issuer })]
    } else {
        Vec::new()
    };
    let mut response = cacheable(json!({ "subject": resource, "links": links }), 300);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jrd+json"),
    );
    response
}

fn webfinger_bad(detail: &str) -> Response {
    tansu_shared::problem::Problem::bad_request(detail).into_response()
}
