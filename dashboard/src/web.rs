//! Routes and handlers: sign-in/out, the pages, and the form actions (each CSRF-checked).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leptos::prelude::AnyView;
use reqwest::Method;
use serde_json::Value;

use crate::AppState;
use crate::api::{self, ApiError};
use crate::session::{LOGIN_COOKIE, PENDING_LIFETIME, SESSION_COOKIE, Session, same};
use crate::views::{self, Frame};

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/keys", get(keys))
        .route("/keys/rotate", get(rotate_confirm).post(rotate_keys))
        .route("/clients", get(clients).post(create_client))
        .route(
            "/clients/{client_id}/secret",
            get(secret_confirm).post(rotate_secret),
        )
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/signed-out", get(signed_out))
        .merge(crate::admin::routes())
        .merge(crate::progress::routes())
        .with_state(state)
}

// ---------------------------------------------------------------- responses

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Lax",
        state.cookie_path()
    );
    if state.secure_cookies() {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn forbidden_csrf(state: &AppState) -> Response {
    html(
        StatusCode::FORBIDDEN,
        views::bare(
            "Request refused",
            "The form was missing a valid security token (CSRF). Reload the page and try again.",
            Some((state.base().to_owned(), "Back to the dashboard")),
        ),
    )
}

pub(crate) fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    html(
        status,
        views::bare(
            "Something went wrong",
            message,
            Some((state.base().to_owned(), "Back to the dashboard")),
        ),
    )
}

// ---------------------------------------------------------------- auth

/// A path inside the dashboard safe to return to after sign-in.
fn safe_return(path: &str) -> String {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 200
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
    if ok { path.to_owned() } else { "/".into() }
}

/// The signed-in admin, or the response to send instead (sign-in redirect, no access).
pub(crate) fn require(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<Session, Box<Response>> {
    let session = read_cookie(headers, SESSION_COOKIE).and_then(|id| state.sessions.get(&id));
    match session {
        None => {
            let q =
                serde_urlencoded::to_string([("return_to", safe_return(here))]).unwrap_or_default();
            Err(Box::new(redirect(&format!("{}?{q}", state.url("login")))))
        }
        Some(s) if !s.is_admin() => Err(Box::new(html(
            StatusCode::FORBIDDEN,
            views::no_access(state.base(), &s.csrf, &s.email),
        ))),
        Some(s) => Ok(s),
    }
}

/// A form POST whose CSRF token matched: the session id, the session and the fields.
pub(crate) type Posted = (Option<String>, Session, HashMap<String, String>);

/// Parses a form body and checks its CSRF token against the session's. `Err` is the 403.
pub(crate) fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Posted, Box<Response>> {
    let fields: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let id = read_cookie(headers, SESSION_COOKIE);
    let session = id.as_deref().and_then(|id| state.sessions.get(id));
    match (session, fields.get("csrf")) {
        (Some(s), Some(token)) if same(token, &s.csrf) => Ok((id, s, fields)),
        _ => Err(Box::new(forbidden_csrf(state))),
    }
}

fn frame<'a>(state: &'a AppState, s: &'a Session, active: &'a str) -> Frame<'a> {
    Frame {
        base: state.base(),
        active,
        user: format!(
            "{} · {}",
            if s.email.is_empty() {
                &s.name
            } else {
                &s.email
            },
            s.tenant.as_deref().map_or("platform", |_| "tenant admin")
        ),
        csrf: &s.csrf,
        platform: s.tenant.is_none(),
        refresh: None,
    }
}

pub(crate) fn render(
    state: &AppState,
    s: &Session,
    active: &str,
    title: &str,
    content: AnyView,
) -> Response {
    render_refreshing(state, s, active, title, content, None)
}

/// [`render`], reloading itself after `refresh` seconds (a progress page while it runs).
pub(crate) fn render_refreshing(
    state: &AppState,
    s: &Session,
    active: &str,
    title: &str,
    content: AnyView,
    refresh: Option<u64>,
) -> Response {
    let frame = Frame {
        refresh,
        ..frame(state, s, active)
    };
    html(StatusCode::OK, views::page(&frame, title, content))
}

