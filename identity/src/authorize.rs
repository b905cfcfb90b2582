//! The authorization endpoint (`GET /connect/authorize`, RFC 6749 §4.1, OIDC Core §3.1.2) and
//! the server-rendered login form (`POST /login`).
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

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::clients::GRANT_AUTHORIZATION_CODE;
use crate::crypto;
use crate::oauth::token::{MAX_BODY_BYTES, Params};
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::store::events::EventRow;
use crate::store::grants::CodeRow;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;
use crate::store::users::{SessionRow, UserRow};

pub const SESSION_COOKIE: &str = "tansu_session";
pub const CSRF_COOKIE: &str = "tansu_csrf";

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
    /// The tenant to sign in for (id or slug), issue #4.
    pub tenant: Option<String>,
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

pub(crate) fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `redirect_uri` with the given parameters appended, plus `state` and `iss`.
fn client_redirect(
    state: &AppState,
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
        q.append_pair("iss", &state.config.issuer);
    }
    url.to_string()
}

fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    req_state: Option<&str>,
    error: &str,
    description: &str,
) -> AuthorizeError {
    AuthorizeError::Redirect(client_redirect(
        state,
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
        error_redirect(
            state,
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
    if let Some(bad) = scope_list.iter().find(|s| {
        !(scopes::is_known(s, state.config.dev_mode) && client.scopes.iter().any(|c| c == *s))
    }) {
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
    // A client of a tenant serves only that tenant's users: the sign-in is for its tenant.
    let tenant = match (&client.tenant_id, params.get("tenant")) {
        (None, hint) => hint.map(str::to_owned),
        (Some(own), None) => Some(own.clone()),
        (Some(own), Some(hint)) => {
            let same = hint == own
                || matches!(
                    state.store.tenant_by_ref(hint).await,
                    Ok(Some(t)) if t.id == *own
                );
            if !same {
                return Err(fail(
                    "invalid_request",
                    "this client serves only the users of its own tenant",
                ));
            }
            Some(own.clone())
        }
    };
    Ok(AuthRequest {
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
        tenant,
    })
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn cookie_path(state: &AppState) -> String {
    url::Url::parse(&state.config.issuer)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".into())
}

pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = if state.config.issuer.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}",
        cookie_path(state)
    ))
    .ok()
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

/// `GET /connect/authorize`
pub async fn authorize(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let raw = uri.query().unwrap_or("");
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

/// The session an authorization continues in.
pub(crate) enum InSession<'a> {
    /// A stored session (a returning user's cookie).
    Stored(&'a SessionRow),
    /// A sign-in's new session, not stored yet: it is stored with the sign-in's security
    /// event (and the code, when one is issued now), both or neither
    /// ([`crate::event_log::EventLog::append_sign_in`]).
    SignedIn(&'a SessionRow, Box<EventRow>),
}

impl InSession<'_> {
    fn session(&self) -> &SessionRow {
        match self {
            Self::Stored(s) | Self::SignedIn(s, _) => s,
        }
    }

    /// Stores a new session with its event and `code`; a stored session stores `code` only.
    pub(crate) async fn store(self, state: &AppState, code: Option<CodeRow>) -> anyhow::Result<()> {
        match (self, code) {
            (Self::Stored(_), None) => Ok(()),
            (Self::Stored(_), Some(code)) => Ok(state.store.insert_code(&code).await?),
            (Self::SignedIn(session, event), code) => {
                let session = session.clone();
                let new = crate::store::grants::NewSession { session, code };
                state.events.append_sign_in(*event, new).await
            }
        }
    }
}

/// The code for `req` in the session, as the redirect to the client.
async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    in_session: InSession<'_>,
    user: &UserRow,
) -> Result<Response, AuthorizeError> {
    let session = in_session.session();
    let code = crypto::random_secret().map_err(|_| {
        AuthorizeError::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now.",
        )
    })?;
    let now = now_ms();
    let lifetime =
        i64::try_from(state.config.authorization_code_lifetime_secs).unwrap_or(60) * 1000;
    let row = CodeRow {
        code_hash: crypto::sha256(code.as_bytes()),
        client_id: req.client.client_id.clone(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: scopes::for_user(&req.scopes, user.platform_admin).join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge.as_ref().map(|_| "S256".to_owned()),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + lifetime,
        used_at: None,
        issued_family_id: None,
        issued_access_jti: None,
        issued_access_exp: None,
    };
    if let Err(e) = in_session.store(state, Some(row)).await {
        tracing::error!(error = %e, "storing an authorization code failed");
        return Err(error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "temporarily_unavailable",
            "retry later",
        ));
    }
    Ok(redirect(&client_redirect(
        state,
        &req.redirect_uri,
        req.state.as_deref(),
        &[("code", &code)],
    )))
}

/// Once the user is known: the consent page when it is needed, else the code.
///
/// Consent is asked for third-party clients (for scopes the user has not granted them yet) and
/// whenever the client sends `prompt=consent`; with `prompt=none` it is `consent_required`.
pub(crate) async fn continue_authorization(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    session: &SessionRow,
    user: &UserRow,
) -> Response {
    continue_in_session(state, headers, req, InSession::Stored(session), user)
        .await
        .unwrap_or_else(|failed| failed)
}

/// [`continue_authorization`] in a session that may be new: a new session is stored with the
/// code, or without one before the consent page. `Err`: the failure's page, and a new session
/// was not stored.
pub(crate) async fn continue_in_session(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    in_session: InSession<'_>,
    user: &UserRow,
) -> Result<Response, Response> {
    let needed = consent_needed(state, req, user)
        .await
        .map_err(IntoResponse::into_response)?;
    if !needed {
        return issue_code(state, req, in_session, user)
            .await
            .map_err(IntoResponse::into_response);
    }
    if let Err(e) = in_session.store(state, None).await {
        return Err(crate::login_steps::unavailable(&e));
    }
    Ok(ask_consent(state, headers, req))
}

/// Whether the user must consent first: third-party clients for scopes the user has not
/// granted them yet, and `prompt=consent`.
async fn consent_needed(
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
fn ask_consent(state: &AppState, headers: &HeaderMap, req: &AuthRequest) -> Response {
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
    let mut response = html(StatusCode::OK, &page("Allow access", &body));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Reads a submitted HTML form and checks its CSRF token: the form, or the error page
/// (413 too large, 400 malformed, 403 with `expired` when the token does not match).
#[allow(clippy::result_large_err)] // the error is the page the handler answers with
pub(crate) async fn read_csrf_form(
    headers: &HeaderMap,
    body: Body,
    expired: &'static str,
) -> Result<Params, Response> {
    let page = |status, message| Err(AuthorizeError::Page(status, message).into_response());
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(form) = Params::parse(&bytes) else {
        return page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    if !csrf_matches(headers, &form) {
        return page(StatusCode::FORBIDDEN, expired);
    }
    Ok(form)
}

/// The 403 text of an expired or foreign form.
pub(crate) const FORM_EXPIRED: &str = "The form expired or was not sent from this site.";
/// [`FORM_EXPIRED`] on the sign-in pages.
pub(crate) const SIGN_IN_FORM_EXPIRED: &str =
    "The form expired or was not sent from this site. Go back and sign in again.";

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

/// `POST /login`: the login form's submission.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let email = form.get("email").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    // Locks are keyed by what was typed, known account or not: they reveal nothing.
    let ip = client_ip(&headers);
    let typed: String = email.to_lowercase().chars().take(320).collect();
    let account_key = format!("a:{typed}|{ip}");
    let ip_key = format!("i:{ip}");
    // An empty or over-long email names no account (and is not looked up).
    let lookup = if email.is_empty() || email.len() > 320 {
        ""
    } else {
        email
    };
    let (failures_pending, found) = match state
        .store
        .sign_in_lookup(&account_key, &ip_key, now_ms(), lookup)
        .await
    {
        Ok((gate, found)) if gate.locked_until.is_none() => (gate.failures_pending, found),
        Ok(_) => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "locked").increment(1);
            tracing::info!(ip = %ip, "sign-in refused: temporarily locked");
            sign_in_event(
                &state,
                &headers,
                None,
                crate::events::LOCKOUT,
                "anonymous".into(),
                "denied",
                &typed,
            )
            .await;
            return login_page(
                &state,
                &headers,
                &req,
                Some("Too many failed attempts. Wait a few minutes and retry."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in lookup failed");
            return AuthorizeError::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now; retry later.",
            )
            .into_response();
        }
    };
    let lockout = lockout_for(
        &state,
        found.as_ref().map_or(&[][..], |a| a.tenants.as_slice()),
    );
    let (user, known) = match found {
        Some(a) => {
            let known = crate::login_steps::Known {
                enrolled: Some(a.mfa_enrolled),
                tenants: Some(a.tenants),
            };
            (Some(a.user), known)
        }
        None => (None, crate::login_steps::Known::default()),
    };
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
            tracing::info!(ip = %ip, "sign-in failed");
            let failures = record_failure(&state, lockout, &account_key, &ip_key).await;
            sign_in_event(
                &state,
                &headers,
                None,
                crate::events::SIGN_IN,
                "anonymous".into(),
                "failure",
                &typed,
            )
            .await;
            if failures >= lockout.threshold {
                sign_in_event(
                    &state,
                    &headers,
                    None,
                    crate::events::LOCKOUT,
                    "system".into(),
                    "engaged",
                    &typed,
                )
                .await;
            }
            let delay = state
                .config
                .login_failure_delay_ms
                .saturating_mul(u64::try_from(failures).unwrap_or(0))
                .min(2000);
            if delay > 0 {
                // Progressive delay: slows guessing; the lock stops it.
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            return login_page(
                &state,
                &headers,
                &req,
                Some("Invalid email or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    // The second factor, the tenant choice and a forced enrolment come next, if needed.
    let mut step = crate::login_steps::first_step(&headers, &user, account_key);
    step.failures_pending = failures_pending;
    crate::login_steps::advance(&state, &headers, &req, &user, (step, known), None).await
}

/// The client's IP: the rightmost `X-Forwarded-For` entry (the address the gateway in front
/// of the service saw), else `unknown`.
pub fn client_ip(headers: &HeaderMap) -> String {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .next_back()
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// Records a sign-in event (the typed email in the details; never the password).
pub(crate) async fn sign_in_event(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: Option<&str>,
    kind: &str,
    actor: String,
    outcome: &str,
    email: &str,
) {
    let meta = crate::events::Meta::from_headers(headers);
    let event = sign_in(tenant_id, kind, actor, outcome, email);
    crate::events::record(state, &meta, event).await;
}

/// A sign-in event (the typed email in the details; never the password).
pub(crate) fn sign_in<'a>(
    tenant_id: Option<&'a str>,
    kind: &'a str,
    actor: String,
    outcome: &'a str,
    email: &str,
) -> crate::events::Event<'a> {
    crate::events::Event {
        tenant_id,
        kind,
        actor,
        outcome,
        details: serde_json::json!({ "email": email }),
    }
}

/// The lock rules of a sign-in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lockout {
    /// Failures of an (account, IP) pair before it is locked.
    pub threshold: i64,
    pub lock_ms: i64,
}

/// The lock rules for an account: the strictest of the service's configuration and the
/// policies of the account's own tenants (lowest threshold, longest lock). Never the policy of
/// a tenant the request names: an attacker choosing a lax tenant must not loosen the lock of
/// an account that belongs to strict ones. An unknown account gets the configuration's.
pub(crate) fn lockout_for(state: &AppState, tenants: &[TenantRow]) -> Lockout {
    let mut lockout = Lockout {
        threshold: i64::from(state.config.login_lockout_threshold),
        lock_ms: i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2),
    };
    for t in tenants {
        let policy = crate::tenants::TenantPolicy::of(t);
        lockout.threshold = lockout.threshold.min(i64::from(policy.lockout_threshold));
        lockout.lock_ms = lockout.lock_ms.max(
            i64::try_from(policy.lockout_duration_secs)
                .unwrap_or(86_400)
                .saturating_mul(1000),
        );
    }
    lockout
}

/// [`lockout_for`] the tenants of a known user (the configuration's if they cannot be read).
pub(crate) async fn lockout_of_user(state: &AppState, user_id: &str) -> Lockout {
    let tenants = state
        .store
        .tenants_of_user(user_id)
        .await
        .unwrap_or_default();
    lockout_for(state, &tenants)
}

/// Counts a failed sign-in for the (account, IP) pair and the IP; returns the pair's count.
pub(crate) async fn record_failure(
    state: &AppState,
    lockout: Lockout,
    account_key: &str,
    ip_key: &str,
) -> i64 {
    let now = now_ms();
    let ip_lock = i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2);
    let account = state
        .store
        .record_login_failure(account_key, now, lockout.threshold, lockout.lock_ms)
        .await;
    let by_ip = state
        .store
        .record_login_failure(
            ip_key,
            now,
            i64::from(state.config.login_ip_lockout_threshold),
            ip_lock,
        )
        .await;
    if let Err(e) = by_ip.as_ref().and(account.as_ref()) {
        tracing::warn!(error = %e, "recording a failed sign-in failed");
    }
    account.unwrap_or(0)
}

/// The tenant a (password-verified) sign-in is for: the `tenant` hint (id or slug), else the
/// user's only membership; `None` for a user without memberships (a platform identity).
/// The tenant must be active and have the user as a member.
pub(crate) async fn login_tenant(
    state: &AppState,
    user: &UserRow,
    hint: Option<&str>,
) -> Result<Option<TenantRow>, &'static str> {
    let tenants = state
        .store
        .tenants_of_user(&user.id)
        .await
        .map_err(|_| LOGIN_UNAVAILABLE)?;
    pick_login_tenant(tenants, hint)
}

