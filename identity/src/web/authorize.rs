//! The authorization endpoint (`GET /connect/authorize`, RFC 6749 §4.1, OIDC Core §3.1.2) and
//! what continues it once the user is known (code issuance, consent when needed).
//!
//! Security decisions:
//! - Until the client and its redirect URI are known good (exact string match with a registered
//!   URI), errors are shown on a page, never redirected: no open redirector. After that, errors
//!   go back to the client with `state` and `iss` (RFC 9207).
//! - PKCE: a `code_challenge` must use S256 (`plain` is refused); public clients must send one.
//! - Sessions: a random 256-bit cookie token (`__Host-`-style attributes: HttpOnly, SameSite=Lax,
//!   Secure when the issuer is https, Path = the issuer's path); the database keeps its SHA-256.
//! - The login form carries a CSRF token checked against a SameSite=Strict cookie (double
//!   submit, compared in constant time), and the whole authorization request, which is
//!   validated again on submission. Unknown account and wrong password give the same answer.
//! - `prompt=login` and an exceeded `max_age` force a fresh login; `prompt=none` never shows
//!   a page (`login_required` instead).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::clients::GRANT_AUTHORIZATION_CODE;
use crate::crypto;
use crate::oauth::code::is_pkce_value;
use crate::oauth::params::Params;
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::store::now_ms;
use crate::store::users::{SessionRow, UserRow};
use crate::web::page::SESSION_COOKIE;
use crate::web::page::cookie_value;
use crate::web::page::escape;
use crate::web::page::html;
use crate::web::page::page;
use crate::web::page::redirect;
use crate::web::password::login_page;

mod issue;
pub(crate) use issue::{InSession, continue_authorization, continue_in_session, issue_code};

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub raw: String,
    pub client: ClientRow,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The tenant to sign in for (id or slug).
    pub tenant: Option<String>,
    /// The look of that tenant's pages (`None`: the platform's).
    pub brand: Option<crate::web::page::Brand>,
    /// The tenant's external providers on its login page.
    pub federation: crate::web::federation::Offer,
}

/// Why a request cannot proceed.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user (client or redirect URI not trustworthy).
    Page(StatusCode, &'static str),
    /// Sent back to the client.
    Redirect(String),
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Page(status, message) => html(
                status,
                &page(
                    "Sign-in request refused",
                    &format!("<p>{}</p>", escape(message)),
                ),
            ),
            AuthorizeError::Redirect(url) => redirect(&url),
        }
    }
}

/// `redirect_uri` with the given parameters appended, plus `state` and `iss`.
fn client_redirect(
    issuer: &str,
    req_redirect: &str,
    req_state: Option<&str>,
    pairs: &[(&str, &str)],
) -> String {
    let Ok(mut url) = url::Url::parse(req_redirect) else {
        return req_redirect.to_owned();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = req_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

pub(crate) fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    req_state: Option<&str>,
    error: &str,
    description: &str,
) -> AuthorizeError {
    error_redirect_from(
        &state.config.issuer,
        redirect_uri,
        req_state,
        error,
        description,
    )
}

/// The error sent back to the client's `redirect_uri`, from `issuer` (RFC 9207).
fn error_redirect_from(
    issuer: &str,
    redirect_uri: &str,
    req_state: Option<&str>,
    error: &str,
    description: &str,
) -> AuthorizeError {
    AuthorizeError::Redirect(client_redirect(
        issuer,
        redirect_uri,
        req_state,
        &[("error", error), ("error_description", description)],
    ))
}

/// Validates an authorization request given as a query string.
pub async fn parse_request(state: &AppState, raw: &str) -> Result<AuthRequest, AuthorizeError> {
    let params = Params::parse(raw.as_bytes()).map_err(|_| {
        AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "The request is malformed (a parameter is repeated or not UTF-8).",
        )
    })?;
    let client_id = params.get("client_id").ok_or(AuthorizeError::Page(
        StatusCode::BAD_REQUEST,
        "The request names no client.",
    ))?;
    let client = state
        .client(client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "client lookup failed");
            AuthorizeError::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now; retry later.",
            )
        })?
        .ok_or(AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "The request names an unknown client.",
        ))?;
    let mut req = check_request(
        &state.config.issuer,
        state.config.dev_mode,
        raw,
        &params,
        client,
    )?;
    // A client of a tenant serves only that tenant's users: the sign-in is for its tenant.
    let tenant = match (&req.client.tenant_id, params.get("tenant")) {
        (None, hint) => hint.map(str::to_owned),
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(hint)) => {
            let same = hint == own
                || matches!(
                    state.store.tenant_by_ref(hint).await,
                    Ok(Some(t)) if t.id == *own
                );
            if !same {
                return Err(error_redirect(
                    state,
                    &req.redirect_uri,
                    req.state.as_deref(),
                    "invalid_request",
                    "this client serves only the users of its own tenant",
                ));
            }
            Some(own.clone())
        }
    };
    let (brand, federation) = match &tenant {
        Some(t) => match state.store.tenant_by_ref(t).await {
            Ok(Some(t)) if t.status == crate::tenants::STATUS_ACTIVE => (
                Some(crate::web::page::Brand::of(&t)),
                crate::web::federation::offer(state, &t.id).await,
            ),
            _ => (None, Default::default()),
        },
        None => (None, Default::default()),
    };
    req.tenant = tenant;
    req.brand = brand;
    req.federation = federation;
    Ok(req)
}