/// An admin API failure: an expired token signs the user in again; anything else is shown.
pub(crate) fn api_failed(
    state: &AppState,
    s: &Session,
    active: &str,
    title: &str,
    e: ApiError,
) -> Response {
    match e {
        ApiError::Unauthorized => redirect(&state.url("login")),
        other => {
            tracing::warn!(error = %other, "admin API call failed");
            let mut r = render(
                state,
                s,
                active,
                title,
                views::notice("error", other.to_string()),
            );
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

async fn login(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let return_to = safe_return(q.get("return_to").map_or("/", String::as_str));
    match crate::oidc::begin(&state, return_to).await {
        Ok((url, _, pending)) => {
            let sealed = match state.sessions.seal_pending(&pending) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "sign-in could not start");
                    return error_page(
                        &state,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Sign-in could not start; try again.",
                    );
                }
            };
            let mut r = redirect(&url);
            r.headers_mut().append(
                SET_COOKIE,
                cookie(
                    &state,
                    LOGIN_COOKIE,
                    &sealed,
                    Some(PENDING_LIFETIME.as_secs()),
                ),
            );
            r
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "sign-in could not start");
            error_page(
                &state,
                StatusCode::BAD_GATEWAY,
                "Sign-in could not start: the identity service is unavailable or misconfigured.",
            )
        }
    }
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(err) = q.get("error") {
        let msg = format!(
            "Sign-in was not completed ({}).",
            err.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect::<String>()
        );
        return error_page(&state, StatusCode::BAD_REQUEST, &msg);
    }
    let (Some(code), Some(oauth_state)) = (q.get("code"), q.get("state")) else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "The sign-in response is incomplete.",
        );
    };
    // The state must match the one this browser started with (login CSRF): the login cookie
    // holds the sealed pending sign-in, which opens only for that state.
    let pending = read_cookie(&headers, LOGIN_COOKIE)
        .and_then(|c| state.sessions.open_pending(&c, oauth_state));
    let Some(pending) = pending else {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "The sign-in expired or was started in another browser. Please sign in again.",
        );
    };
    if let Some(iss) = q.get("iss")
        && iss != &state.config.issuer
    {
        return error_page(
            &state,
            StatusCode::BAD_REQUEST,
            "The sign-in response came from an unexpected issuer.",
        );
    }
    let return_to = pending.return_to.clone();
    match crate::oidc::finish(&state, code.clone(), pending).await {
        Ok(session) => {
            let max_age = session
                .expires
                .saturating_duration_since(std::time::Instant::now())
                .as_secs();
            tracing::info!(sub = %session.subject, admin = session.is_admin(), "dashboard sign-in");
            let id = state.sessions.insert(session);
            let mut r = redirect(&state.url(&return_to));
            r.headers_mut().append(
                SET_COOKIE,
                cookie(&state, SESSION_COOKIE, &id, Some(max_age)),
            );
            r.headers_mut()
                .append(SET_COOKIE, cookie(&state, LOGIN_COOKIE, "", Some(0)));
            r
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "sign-in failed");
            error_page(
                &state,
                StatusCode::BAD_GATEWAY,
                "Sign-in failed: the identity service's answer could not be verified.",
            )
        }
    }
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (id, session, _) = match form(&state, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Some(id) = id {
        state.sessions.remove(&id);
    }
    let url = crate::oidc::logout_url(&state, &session.id_token).await;
    let mut r = redirect(&url);
    r.headers_mut()
        .append(SET_COOKIE, cookie(&state, SESSION_COOKIE, "", Some(0)));
    r
}

async fn signed_out(State(state): State<AppState>) -> Response {
    html(
        StatusCode::OK,
        views::bare(
            "Signed out",
            "You have been signed out of the dashboard and of identity.",
            Some((state.url("login"), "Sign in again")),
        ),
    )
}

// ---------------------------------------------------------------- pages