/// Refused sign-ins to a tenant (the same words whatever the reason).
pub(crate) const NO_TENANT_ACCESS: &str = "This account cannot sign in to this tenant.";
const LOGIN_UNAVAILABLE: &str = "Sign-in is unavailable right now; retry later.";

/// [`login_tenant`] over the user's tenants, already read.
pub(crate) fn pick_login_tenant(
    mut tenants: Vec<TenantRow>,
    hint: Option<&str>,
) -> Result<Option<TenantRow>, &'static str> {
    let tenant = match hint {
        Some(hint) => tenants
            .into_iter()
            .find(|t| t.id == hint || t.slug == hint)
            .ok_or(NO_TENANT_ACCESS)?,
        None => match tenants.len() {
            0 => return Ok(None),
            1 => tenants.remove(0),
            _ => {
                return Err(
                    "This account belongs to several tenants; the application must name one.",
                );
            }
        },
    };
    if tenant.status == crate::tenants::STATUS_ACTIVE {
        Ok(Some(tenant))
    } else {
        Err(NO_TENANT_ACCESS)
    }
}

pub(crate) fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return AuthorizeError::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now.",
        )
        .into_response();
    };
    let action = format!("{}login", state.config.issuer);
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error_html}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required value=\"{hint}\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>{register}",
        register = if state.config.registration_open() {
            format!(
                "<p>New here? <a href=\"{}\">Create a shop</a></p>",
                escape(&format!("{}register?{}", state.config.issuer, req.raw))
            )
        } else {
            String::new()
        },
        client = escape(&req.client.name),
        action = escape(&action),
        csrf = escape(&csrf),
        request = escape(&req.raw),
        hint = escape(req.login_hint.as_deref().unwrap_or("")),
    );
    let mut response = html(status, &page("Sign in", &body));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Tansu</title><style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}\
         label{{display:block;margin:.75rem 0}}input{{display:block;width:100%;padding:.4rem}}\
         .error{{color:#b00020}}button{{padding:.5rem 1rem}}</style></head><body>{}</body></html>",
        escape(title),
        body
    )
}

