//! The registration form: a new shop (tenant, database, owner) from the browser.
//!
//! Routes:
//! - `GET/POST /register` — the server-rendered form (self-service; CSRF double submit like the
//!   login form). Reached from the login page with the same authorization request, after which
//!   the new owner is signed in and the authorization continues (code to the client's
//!   registered `redirect_uri`); or with `client_id` + `return_to`, where `return_to` must be
//!   one of that client's registered redirect or post-logout URIs. Nothing else redirects.
//! - `POST /registrations` — the self-service JSON API;
//! - `POST /admin/registrations` — the same for platform administrators (always available).
//!
//! Self-service is open when `registration_enabled` (default: dev mode). What a registration
//! does, and what a refusal reveals: [`crate::registration`].
// `Problem` is the handlers' error type.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zeroize::Zeroizing;

use crate::AppState;
use crate::crypto;
use crate::events::{self, Meta};
use crate::oauth::params::{MAX_BODY_BYTES, Params};
use crate::registration::Registered;
use crate::registration::RegistrationInput;
use crate::registration::register;
use crate::store::users::SessionRow;
use crate::store::{new_id, now_ms};
use crate::web::authorize::{self, AuthRequest, AuthorizeError};
use crate::web::page;
use crate::web::page::escape;

// ---------------------------------------------------------------- JSON API

// ---------------------------------------------------------------- HTML form

/// Where the browser goes after registering.
pub(crate) enum Continue {
    /// The authorization request it came with (from the login page).
    Authorization(Box<AuthRequest>),
    /// A registered redirect or post-logout URI of `client_id`.
    ReturnTo { client_id: String, url: String },
    /// A page here.
    Done,
}

impl Continue {
    fn hidden_fields(&self) -> String {
        let field = |name: &str, value: &str| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        };
        match self {
            Continue::Authorization(req) => field("request", &req.raw),
            Continue::ReturnTo { client_id, url } => {
                format!(
                    "{}{}",
                    field("client_id", client_id),
                    field("return_to", url)
                )
            }
            Continue::Done => String::new(),
        }
    }
}

fn refused(status: StatusCode, message: &'static str) -> Response {
    AuthorizeError::Page(status, message).into_response()
}

/// Reads where to continue from the page's query or the form: an authorization request
/// (`request` in the form; the whole query on `GET`), or `client_id` + `return_to`.
pub(crate) async fn continuation(
    state: &AppState,
    request: Option<&str>,
    client_id: Option<&str>,
    return_to: Option<&str>,
) -> Result<Continue, Response> {
    if let Some(raw) = request.filter(|r| !r.is_empty()) {
        return authorize::parse_request(state, raw)
            .await
            .map(|r| Continue::Authorization(Box::new(r)))
            .map_err(IntoResponse::into_response);
    }
    match (client_id, return_to) {
        (None, None) => Ok(Continue::Done),
        (Some(client_id), Some(url)) => {
            let client = state
                .store
                .client_by_client_id(client_id)
                .await
                .map_err(|_| {
                    refused(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Registration is unavailable right now; retry later.",
                    )
                })?;
            // Exact match with a URI the client registered: no open redirect.
            match client {
                Some(c)
                    if c.redirect_uris.iter().any(|u| u == url)
                        || c.post_logout_redirect_uris.iter().any(|u| u == url) =>
                {
                    Ok(Continue::ReturnTo {
                        client_id: client_id.to_owned(),
                        url: url.to_owned(),
                    })
                }
                _ => Err(refused(
                    StatusCode::BAD_REQUEST,
                    "The return address is not registered for this application.",
                )),
            }
        }
        _ => Err(refused(
            StatusCode::BAD_REQUEST,
            "return_to needs the client_id that registered it.",
        )),
    }
}

/// The values the form shows again after an error (never the password).
#[derive(Default)]
struct Typed {
    email: String,
    shop_name: String,
    slug: String,
    name: String,
}

fn form(
    state: &AppState,
    headers: &HeaderMap,
    next: &Continue,
    typed: &Typed,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, cookie)) = page::csrf_token(state, headers) else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Registration is unavailable right now.",
        );
    };
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Create your shop</h1>{error_html}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{next}\
         <label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required value=\"{email}\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required minlength=\"12\"></label>\
         <label>Your name (optional) <input type=\"text\" name=\"name\" autocomplete=\"name\" value=\"{name}\"></label>\
         <label>Shop name <input type=\"text\" name=\"shop_name\" required value=\"{shop}\"></label>\
         <label>Shop address (optional; a-z, 0-9, -) <input type=\"text\" name=\"slug\" pattern=\"[a-z0-9-]{{3,63}}\" value=\"{slug}\"></label>\
         <button type=\"submit\">Create shop</button></form>",
        action = escape(&format!("{}register", state.config.issuer)),
        csrf = escape(&csrf),
        next = next.hidden_fields(),
        email = escape(&typed.email),
        name = escape(&typed.name),
        shop = escape(&typed.shop_name),
        slug = escape(&typed.slug),
    );
    let mut response = page::html(status, &page::page("Create your shop", &body));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `GET /register[?<authorization request> | ?client_id=…&return_to=…]`