/// Signing keys and OAuth clients are the platform's: tenant admins get a 403 page.
fn platform_page(state: &AppState, s: &Session, active: &str) -> Response {
    let mut r = render(
        state,
        s,
        active,
        "Platform administrators only",
        views::notice(
            "error",
            "Signing keys and OAuth clients are managed by the platform administrators.".into(),
        ),
    );
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

/// The signed-in platform admin of a platform page (`active` in the navigation), or the
/// response to send instead (sign-in, no access, or the 403 page for tenant admins).
pub(crate) fn require_platform(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    active: &str,
) -> Result<Session, Box<Response>> {
    let s = require(state, headers, here)?;
    if s.tenant.is_some() {
        return Err(Box::new(platform_page(state, &s, active)));
    }
    Ok(s)
}

/// A platform admin's CSRF-checked form on a platform page; with `confirm_at`, a confirmed
/// one (`confirm=yes`; else the redirect to that confirmation page). `Err` is the response to
/// send instead.
pub(crate) fn platform_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    active: &str,
    confirm_at: Option<&str>,
) -> Result<(Session, HashMap<String, String>), Box<Response>> {
    let (_, s, fields) = form(state, headers, body)?;
    if !s.is_admin() {
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            views::no_access(state.base(), &s.csrf, &s.email),
        )));
    }
    if s.tenant.is_some() {
        return Err(Box::new(platform_page(state, &s, active)));
    }
    if let Some(page) = confirm_at
        && fields.get("confirm").map(String::as_str) != Some("yes")
    {
        return Err(Box::new(redirect(&state.url(page))));
    }
    Ok((s, fields))
}

async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require(&state, &headers, "/") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let platform = s.tenant.is_none();
    let admin_call = |path: &'static str, platform_only: bool| {
        let state = &state;
        let token = &s.access_token;
        async move {
            if platform || !platform_only {
                Some(api::call(state, token, Method::GET, path, None).await)
            } else {
                None
            }
        }
    };
    let (health, clients, keys, tenants, activity) = tokio::join!(
        api::health(&state),
        admin_call("admin/clients?limit=500", true),
        admin_call("admin/keys/policies", true),
        admin_call("admin/tenants?limit=500", true),
        admin_call("admin/stats/activity?hours=24", false),
    );
    let calls = [&clients, &keys, &tenants, &activity];
    if calls
        .iter()
        .any(|v| matches!(v, Some(Err(ApiError::Unauthorized))))
    {
        return redirect(&state.url("login"));
    }
    let count = |v: &Option<Result<Value, ApiError>>, key: &str| {
        v.as_ref()
            .and_then(|v| v.as_ref().ok())
            .and_then(|v| v.get(key))
            .and_then(Value::as_array)
            .map(Vec::len)
    };
    let activity = match activity {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("not requested".into()),
    };
    let content = views::overview(
        health,
        count(&clients, "items"),
        count(&keys, "keys"),
        count(&tenants, "items"),
        activity,
    );
    render(&state, &s, "", "Overview", content)
}

async fn keys(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require_platform(&state, &headers, "/keys", "keys") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let (policy, master_key) = tokio::join!(
        api::get(&state, &s.access_token, "admin/keys/policies"),
        api::get(&state, &s.access_token, "admin/master-key"),
    );
    match policy {
        Ok(policy) => {
            let master_key = master_key.map_err(|e| e.to_string());
            let content = leptos::prelude::IntoAny::into_any((
                views::keys(state.base(), &policy),
                crate::progress::master_key_section(
                    state.base(),
                    master_key.as_ref().map_err(String::clone),
                ),
            ));
            render(&state, &s, "keys", "Signing keys", content)
        }
        Err(e) => api_failed(&state, &s, "keys", "Signing keys", e),
    }
}

async fn rotate_confirm(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require_platform(&state, &headers, "/keys/rotate", "keys") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let content = views::confirm(
        state.url("keys/rotate"),
        &s.csrf,
        "Rotate the signing keys now? New keys are published at once and start signing after the lead time; the current keys retire and stay published for the grace period.".into(),
        "Rotate now",
        state.url("keys"),
    );
    render(&state, &s, "keys", "Rotate signing keys", content)
}

async fn rotate_keys(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let s = match platform_form(&state, &headers, &body, "keys", Some("keys/rotate")) {
        Ok((s, _)) => s,
        Err(r) => return *r,
    };
    crate::progress::start(
        &state,
        &s,
        "admin/keys/rotate-now",
        "Signing keys",
        |rotated| crate::progress::rotation_url(&state, rotated),
    )
    .await
}

async fn clients(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let s = match require_platform(&state, &headers, "/clients", "clients") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let sort = match crate::admin::list_sort(&state, &s, "clients", &query, CLIENT_SORTS, false) {
        Ok(sort) => sort,
        Err(r) => return r,
    };
    clients_page(&state, &s, &sort, None, StatusCode::OK).await
}