/// The checks of an authorization request that need nothing but the request and its client,
/// in order: a registered `redirect_uri` (until then errors are pages, never redirects), then
/// `response_type`, request objects, `response_mode`, the client's grant types, the scopes,
/// PKCE, `prompt`, `max_age` and `nonce` (errors sent back to the client). The tenant is left
/// for [`parse_request`] (naming one may need the store).
pub fn check_request(
    issuer: &str,
    dev_mode: bool,
    raw: &str,
    params: &Params,
    client: ClientRow,
) -> Result<AuthRequest, AuthorizeError> {
    let redirect_uri = params.get("redirect_uri").ok_or(AuthorizeError::Page(
        StatusCode::BAD_REQUEST,
        "The request has no redirect_uri.",
    ))?;
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "The redirect_uri is not registered for this client.",
        ));
    }
    let redirect_uri = redirect_uri.to_owned();
    let req_state = params.get("state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        error_redirect_from(
            issuer,
            &redirect_uri,
            req_state.as_deref(),
            error,
            description,
        )
    };

    match params.get("response_type") {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if !client
        .grant_types
        .iter()
        .any(|g| g == GRANT_AUTHORIZATION_CODE)
    {
        return Err(fail(
            "unauthorized_client",
            "the client may not use the authorization code flow",
        ));
    }
    let requested = params.get("scope").unwrap_or("");
    let scope_list =
        scopes::parse(requested).ok_or_else(|| fail("invalid_scope", "malformed scope"))?;
    if scope_list.is_empty() {
        return Err(fail("invalid_scope", "scope is required"));
    }
    if let Some(bad) = scope_list
        .iter()
        .find(|s| !(scopes::is_known(s, dev_mode) && client.scopes.iter().any(|c| c == *s)))
    {
        let _ = bad;
        return Err(fail(
            "invalid_scope",
            "a requested scope is not allowed for this client",
        ));
    }
    let code_challenge = params.get("code_challenge").map(str::to_owned);
    match (
        code_challenge.as_deref(),
        params.get("code_challenge_method"),
    ) {
        (Some(c), Some("S256")) if is_pkce_value(c) => {}
        (Some(_), Some("S256")) => {
            return Err(fail("invalid_request", "code_challenge is malformed"));
        }
        (Some(_), None | Some("plain")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(fail("invalid_request", "unsupported code_challenge_method"));
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if !client.confidential => {
            return Err(fail(
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ));
        }
        (None, None) => {}
    }
    let prompt: Vec<String> = params
        .get("prompt")
        .map(|p| {
            p.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail("invalid_request", "prompt=none cannot be combined"));
    }
    let max_age =
        match params.get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                fail("invalid_request", "max_age must be a non-negative integer")
            })?),
        };
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(fail("invalid_request", "nonce is too long"));
    }
    Ok(AuthRequest {
        brand: None,
        federation: Default::default(),
        raw: raw.to_owned(),
        client,
        redirect_uri,
        state: req_state,
        scopes: scope_list,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        tenant: None,
    })
}

/// The signed-in user of this browser, if the session cookie names a live session.
pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(SessionRow, UserRow)> {
    let token = cookie_value(headers, SESSION_COOKIE)?;
    let session = state
        .store
        .live_session(&crypto::sha256(token.as_bytes()), now_ms())
        .await
        .ok()??;
    let user = state.store.user_by_id(&session.user_id).await.ok()??;
    (!user.disabled).then_some((session, user))
}

/// The longest form body `POST /connect/authorize` reads (a request's parameters; a URL that
/// long would not pass a browser either).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// `GET /connect/authorize`
pub async fn authorize(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    authorize_raw(state, headers, uri.query().unwrap_or("")).await
}

/// `POST /connect/authorize` (OIDC Core §3.1.2.1: an OP supports GET and POST): the form body
/// is the request, validated and answered exactly like GET's query. A cross-site POST does not
/// carry the session cookie (SameSite=Lax), so it can never ride a session to a code: it lands
/// on the login page like a first visit (and `prompt=none` answers `login_required`).
pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return AuthorizeError::Page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The request must be sent as a form (application/x-www-form-urlencoded).",
        )
        .into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return AuthorizeError::Page(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.")
            .into_response();
    };
    let Ok(raw) = std::str::from_utf8(&bytes) else {
        return AuthorizeError::Page(
            StatusCode::BAD_REQUEST,
            "The request is malformed (a parameter is repeated or not UTF-8).",
        )
        .into_response();
    };
    authorize_raw(state, headers, raw).await
}

/// An authorization request, `raw` in `application/x-www-form-urlencoded` form (GET's query or
/// POST's body).
async fn authorize_raw(state: AppState, headers: HeaderMap, raw: &str) -> Response {
    let req = match parse_request(&state, raw).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let session = current_session(&state, &headers).await;
    let now = now_ms();
    let fresh_enough = |s: &SessionRow| {
        req.max_age
            .is_none_or(|m| now - s.auth_time <= m.saturating_mul(1000))
    };
    let wanted_tenant = match &req.tenant {
        None => None,
        Some(hint) => Some(
            state
                .store
                .tenant_by_ref(hint)
                .await
                .ok()
                .flatten()
                .map(|t| t.id),
        ),
    };
    // Switching tenant is a new sign-in: a session serves only the tenant it signed in for.
    let same_tenant = |s: &SessionRow| {
        wanted_tenant
            .as_ref()
            .is_none_or(|w| w.is_some() && *w == s.tenant_id)
    };
    match session {
        Some((s, user))
            if !req.prompt.iter().any(|p| p == "login") && fresh_enough(&s) && same_tenant(&s) =>
        {
            continue_authorization(&state, &headers, &req, &s, &user).await
        }
        _ if req.prompt.iter().any(|p| p == "none") => error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            "login_required",
            "the user must sign in",
        )
        .into_response(),
        _ => login_page(&state, &headers, &req, None, StatusCode::OK),
    }
}