pub(crate) fn html(status: StatusCode, content: &str) -> Response {
    let mut r = (status, content.to_owned()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// HTML text and attribute escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSRF token of this browser (from its cookie) or a new one with the cookie to set.
pub(crate) fn csrf_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(String, Option<HeaderValue>)> {
    let existing = cookie_value(headers, CSRF_COOKIE).filter(|c| {
        c.len() == 43
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match existing {
        Some(c) => Some((c.to_owned(), None)),
        None => {
            let c = crypto::random_secret().ok()?;
            let cookie = set_cookie(state, CSRF_COOKIE, &c, "Strict", 3600);
            Some((c, cookie))
        }
    }
}

pub(crate) fn csrf_matches(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie_value(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => c.len() == f.len() && bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    }
}

/// Checks an `id_token_hint`: our signature and issuer; expiry is not checked (OIDC
/// RP-Initiated Logout §2 allows expired hints). Returns the client it was issued to and its
/// `sid`.
fn id_token_hint(state: &AppState, token: &str) -> Option<(String, Option<String>)> {
    if token.len() > 8 * 1024 {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    let ring = state.keys.ring();
    let key = ring.get(header.kid.as_deref()?)?;
    if key.alg.jwt() != header.alg {
        return None;
    }
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.set_issuer(&[state.config.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
        .ok()?
        .claims;
    let aud = match &claims["aud"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.first()?.as_str()?.to_owned(),
        _ => return None,
    };
    let sid = claims["sid"].as_str().map(str::to_owned);
    Some((aud, sid))
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
        None => html(
            StatusCode::OK,
            &page("Signed out", "<h1>You are signed out</h1>"),
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_pkce_syntax() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert!(is_pkce_value(&"a".repeat(43)));
        assert!(!is_pkce_value(&"a".repeat(42)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }
}