/// The client list's sorts (the complete list, sorted here).
const CLIENT_SORTS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("client_id", "Client id"),
    ("client_type", "Type"),
];

/// The client list in the default order (after a form action).
fn default_client_sort() -> crate::admin::ListSort {
    crate::admin::ListSort {
        key: CLIENT_SORTS[0].0,
        desc: false,
    }
}

async fn clients_page(
    state: &AppState,
    s: &Session,
    sort: &crate::admin::ListSort,
    message: Option<AnyView>,
    status: StatusCode,
) -> Response {
    match api::call(
        state,
        &s.access_token,
        Method::GET,
        "admin/clients?limit=500",
        None,
    )
    .await
    {
        Ok(v) => {
            let mut items = v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            sort.apply(&mut items, crate::admin_views::s);
            let links = crate::admin_views::sort_links(
                &state.url("clients"),
                CLIENT_SORTS,
                sort.key,
                sort.desc,
            );
            let content = leptos::prelude::IntoAny::into_any((
                message,
                views::clients(state.base(), &s.csrf, &items, links),
            ));
            let mut r = render(state, s, "clients", "Clients", content);
            *r.status_mut() = status;
            r
        }
        Err(e) => api_failed(state, s, "clients", "Clients", e),
    }
}

fn words(v: Option<&String>) -> Vec<String> {
    v.map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

async fn create_client(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = match platform_form(&state, &headers, &body, "clients", None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let name = fields
        .get("name")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    if name.is_empty() || name.len() > 200 {
        return clients_page(
            &state,
            &s,
            &default_client_sort(),
            Some(views::notice(
                "error",
                "A name (up to 200 characters) is required.".into(),
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let client_type = match fields.get("client_type").map(String::as_str) {
        Some("public") => "public",
        _ => "confidential",
    };
    let body = serde_json::json!({
        "name": name,
        "client_type": client_type,
        "grant_types": words(fields.get("grant_types")),
        "scopes": words(fields.get("scopes")),
        "redirect_uris": words(fields.get("redirect_uris")),
    });
    match api::call(
        &state,
        &s.access_token,
        Method::POST,
        "admin/clients",
        Some(&body),
    )
    .await
    {
        Ok(created) => {
            let id = created
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            tracing::info!(client_id = %id, "client created from the dashboard");
            match created.get("client_secret").and_then(Value::as_str) {
                Some(secret) => render(
                    &state,
                    &s,
                    "clients",
                    "Client created",
                    views::secret_once(state.base(), &id, secret, "Client created."),
                ),
                None => {
                    clients_page(
                        &state,
                        &s,
                        &default_client_sort(),
                        Some(views::notice(
                            "success",
                            format!("Client {id} created (no secret)."),
                        )),
                        StatusCode::OK,
                    )
                    .await
                }
            }
        }
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            clients_page(
                &state,
                &s,
                &default_client_sort(),
                Some(views::notice(
                    "error",
                    format!("The client was not created: {detail}"),
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => api_failed(&state, &s, "clients", "Clients", e),
    }
}

async fn secret_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let s = match require_platform(&state, &headers, "/clients", "clients") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let content = views::confirm(
        state.url(&format!("clients/{}/secret", views::urlencode(&client_id))),
        &s.csrf,
        format!(
            "Rotate the secret of client {client_id}? The current secret stops working at once; the new one is shown only once."
        ),
        "Rotate secret",
        state.url("clients"),
    );
    render(&state, &s, "clients", "Rotate client secret", content)
}

async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let confirm_at = format!("clients/{}/secret", views::urlencode(&client_id));
    let s = match platform_form(&state, &headers, &body, "clients", Some(&confirm_at)) {
        Ok((s, _)) => s,
        Err(r) => return *r,
    };
    let path = format!("admin/clients/{}/secret", views::urlencode(&client_id));
    match api::call(&state, &s.access_token, Method::POST, &path, None).await {
        Ok(v) => match v.get("client_secret").and_then(Value::as_str) {
            Some(secret) => {
                tracing::info!(client_id = %client_id, "client secret rotated from the dashboard");
                render(
                    &state,
                    &s,
                    "clients",
                    "Secret rotated",
                    views::secret_once(state.base(), &client_id, secret, "Secret rotated."),
                )
            }
            None => error_page(
                &state,
                StatusCode::BAD_GATEWAY,
                "Identity did not return a new secret.",
            ),
        },
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            clients_page(
                &state,
                &s,
                &default_client_sort(),
                Some(views::notice(
                    "error",
                    format!("The secret was not rotated: {detail}"),
                )),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => api_failed(&state, &s, "clients", "Clients", e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tansu_shared::testing::TestServer;

    use super::*;
    use crate::Config;

    fn state() -> AppState {
        AppState::new(Config {
            // Nothing listens on port 1: identity is unreachable.
            issuer: "http://127.0.0.1:1/identity/".into(),
            health_url: "http://127.0.0.1:1/health".into(),
            public_url: "https://gw.test/dashboard/".into(),
            ..Config::default()
        })
        .unwrap()
    }

    fn session(roles: &[&str]) -> Session {
        Session {
            subject: "u1".into(),
            email: "user@tenant.test".into(),
            name: "User".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            tenant: Some("t1".into()),
            access_token: "at".into(),
            id_token: "idt".into(),
            csrf: "csrf-token".into(),
            expires: Instant::now() + Duration::from_secs(600),
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    #[test]
    fn return_paths_stay_inside_the_dashboard() {
        assert_eq!(safe_return("/keys"), "/keys");
        assert_eq!(safe_return("/admin/providers"), "/admin/providers");
        for bad in [
            "//evil.test",
            "https://evil.test",
            "/a?b",
            "/\\evil",
            "keys",
            "",
        ] {
            assert_eq!(safe_return(bad), "/", "{bad}");
        }
    }

    #[tokio::test]
    async fn users_without_an_admin_role_get_no_access() {
        let state = state();
        let id = state.sessions.insert(session(&["User"]));
        let server = TestServer::start(crate::router(state)).await;
        let http = client();
        let cookie = format!("{SESSION_COOKIE}={id}");
        for path in [
            "/",
            "/keys",
            "/clients",
            "/tenants",
            "/admin/security-events",
        ] {
            let r = http
                .get(server.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path}");
            let body = r.text().await.unwrap();
            assert!(body.contains("No access"), "{path}: {body}");
            assert!(body.contains("https://gw.test/dashboard/logout"));
        }
        // A valid CSRF token does not make a non-admin's action succeed.
        for action in ["/keys/rotate", "/clients", "/clients/x/secret"] {
            let r = http
                .post(server.url(action))
                .header("cookie", &cookie)
                .form(&[("csrf", "csrf-token"), ("confirm", "yes"), ("name", "n")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{action}");
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn signed_out_pages_redirect_and_hostile_input_is_answered_cleanly() {
        let state = state();
        let server = TestServer::start(crate::router(state)).await;
        let http = client();
        let r = http.get(server.url("/clients")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            "https://gw.test/dashboard/login?return_to=%2Fclients"
        );
        // Callback without the browser-bound state, with errors, or garbage: 400, never 500.
        for q in [
            "",
            "?code=x&state=y",
            "?error=access_denied",
            "?error=%00%FF",
            "?code=x&state=y&iss=http://evil",
        ] {
            let r = http
                .get(server.url(&format!("/callback{q}")))
                .header("cookie", format!("{LOGIN_COOKIE}=other"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "callback{q}");
        }
        // Identity unreachable: a clear 502 page, no panic.
        let r = http.get(server.url("/login")).send().await.unwrap();
        assert_eq!(r.status(), 502);
        // Forms: no session, malformed bodies, oversized tokens: 403.
        for body in ["", "csrf", "%%%", "csrf=csrf-token"] {
            let r = http
                .post(server.url("/logout"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{body:?}");
        }
        server.stop().await;
    }

    #[test]
    fn pages_escape_what_identity_returns() {
        let items = vec![serde_json::json!({
            "client_id": "<script>x</script>",
            "name": "\"><img src=x>",
            "client_type": "confidential",
        })];
        let html = leptos::prelude::RenderHtml::to_html(views::clients(
            "https://gw.test/dashboard/",
            "t",
            &items,
            leptos::prelude::IntoAny::into_any(()),
        ));
        assert!(!html.contains("<script>x"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }
}