pub(crate) async fn form_page(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !state.config.registration_open() {
        return refused(StatusCode::NOT_FOUND, "Registration is not open.");
    }
    let raw = uri.query().unwrap_or("");
    let Ok(params) = Params::parse(raw.as_bytes()) else {
        return refused(StatusCode::BAD_REQUEST, "The request is malformed.");
    };
    let next = if params.get("response_type").is_some() {
        continuation(&state, Some(raw), None, None).await
    } else {
        continuation(
            &state,
            None,
            params.get("client_id"),
            params.get("return_to"),
        )
        .await
    };
    match next {
        Ok(next) => form(
            &state,
            &headers,
            &next,
            &Typed::default(),
            None,
            StatusCode::OK,
        ),
        Err(r) => r,
    }
}

/// `POST /register`: the form's submission.
pub(crate) async fn form_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.config.registration_open() {
        return refused(StatusCode::NOT_FOUND, "Registration is not open.");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(f) = Params::parse(&bytes) else {
        return refused(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    if !page::csrf_matches(&headers, &f) {
        return refused(
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this site. Go back and try again.",
        );
    }
    let next = match continuation(
        &state,
        f.get("request"),
        f.get("client_id"),
        f.get("return_to"),
    )
    .await
    {
        Ok(n) => n,
        Err(r) => return r,
    };
    let typed = Typed {
        email: f.get("email").unwrap_or("").chars().take(320).collect(),
        shop_name: f.get("shop_name").unwrap_or("").chars().take(200).collect(),
        slug: f.get("slug").unwrap_or("").chars().take(63).collect(),
        name: f.get("name").unwrap_or("").chars().take(200).collect(),
    };
    let input = RegistrationInput {
        email: f.get("email").unwrap_or("").to_owned(),
        password: Zeroizing::new(f.get("password").unwrap_or("").to_owned()),
        shop_name: f.get("shop_name").unwrap_or("").to_owned(),
        slug: f.get("slug").map(str::to_owned),
        name: f.get("name").unwrap_or("").to_owned(),
    };
    let meta = Meta::from_headers(&headers);
    let done = match register(&state.registrar(), input, &meta, None).await {
        Ok(d) => d,
        Err(e) => {
            return form(
                &state,
                &headers,
                &next,
                &typed,
                Some(&e.message()),
                e.status(),
            );
        }
    };
    state.registered(&done).await;
    signed_in(&state, &headers, &meta, &next, &done).await
}

/// The new owner is signed in (a session for the new tenant), then continues.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    meta: &Meta,
    next: &Continue,
    done: &Registered,
) -> Response {
    let session = match crypto::random_secret() {
        Ok(token) => {
            let now = now_ms();
            let lifetime = state.config.session_lifetime_secs;
            let row = SessionRow {
                id: new_id(),
                token_hash: crypto::sha256(token.as_bytes()),
                user_id: done.user.id.clone(),
                auth_time: now,
                amr: "pwd".into(),
                created_at: now,
                expires_at: now + i64::try_from(lifetime).unwrap_or(3600) * 1000,
                revoked_at: None,
                tenant_id: Some(done.tenant.id.clone()),
            };
            match state.store.insert_session(&row).await {
                Ok(()) => Some((row, token, lifetime)),
                Err(e) => {
                    tracing::error!(error = %e, "storing the new owner's session failed");
                    None
                }
            }
        }
        Err(_) => None,
    };
    let Some((session, token, lifetime)) = session else {
        // Registered, but not signed in: the user signs in normally.
        let body = format!(
            "<h1>Your shop is ready</h1><p><strong>{}</strong> was created. Sign in to continue.</p>",
            escape(&done.tenant.name)
        );
        return page::html(StatusCode::OK, &page::page("Shop created", &body));
    };
    events::record(
        &state.events,
        meta,
        events::Event {
            tenant_id: Some(&done.tenant.id),
            kind: events::SIGN_IN,
            actor: format!("user:{}", done.user.id),
            outcome: "success",
            details: json!({"email": done.user.email, "via": "registration"}),
        },
    )
    .await;
    let mut response = match next {
        Continue::Authorization(req) => {
            authorize::continue_authorization(state, headers, req, &session, &done.user).await
        }
        Continue::ReturnTo { url, .. } => page::redirect(url),
        Continue::Done => {
            let dashboard = if state.config.dev_mode && !state.config.dev_dashboard_url.is_empty() {
                format!(
                    "<p><a href=\"{}\">Open the dashboard</a></p>",
                    escape(&state.config.dev_dashboard_url)
                )
            } else {
                String::new()
            };
            let body = format!(
                "<h1>Your shop is ready</h1><p><strong>{}</strong> (<code>{}</code>) was created and you are signed in.</p>{dashboard}",
                escape(&done.tenant.name),
                escape(&done.tenant.slug),
            );
            page::html(StatusCode::CREATED, &page::page("Shop created", &body))
        }
    };
    let tenant = Some(done.tenant.id.clone());
    crate::web::device_cookie::after_sign_in(state, headers, &done.user, tenant, &mut response);
    if let Some(c) = page::set_cookie(state, page::SESSION_COOKIE, &token, "Lax", lifetime) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
