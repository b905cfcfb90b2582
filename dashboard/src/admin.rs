//! Handlers of issue #8's admin sections: tenants, users and roles, external providers,
//! security events, identity settings and secrets.
//!
//! Every call goes to identity's admin API with the signed-in admin's access token, so identity
//! decides what the caller may do; the dashboard adds its own tenant check in front so a tenant
//! admin's pages never even ask for another tenant: a tenant admin's pages are always about
//! their own tenant (any other `tenant` answers 404), platform admins pick one. Every POST
//! carries the session's CSRF token ([`crate::web::form`]); destructive actions go through a
//! confirmation page first (`confirm=yes`).

// A `Response` is the helpers' early return (the page to send instead), as in the handlers.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::prelude::{AnyView, IntoAny};
use reqwest::Method;
use serde_json::{Value, json};

use crate::AppState;
use crate::admin_views::{self as v, EventFilters, s as field, tq};
use crate::api::{self, ApiError};
use crate::session::Session;
use crate::views::{self, urlencode};
use crate::web::{api_failed, form, redirect, render, require};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(tenants).post(create_tenant))
        .route(
            "/tenants/{tid}/status",
            get(tenant_status_confirm).post(tenant_status),
        )
        .route("/users", get(users).post(invite_user))
        .route(
            "/users/{uid}/status",
            get(user_status_confirm).post(user_status),
        )
        .route(
            "/users/{uid}/password",
            get(password_page).post(reset_password),
        )
        .route("/users/{uid}/roles", get(role_confirm).post(change_role))
        .route("/users/{uid}/mfa", get(mfa_confirm).post(reset_mfa))
        .route("/admin/providers", get(providers).post(create_provider))
        .route(
            "/admin/providers/{id}",
            get(edit_provider).post(update_provider),
        )
        .route(
            "/admin/providers/{id}/test",
            axum::routing::post(test_provider),
        )
        .route(
            "/admin/providers/{id}/status",
            get(provider_status_confirm).post(provider_status),
        )
        .route(
            "/admin/providers/{id}/delete",
            get(provider_delete_confirm).post(delete_provider),
        )
        .route("/admin/security-events", get(events))
        .route(
            "/admin/security-events/verify",
            axum::routing::post(verify_chain),
        )
        .route("/admin/security-events/export.ndjson", get(export_ndjson))
        .route("/admin/security-events/export.csv", get(export_csv))
        .route("/settings", get(settings).post(save_settings))
        .route("/secrets", get(secrets).post(put_secret))
        .route(
            "/secrets/{name}/revoke",
            get(revoke_confirm).post(revoke_secret),
        )
}

type Q = Query<HashMap<String, String>>;

fn q<'a>(q: &'a HashMap<String, String>, key: &str) -> &'a str {
    q.get(key).map_or("", |v| v.trim())
}

/// A page inside the frame with a status other than 200.
fn page_with(
    state: &AppState,
    s: &Session,
    active: &str,
    title: &str,
    content: AnyView,
    status: StatusCode,
) -> Response {
    let mut r = render(state, s, active, title, content);
    *r.status_mut() = status;
    r
}

fn not_found(state: &AppState, s: &Session, active: &str) -> Response {
    page_with(
        state,
        s,
        active,
        "Not found",
        views::notice("error", "There is no such tenant or item.".into()),
        StatusCode::NOT_FOUND,
    )
}

fn platform_only(state: &AppState, s: &Session, active: &str) -> Response {
    page_with(
        state,
        s,
        active,
        "Platform administrators only",
        views::notice(
            "error",
            "This page is for platform administrators; tenant administrators manage their own tenant from the other pages.".into(),
        ),
        StatusCode::FORBIDDEN,
    )
}

/// An admin API failure on a page: 404/403 keep their meaning, other 4xx are shown as a
/// message, the rest as "identity failed".
fn failed(state: &AppState, s: &Session, active: &str, title: &str, e: ApiError) -> Response {
    match e {
        ApiError::Status(404, _) => not_found(state, s, active),
        ApiError::Status(403, detail) => page_with(
            state,
            s,
            active,
            title,
            views::notice("error", format!("Not allowed: {detail}")),
            StatusCode::FORBIDDEN,
        ),
        other => api_failed(state, s, active, title, other),
    }
}

/// The outcome of a form action, shown above the page it returns to.
struct Outcome {
    message: Option<AnyView>,
    status: StatusCode,
}

impl Outcome {
    fn none() -> Self {
        Self {
            message: None,
            status: StatusCode::OK,
        }
    }

    fn ok(text: String) -> Self {
        Self {
            message: Some(views::notice("success", text)),
            status: StatusCode::OK,
        }
    }

    fn refused(text: String) -> Self {
        Self {
            message: Some(views::notice("error", text)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// What a 4xx answer of identity to a form means for the admin; `Err` is the page to send.
fn outcome_of(
    state: &AppState,
    s: &Session,
    active: &str,
    title: &str,
    what: &str,
    r: Result<Value, ApiError>,
    success: impl FnOnce(&Value) -> String,
) -> Result<Outcome, Response> {
    match r {
        Ok(v) => Ok(Outcome::ok(success(&v))),
        Err(ApiError::Status(404, _)) => Err(not_found(state, s, active)),
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            Ok(Outcome::refused(format!("{what} failed: {detail}")))
        }
        Err(e) => Err(failed(state, s, active, title, e)),
    }
}

/// A section of the dashboard: its navigation path and page title.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    pub active: &'static str,
    pub title: &'static str,
}

const TENANTS: Section = Section {
    active: "tenants",
    title: "Tenants",
};
const USERS: Section = Section {
    active: "users",
    title: "Users and roles",
};
const PROVIDERS: Section = Section {
    active: "admin/providers",
    title: "External providers",
};
const EVENTS: Section = Section {
    active: "admin/security-events",
    title: "Security events",
};
const SETTINGS: Section = Section {
    active: "settings",
    title: "Identity settings",
};
const SECRETS: Section = Section {
    active: "secrets",
    title: "Secrets",
};

/// The identity call of a form action, and what its answer means for the admin
/// ([`outcome_of`]); `Err` is the page to send instead.
#[allow(clippy::too_many_arguments)]
async fn act(
    state: &AppState,
    s: &Session,
    sec: Section,
    what: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
    success: impl FnOnce(&Value) -> String,
) -> Result<Outcome, Response> {
    let r = api::call(state, &s.access_token, method, path, body).await;
    outcome_of(state, s, sec.active, sec.title, what, r, success)
}

/// Without `confirm=yes`: the redirect to the action's confirmation page (`path` with the
/// tenant and `extra`, e.g. `&to=disable`).
fn unconfirmed(
    state: &AppState,
    fields: &HashMap<String, String>,
    path: &str,
    tid: &str,
    extra: &str,
) -> Option<Response> {
    (!confirmed(fields)).then(|| redirect(&format!("{}{}{extra}", state.url(path), tq(tid))))
}

/// The confirmation page of a per-tenant action: a POST to `path` with the tenant and
/// `extra` fields; "Cancel" goes back to the section's page of the tenant.
#[allow(clippy::too_many_arguments)]
fn tenant_confirm(
    state: &AppState,
    s: &Session,
    sec: Section,
    path: &str,
    tid: &str,
    extra: &[(&'static str, &str)],
    question: String,
    button: &'static str,
) -> Response {
    let mut fields = vec![("tenant", tid.to_owned())];
    fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let content = v::confirm(
        state.url(path),
        &s.csrf,
        fields,
        question,
        button,
        format!("{}{}", state.url(sec.active), tq(tid)),
    );
    render(state, s, sec.active, button, content)
}

/// Identity's path of something of a tenant: `admin/tenants/<tid>/<kind>/<id>[/<action>]`.
fn tenant_api(tid: &str, kind: &str, id: &str, action: &str) -> String {
    let mut p = format!("admin/tenants/{}/{kind}", urlencode(tid));
    if !id.is_empty() {
        p.push_str(&format!("/{}", urlencode(id)));
    }
    if !action.is_empty() {
        p.push('/');
        p.push_str(action);
    }
    p
}

// ---------------------------------------------------------------- tenant scope

/// The tenant a per-tenant page is about and, for platform admins, the picker.
struct TenantScope {
    tenant: Option<Value>,
    picker: Option<AnyView>,
}

impl TenantScope {
    fn id(&self) -> String {
        self.tenant
            .as_ref()
            .map(|t| field(t, "id"))
            .unwrap_or_default()
    }

    /// The picker and the tenant line above a page's content.
    fn header(&mut self) -> AnyView {
        let line = self.tenant.as_ref().map(v::tenant_line);
        (self.picker.take(), line).into_any()
    }
}

/// Tenant admins: their own tenant (another requested id: 404). Platform admins: the
/// requested tenant (unknown: 404) or none yet, with the picker listing the tenants.
async fn tenant_scope(
    state: &AppState,
    s: &Session,
    requested: &str,
    active: &str,
    page: &str,
) -> Result<TenantScope, Response> {
    if let Some(own) = &s.tenant {
        if !requested.is_empty() && requested != own {
            return Err(not_found(state, s, active));
        }
        let t = get_tenant(state, s, own, active).await?;
        return Ok(TenantScope {
            tenant: Some(t),
            picker: None,
        });
    }
    let list = api::call(
        state,
        &s.access_token,
        Method::GET,
        "admin/tenants?limit=500",
        None,
    )
    .await
    .map_err(|e| failed(state, s, active, "Tenants", e))?;
    let items = items(&list);
    let tenant = if requested.is_empty() {
        None
    } else {
        Some(get_tenant(state, s, requested, active).await?)
    };
    Ok(TenantScope {
        picker: Some(v::tenant_picker(state.url(page), &items, requested)),
        tenant,
    })
}

async fn get_tenant(
    state: &AppState,
    s: &Session,
    tid: &str,
    active: &str,
) -> Result<Value, Response> {
    api::call(
        state,
        &s.access_token,
        Method::GET,
        &format!("admin/tenants/{}", urlencode(tid)),
        None,
    )
    .await
    .map_err(|e| failed(state, s, active, "Tenant", e))
}

/// The tenant a form acts on: the `tenant` field, which a tenant admin's must be their own.
fn form_tenant(
    state: &AppState,
    s: &Session,
    fields: &HashMap<String, String>,
    active: &str,
) -> Result<String, Response> {
    let t = fields.get("tenant").map_or("", |t| t.trim()).to_owned();
    match &s.tenant {
        Some(own) if &t != own => Err(not_found(state, s, active)),
        _ if t.is_empty() => Err(not_found(state, s, active)),
        _ => Ok(t),
    }
}

fn items(v: &Value) -> Vec<Value> {
    v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn next_after(v: &Value) -> Option<String> {
    v.get("next_after")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The sort of a list, from the query: a key of the list's allow-list (`(key, label)`, the
/// first is the default) and the direction. Anything else is refused with 400, as identity
/// refuses it. Cursor-paged lists (tenants, users, events) pass it on to identity; the complete
/// lists (clients, providers, secrets) are sorted here with [`ListSort::apply`].
#[derive(Debug, Clone)]
pub(crate) struct ListSort {
    pub key: &'static str,
    pub desc: bool,
}

impl ListSort {
    pub(crate) fn parse(
        query: &HashMap<String, String>,
        allowed: &[(&'static str, &'static str)],
        default_desc: bool,
    ) -> Option<Self> {
        let key = match q(query, "sort") {
            "" => allowed.first()?.0,
            k => allowed.iter().find(|(a, _)| *a == k)?.0,
        };
        let desc = match q(query, "order") {
            "" => default_desc,
            "asc" => false,
            "desc" => true,
            _ => return None,
        };
        Some(Self { key, desc })
    }

    /// `sort=…&order=…`, for identity's API and the dashboard's own links.
    pub(crate) fn query(&self) -> String {
        format!(
            "sort={}&order={}",
            self.key,
            if self.desc { "desc" } else { "asc" }
        )
    }

    /// Sorts a complete list by the text `key_of` gives for the key (ties keep their order).
    pub(crate) fn apply(&self, items: &mut [Value], key_of: impl Fn(&Value, &str) -> String) {
        items.sort_by_cached_key(|i| key_of(i, self.key).to_lowercase());
        if self.desc {
            items.reverse();
        }
    }
}

/// The list's sort, or the 400 page for a sort or order outside its allow-list.
pub(crate) fn list_sort(
    state: &AppState,
    s: &Session,
    active: &str,
    query: &HashMap<String, String>,
    allowed: &[(&'static str, &'static str)],
    default_desc: bool,
) -> Result<ListSort, Response> {
    ListSort::parse(query, allowed, default_desc).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|(k, _)| *k).collect();
        page_with(
            state,
            s,
            active,
            "Invalid sort",
            views::notice(
                "error",
                format!("Sort by one of {} (order asc or desc).", names.join(", ")),
            ),
            StatusCode::BAD_REQUEST,
        )
    })
}

/// A signed-in admin's page, or the early response.
macro_rules! signed_in {
    ($state:expr, $headers:expr, $here:expr) => {
        match require(&$state, &$headers, $here) {
            Ok(s) => s,
            Err(r) => return *r,
        }
    };
}

/// A CSRF-checked form of an admin, or the early response.
macro_rules! posted {
    ($state:expr, $headers:expr, $body:expr) => {
        match form(&$state, &$headers, &$body) {
            Ok((_, s, fields)) if s.is_admin() => (s, fields),
            Ok((_, s, _)) => {
                return crate::web::html(
                    StatusCode::FORBIDDEN,
                    views::no_access($state.base(), &s.csrf, &s.email),
                );
            }
            Err(r) => return *r,
        }
    };
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

fn confirmed(fields: &HashMap<String, String>) -> bool {
    fields.get("confirm").map(String::as_str) == Some("yes")
}

// ---------------------------------------------------------------- tenants

const TENANT_SORTS: &[(&str, &str)] = &[
    ("created", "Created"),
    ("name", "Name"),
    ("slug", "Slug"),
    ("status", "Status"),
];

async fn tenants(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/tenants");
    tenants_page(&state, &s, &query, Outcome::none()).await
}

/// `…&after=<cursor>` when there is one.
fn after_param(after: &str) -> String {
    if after.is_empty() {
        String::new()
    } else {
        format!("&after={}", urlencode(after))
    }
}

async fn tenants_page(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
    outcome: Outcome,
) -> Response {
    if s.tenant.is_some() {
        return platform_only(state, s, TENANTS.active);
    }
    let sort = tri!(list_sort(
        state,
        s,
        TENANTS.active,
        query,
        TENANT_SORTS,
        false
    ));
    let path = format!(
        "admin/tenants?limit=50&{}{}",
        sort.query(),
        after_param(q(query, "after"))
    );
    let list = match api::call(state, &s.access_token, Method::GET, &path, None).await {
        Ok(v) => v,
        Err(e) => return failed(state, s, TENANTS.active, TENANTS.title, e),
    };
    let here = state.url(TENANTS.active);
    let first = format!("{here}?{}", sort.query());
    let next = next_after(&list).map(|n| format!("{first}{}", after_param(&n)));
    let content = (
        outcome.message,
        v::tenants(
            state.base(),
            &s.csrf,
            &items(&list),
            v::pager(first, next),
            v::sort_links(&here, TENANT_SORTS, sort.key, sort.desc),
        ),
    )
        .into_any();
    page_with(
        state,
        s,
        TENANTS.active,
        TENANTS.title,
        content,
        outcome.status,
    )
}

async fn create_tenant(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = posted!(state, headers, body);
    if s.tenant.is_some() {
        return platform_only(&state, &s, TENANTS.active);
    }
    let slug = fields.get("slug").map_or("", |v| v.trim());
    let name = fields.get("name").map_or("", |v| v.trim());
    let outcome = tri!(
        act(
            &state,
            &s,
            TENANTS,
            "Creating the tenant",
            Method::POST,
            "admin/tenants",
            Some(&json!({"slug": slug, "name": name})),
            |t| format!(
                "Tenant {} ({}) created.",
                field(t, "name"),
                field(t, "slug")
            ),
        )
        .await
    );
    tenants_page(&state, &s, &HashMap::new(), outcome).await
}

fn status_action(to: &str) -> Option<(&'static str, &'static str)> {
    match to {
        "suspend" => Some(("suspend", "Suspend")),
        "activate" => Some(("activate", "Activate")),
        "disable" => Some(("disable", "Disable")),
        "enable" => Some(("enable", "Enable")),
        _ => None,
    }
}

/// [`status_action`] limited to disable/enable (users and providers).
fn toggle_action(to: &str) -> Option<(&'static str, &'static str)> {
    status_action(to).filter(|(t, _)| ["disable", "enable"].contains(t))
}

async fn tenant_status_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tid): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/tenants");
    if s.tenant.is_some() {
        return platform_only(&state, &s, "tenants");
    }
    let Some((to, label)) =
        status_action(q(&query, "to")).filter(|(t, _)| ["suspend", "activate"].contains(t))
    else {
        return not_found(&state, &s, "tenants");
    };
    let t = tri!(get_tenant(&state, &s, &tid, "tenants").await);
    let question = if to == "suspend" {
        format!(
            "Suspend tenant {} ({})? Its users cannot sign in and its clients get no tokens until it is activated again.",
            field(&t, "name"),
            field(&t, "slug")
        )
    } else {
        format!(
            "Activate tenant {} ({})?",
            field(&t, "name"),
            field(&t, "slug")
        )
    };
    let content = v::confirm(
        state.url(&format!("tenants/{}/status", urlencode(&tid))),
        &s.csrf,
        vec![("to", to.to_owned())],
        question,
        label,
        state.url("tenants"),
    );
    render(&state, &s, "tenants", &format!("{label} tenant"), content)
}

async fn tenant_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tid): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    if s.tenant.is_some() {
        return platform_only(&state, &s, TENANTS.active);
    }
    let to = fields.get("to").map_or("", String::as_str);
    let Some((to, _)) = status_action(to).filter(|(t, _)| ["suspend", "activate"].contains(t))
    else {
        return not_found(&state, &s, TENANTS.active);
    };
    if !confirmed(&fields) {
        return redirect(&state.url(&format!("tenants/{}/status?to={to}", urlencode(&tid))));
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            TENANTS,
            "Changing the tenant's status",
            Method::POST,
            &format!("admin/tenants/{}/{to}", urlencode(&tid)),
            None,
            |t| format!("Tenant {} is now {}.", field(t, "slug"), field(t, "status")),
        )
        .await
    );
    tenants_page(&state, &s, &HashMap::new(), outcome).await
}

// ---------------------------------------------------------------- users

const USER_SORTS: &[(&str, &str)] = &[("created", "Created"), ("email", "Email"), ("name", "Name")];

async fn users(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/users");
    users_page(&state, &s, &query, Outcome::none()).await
}

async fn users_page(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
    outcome: Outcome,
) -> Response {
    let sort = tri!(list_sort(state, s, USERS.active, query, USER_SORTS, false));
    let mut scope =
        tri!(tenant_scope(state, s, q(query, "tenant"), USERS.active, USERS.active).await);
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, v::choose_tenant()).into_any();
        return page_with(state, s, USERS.active, USERS.title, content, outcome.status);
    }
    let search = q(query, "search");
    let path = format!(
        "{}?limit=50&search={}&{}{}",
        tenant_api(&tid, "users", "", ""),
        urlencode(search),
        sort.query(),
        after_param(q(query, "after"))
    );
    let list = match api::call(state, &s.access_token, Method::GET, &path, None).await {
        Ok(v) => v,
        Err(e) => return failed(state, s, USERS.active, USERS.title, e),
    };
    let here = format!(
        "{}{}&search={}",
        state.url(USERS.active),
        tq(&tid),
        urlencode(search)
    );
    let first = format!("{here}&{}", sort.query());
    let next = next_after(&list).map(|n| format!("{first}{}", after_param(&n)));
    let content = (
        outcome.message,
        header,
        v::users(
            state.base(),
            &s.csrf,
            &tid,
            search,
            &items(&list),
            v::pager(first, next),
            v::sort_links(&here, USER_SORTS, sort.key, sort.desc),
        ),
    )
        .into_any();
    page_with(state, s, USERS.active, USERS.title, content, outcome.status)
}

fn tenant_query(tid: &str) -> HashMap<String, String> {
    HashMap::from([("tenant".to_owned(), tid.to_owned())])
}

async fn invite_user(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, USERS.active));
    let email = fields.get("email").map_or("", |v| v.trim());
    let mut body = json!({
        "email": email,
        "name": fields.get("name").map_or("", |v| v.trim()),
        "roles": [fields.get("role").map_or("User", String::as_str)],
    });
    if let Some(p) = fields.get("password").filter(|p| !p.is_empty()) {
        body["password"] = json!(p);
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            USERS,
            "Inviting the user",
            Method::POST,
            &tenant_api(&tid, "users", "", ""),
            Some(&body),
            |u| {
                if field(u, "status") == "pending" {
                    format!(
                        "{} has an account already and is invited ({}): the membership starts when they accept.",
                        field(u, "email"),
                        v_roles(u)
                    )
                } else {
                    format!("{} is now a member ({}).", field(u, "email"), v_roles(u))
                }
            },
        )
        .await
    );
    users_page(&state, &s, &tenant_query(&tid), outcome).await
}

fn v_roles(u: &Value) -> String {
    u.get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

async fn get_user(state: &AppState, s: &Session, tid: &str, uid: &str) -> Result<Value, Response> {
    api::call(
        state,
        &s.access_token,
        Method::GET,
        &format!("admin/tenants/{}/users/{}", urlencode(tid), urlencode(uid)),
        None,
    )
    .await
    .map_err(|e| failed(state, s, "users", "Users and roles", e))
}

async fn user_status_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/users");
    let scope = tri!(tenant_scope(&state, &s, q(&query, "tenant"), "users", "users").await);
    let tid = scope.id();
    let Some((to, label)) = toggle_action(q(&query, "to")) else {
        return not_found(&state, &s, "users");
    };
    let u = tri!(get_user(&state, &s, &tid, &uid).await);
    let question = if to == "disable" {
        format!(
            "Disable {}? Their sessions end and their refresh tokens are revoked at once.",
            field(&u, "email")
        )
    } else {
        format!("Enable {} again?", field(&u, "email"))
    };
    tenant_confirm(
        &state,
        &s,
        USERS,
        &format!("users/{}/status", urlencode(&uid)),
        &tid,
        &[("to", to)],
        question,
        label,
    )
}

async fn user_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, USERS.active));
    let Some((to, _)) = toggle_action(fields.get("to").map_or("", String::as_str)) else {
        return not_found(&state, &s, USERS.active);
    };
    let confirm_page = format!("users/{}/status", urlencode(&uid));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, &format!("&to={to}")) {
        return r;
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            USERS,
            "Changing the user's status",
            Method::POST,
            &tenant_api(&tid, "users", &uid, to),
            None,
            |u| format!(
                "{} is now {}.",
                field(u, "email"),
                if u.get("disabled").and_then(Value::as_bool) == Some(true) {
                    "disabled"
                } else {
                    "enabled"
                }
            ),
        )
        .await
    );
    users_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn password_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/users");
    let scope = tri!(tenant_scope(&state, &s, q(&query, "tenant"), "users", "users").await);
    let tid = scope.id();
    let u = tri!(get_user(&state, &s, &tid, &uid).await);
    render(
        &state,
        &s,
        "users",
        "Reset password",
        v::password_form(state.base(), &s.csrf, &tid, &u),
    )
}

async fn reset_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, USERS.active));
    let confirm_page = format!("users/{}/password", urlencode(&uid));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, "") {
        return r;
    }
    let password = fields.get("password").cloned().unwrap_or_default();
    let outcome = tri!(
        act(
            &state,
            &s,
            USERS,
            "Resetting the password",
            Method::POST,
            &tenant_api(&tid, "users", &uid, "password"),
            Some(&json!({ "password": password })),
            |_| "The password was reset.".to_owned(),
        )
        .await
    );
    users_page(&state, &s, &tenant_query(&tid), outcome).await
}

/// "Reset MFA?" for a user of the tenant.
async fn mfa_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/users");
    let scope =
        tri!(tenant_scope(&state, &s, q(&query, "tenant"), USERS.active, USERS.active).await);
    let tid = scope.id();
    let u = tri!(get_user(&state, &s, &tid, &uid).await);
    tenant_confirm(
        &state,
        &s,
        USERS,
        &format!("users/{}/mfa", urlencode(&uid)),
        &tid,
        &[],
        format!(
            "Reset the MFA of {}? Their authenticator app and recovery codes stop working; they sign in with the password alone, or enrol again where the tenant requires MFA.",
            field(&u, "email")
        ),
        "Reset MFA",
    )
}

/// Removes the user's TOTP secret and recovery codes (identity's `…/mfa/reset`).
async fn reset_mfa(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, USERS.active));
    let confirm_page = format!("users/{}/mfa", urlencode(&uid));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, "") {
        return r;
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            USERS,
            "Resetting MFA",
            Method::POST,
            &tenant_api(&tid, "users", &uid, "mfa/reset"),
            None,
            |_| "MFA was reset: the user signs in with the password alone until they enrol again."
                .to_owned(),
        )
        .await
    );
    users_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn role_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/users");
    let scope = tri!(tenant_scope(&state, &s, q(&query, "tenant"), "users", "users").await);
    let tid = scope.id();
    let role = q(&query, "role").to_owned();
    let u = tri!(get_user(&state, &s, &tid, &uid).await);
    tenant_confirm(
        &state,
        &s,
        USERS,
        &format!("users/{}/roles", urlencode(&uid)),
        &tid,
        &[("role", role.as_str()), ("action", "revoke")],
        format!(
            "Revoke the role {role} from {}? It applies from their next token.",
            field(&u, "email")
        ),
        "Revoke role",
    )
}

async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, USERS.active));
    let role = fields.get("role").cloned().unwrap_or_default();
    let revoke = fields.get("action").map(String::as_str) == Some("revoke");
    if revoke {
        let confirm_page = format!("users/{}/roles", urlencode(&uid));
        let extra = format!("&role={}&action=revoke", urlencode(&role));
        if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, &extra) {
            return r;
        }
    }
    let method = if revoke { Method::DELETE } else { Method::PUT };
    let outcome = tri!(
        act(
            &state,
            &s,
            USERS,
            "Changing the roles",
            method,
            &tenant_api(&tid, "users", &uid, &format!("roles/{}", urlencode(&role))),
            None,
            |u| format!("Roles of {}: {}.", field(u, "email"), v_roles(u)),
        )
        .await
    );
    users_page(&state, &s, &tenant_query(&tid), outcome).await
}

// ---------------------------------------------------------------- providers

async fn providers(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/admin/providers");
    providers_page(&state, &s, &query, Outcome::none()).await
}

/// A per-tenant list page (providers, secrets): the tenant scope, identity's complete list
/// `<kind>` of the tenant, sorted here by the query's sort (`key_of` gives a row's text for a
/// key), drawn by `draw(tenant id, rows, sort links)`.
#[allow(clippy::too_many_arguments)]
async fn tenant_list_page(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
    outcome: Outcome,
    sec: Section,
    kind: &str,
    sorts: &[(&'static str, &'static str)],
    key_of: impl Fn(&Value, &str) -> String,
    draw: impl FnOnce(&str, &[Value], AnyView) -> AnyView,
) -> Response {
    let sort = tri!(list_sort(state, s, sec.active, query, sorts, false));
    let mut scope = tri!(tenant_scope(state, s, q(query, "tenant"), sec.active, sec.active).await);
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, v::choose_tenant()).into_any();
        return page_with(state, s, sec.active, sec.title, content, outcome.status);
    }
    let path = tenant_api(&tid, kind, "", "");
    let list = match api::call(state, &s.access_token, Method::GET, &path, None).await {
        Ok(v) => v,
        Err(e) => return failed(state, s, sec.active, sec.title, e),
    };
    let mut rows = items(&list);
    sort.apply(&mut rows, key_of);
    let here = format!("{}{}", state.url(sec.active), tq(&tid));
    let links = v::sort_links(&here, sorts, sort.key, sort.desc);
    let content = (outcome.message, header, draw(&tid, &rows, links)).into_any();
    page_with(state, s, sec.active, sec.title, content, outcome.status)
}

const PROVIDER_SORTS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("issuer", "Issuer"),
    ("enabled", "Status"),
];

async fn providers_page(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
    outcome: Outcome,
) -> Response {
    tenant_list_page(
        state,
        s,
        query,
        outcome,
        PROVIDERS,
        "providers?limit=500",
        PROVIDER_SORTS,
        field,
        |tid, rows, links| v::providers(state.base(), &s.csrf, tid, rows, links),
    )
    .await
}

fn provider_body(fields: &HashMap<String, String>, update: bool) -> Value {
    let text = |k: &str| fields.get(k).map_or("", |v| v.trim()).to_owned();
    let scopes: Vec<String> = text("scopes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut body = json!({
        "name": text("name"),
        "issuer": text("issuer"),
        "client_id": text("client_id"),
        "scopes": scopes,
    });
    if let Some(secret) = fields.get("client_secret").filter(|v| !v.is_empty()) {
        body["client_secret"] = json!(secret);
    } else if update && fields.get("remove_secret").map(String::as_str) == Some("yes") {
        body["remove_secret"] = json!(true);
    }
    body
}

async fn create_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, PROVIDERS.active));
    let outcome = tri!(
        act(
            &state,
            &s,
            PROVIDERS,
            "Adding the provider",
            Method::POST,
            &tenant_api(&tid, "providers", "", ""),
            Some(&provider_body(&fields, false)),
            |p| format!("Provider {} added.", field(p, "name")),
        )
        .await
    );
    providers_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn get_provider(
    state: &AppState,
    s: &Session,
    tid: &str,
    id: &str,
) -> Result<Value, Response> {
    api::call(
        state,
        &s.access_token,
        Method::GET,
        &tenant_api(tid, "providers", id, ""),
        None,
    )
    .await
    .map_err(|e| failed(state, s, PROVIDERS.active, PROVIDERS.title, e))
}

async fn edit_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/admin/providers");
    let mut scope = tri!(
        tenant_scope(
            &state,
            &s,
            q(&query, "tenant"),
            "admin/providers",
            "admin/providers"
        )
        .await
    );
    let tid = scope.id();
    let p = tri!(get_provider(&state, &s, &tid, &id).await);
    let content = (
        scope.header(),
        v::provider_form(state.base(), &s.csrf, &tid, Some(&p)),
    )
        .into_any();
    render(&state, &s, "admin/providers", "Edit provider", content)
}

async fn update_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, PROVIDERS.active));
    let outcome = tri!(
        act(
            &state,
            &s,
            PROVIDERS,
            "Saving the provider",
            Method::PATCH,
            &tenant_api(&tid, "providers", &id, ""),
            Some(&provider_body(&fields, true)),
            |p| format!("Provider {} saved.", field(p, "name")),
        )
        .await
    );
    providers_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn test_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, PROVIDERS.active));
    let p = tri!(get_provider(&state, &s, &tid, &id).await);
    let path = tenant_api(&tid, "providers", &id, "test");
    match api::call(&state, &s.access_token, Method::POST, &path, None).await {
        Ok(result) => {
            let outcome = Outcome {
                message: Some(v::discovery_result(&field(&p, "name"), &result)),
                status: StatusCode::OK,
            };
            providers_page(&state, &s, &tenant_query(&tid), outcome).await
        }
        Err(e) => failed(&state, &s, PROVIDERS.active, PROVIDERS.title, e),
    }
}

async fn provider_status_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/admin/providers");
    let scope = tri!(
        tenant_scope(
            &state,
            &s,
            q(&query, "tenant"),
            "admin/providers",
            "admin/providers"
        )
        .await
    );
    let tid = scope.id();
    let Some((to, label)) = toggle_action(q(&query, "to")) else {
        return not_found(&state, &s, "admin/providers");
    };
    let p = tri!(get_provider(&state, &s, &tid, &id).await);
    let question = if to == "disable" {
        format!(
            "Disable the provider {}? Its users cannot sign in through it until it is enabled again.",
            field(&p, "name")
        )
    } else {
        format!("Enable the provider {}?", field(&p, "name"))
    };
    tenant_confirm(
        &state,
        &s,
        PROVIDERS,
        &format!("admin/providers/{}/status", urlencode(&id)),
        &tid,
        &[("to", to)],
        question,
        label,
    )
}

async fn provider_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, PROVIDERS.active));
    let Some((to, _)) = toggle_action(fields.get("to").map_or("", String::as_str)) else {
        return not_found(&state, &s, PROVIDERS.active);
    };
    let confirm_page = format!("admin/providers/{}/status", urlencode(&id));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, &format!("&to={to}")) {
        return r;
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            PROVIDERS,
            "Changing the provider",
            Method::POST,
            &tenant_api(&tid, "providers", &id, to),
            None,
            |p| format!(
                "Provider {} is now {}.",
                field(p, "name"),
                if p.get("enabled").and_then(Value::as_bool) == Some(true) {
                    "enabled"
                } else {
                    "disabled"
                }
            ),
        )
        .await
    );
    providers_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn provider_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/admin/providers");
    let scope = tri!(
        tenant_scope(
            &state,
            &s,
            q(&query, "tenant"),
            "admin/providers",
            "admin/providers"
        )
        .await
    );
    let tid = scope.id();
    let p = tri!(get_provider(&state, &s, &tid, &id).await);
    tenant_confirm(
        &state,
        &s,
        PROVIDERS,
        &format!("admin/providers/{}/delete", urlencode(&id)),
        &tid,
        &[],
        format!(
            "Delete the provider {}? Its configuration and stored client secret are removed.",
            field(&p, "name")
        ),
        "Delete provider",
    )
}

async fn delete_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, PROVIDERS.active));
    let confirm_page = format!("admin/providers/{}/delete", urlencode(&id));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, "") {
        return r;
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            PROVIDERS,
            "Deleting the provider",
            Method::DELETE,
            &tenant_api(&tid, "providers", &id, ""),
            None,
            |_| "The provider was deleted.".to_owned(),
        )
        .await
    );
    providers_page(&state, &s, &tenant_query(&tid), outcome).await
}

// ---------------------------------------------------------------- security events

/// `YYYY-MM-DDTHH:MM[:SS]` (a `datetime-local` value, taken as UTC) → RFC 3339.
fn utc(local: &str) -> Option<String> {
    let ok = |s: &str| {
        s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
    };
    match local.len() {
        16 if ok(local) => Some(format!("{local}:00Z")),
        19 if ok(local) => Some(format!("{local}Z")),
        _ => None,
    }
}

/// The filters of a request, and identity's query string for them. Tenant admins: always
/// their own tenant (another: `Err` 404).
fn event_query(
    s: &Session,
    query: &HashMap<String, String>,
) -> Result<(EventFilters, String, Vec<String>), ()> {
    let f = EventFilters {
        tenant: q(query, "tenant").to_owned(),
        kind: q(query, "type").to_owned(),
        actor: q(query, "actor").to_owned(),
        outcome: q(query, "outcome").to_owned(),
        from: q(query, "from").to_owned(),
        to: q(query, "to").to_owned(),
    };
    let tenant = match &s.tenant {
        Some(own) if !f.tenant.is_empty() && &f.tenant != own => return Err(()),
        Some(own) => own.clone(),
        None => f.tenant.clone(),
    };
    let mut problems = Vec::new();
    let mut params: Vec<(&str, String)> = Vec::new();
    if !tenant.is_empty() {
        params.push(("tenant", tenant));
    }
    for (k, v) in [
        ("type", &f.kind),
        ("actor", &f.actor),
        ("outcome", &f.outcome),
    ] {
        if !v.is_empty() {
            params.push((k, v.clone()));
        }
    }
    for (k, v) in [("from", &f.from), ("to", &f.to)] {
        if v.is_empty() {
            continue;
        }
        match utc(v) {
            Some(t) => params.push((k, t)),
            None => problems.push(format!("{k}: a date and time")),
        }
    }
    let qs = serde_urlencoded::to_string(&params).unwrap_or_default();
    Ok((f, qs, problems))
}

/// The events list sorts by time only (identity pages the log in id order); newest first by
/// default.
const EVENT_SORTS: &[(&str, &str)] = &[("time", "Time")];

/// The chain to verify: the tenant admin's own, or the platform admin's choice.
fn chain_of(s: &Session, tenant: &str) -> Option<(String, String)> {
    match (&s.tenant, tenant) {
        (Some(own), _) => Some((own.clone(), "your tenant".to_owned())),
        (None, "") => None,
        (None, "platform") => Some(("platform".to_owned(), "the platform".to_owned())),
        (None, t) => Some((t.to_owned(), format!("tenant {t}"))),
    }
}

async fn events(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/admin/security-events");
    let Ok((f, qs, problems)) = event_query(&s, &query) else {
        return not_found(&state, &s, EVENTS.active);
    };
    let sort = tri!(list_sort(
        &state,
        &s,
        EVENTS.active,
        &query,
        EVENT_SORTS,
        true
    ));
    let path = format!(
        "admin/security-events?limit=50&{qs}&{}{}",
        sort.query(),
        after_param(q(&query, "after"))
    );
    // Verifying walks the whole chain (its cost grows with the log): only on request, as a
    // background job at identity (`verification=<id>`: its progress), or at once (`verify=1`).
    let chain = chain_of(&s, &f.tenant);
    let verify = q(&query, "verify") == "1";
    let job = q(&query, "verification");
    let list_call = api::call(&state, &s.access_token, Method::GET, &path, None);
    let verify_call = async {
        if !job.is_empty() {
            let path = format!("admin/security-events/verifications/{}", urlencode(job));
            return Some(Check::Job(api::get(&state, &s.access_token, &path).await));
        }
        match &chain {
            Some((t, _)) if verify => Some(Check::Now(
                api::call(
                    &state,
                    &s.access_token,
                    Method::GET,
                    &format!("admin/security-events/verify?tenant={}", urlencode(t)),
                    None,
                )
                .await,
            )),
            _ => None,
        }
    };
    let tenants_call = async {
        if s.tenant.is_none() {
            api::call(
                &state,
                &s.access_token,
                Method::GET,
                "admin/tenants?limit=500",
                None,
            )
            .await
            .map(|v| items(&v))
            .unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let (list, verified, tenants) = tokio::join!(list_call, verify_call, tenants_call);
    let list = match list {
        Ok(v) => v,
        Err(ApiError::Status(400, detail)) => {
            let content = views::notice("error", format!("The filter is invalid: {detail}"));
            return page_with(
                &state,
                &s,
                EVENTS.active,
                EVENTS.title,
                content,
                StatusCode::BAD_REQUEST,
            );
        }
        Err(e) => return failed(&state, &s, EVENTS.active, EVENTS.title, e),
    };
    let mut keep: Vec<(&str, &str)> = Vec::new();
    for (k, v) in [
        ("tenant", f.tenant.as_str()),
        ("type", f.kind.as_str()),
        ("actor", f.actor.as_str()),
        ("outcome", f.outcome.as_str()),
        ("from", f.from.as_str()),
        ("to", f.to.as_str()),
    ] {
        if !v.is_empty() {
            keep.push((k, v));
        }
    }
    let keep_qs = serde_urlencoded::to_string(&keep).unwrap_or_default();
    let here = format!("{}?{keep_qs}", state.url(EVENTS.active));
    let first = format!("{here}&{}", sort.query());
    let next = next_after(&list).map(|n| format!("{first}{}", after_param(&n)));
    let verify_form = |what: &str| {
        v::verify_link(
            what,
            state.url("admin/security-events/verify"),
            &s.csrf,
            &f.tenant,
            &keep_qs,
        )
    };
    let mut refresh = None;
    let verify_view = match (&chain, verified) {
        (_, Some(Check::Job(Ok(job)))) => {
            let what = chain_of(&s, &field(&job, "tenant")).map_or_else(String::new, |(_, w)| w);
            match field(&job, "state").as_str() {
                "running" => {
                    refresh = Some(1);
                    v::verification_running(&what, &job)
                }
                "done" => v::chain_status(&what, Ok(job.get("result").unwrap_or(&Value::Null))),
                _ => (
                    v::chain_status(&what, Err(field(&job, "error"))),
                    verify_form(&what),
                )
                    .into_any(),
            }
        }
        (chain, Some(Check::Job(Err(ApiError::Status(404, _))))) => (
            views::notice(
                "error",
                "That chain verification is not known (anymore): identity keeps recent verifications in memory, per replica. Start it again.".into(),
            ),
            chain.as_ref().map(|(_, what)| verify_form(what)),
        )
            .into_any(),
        (Some((_, what)), Some(Check::Job(Err(e)) | Check::Now(Err(e)))) => {
            v::chain_status(what, Err(e.to_string()))
        }
        (Some((_, what)), Some(Check::Now(Ok(v)))) => v::chain_status(what, Ok(&v)),
        (Some((_, what)), None) => verify_form(what),
        (None, _) => views::notice(
            "",
            "Choose a tenant (or the platform) to verify its event chain.".into(),
        ),
    };
    let tenant_choice = s
        .tenant
        .is_none()
        .then(|| v::event_tenant_choice(&tenants, &f.tenant));
    let notice = (!problems.is_empty()).then(|| views::notice("error", problems.join("; ")));
    let content = (
        notice,
        v::events(
            state.base(),
            &f,
            tenant_choice,
            &items(&list),
            verify_view,
            v::pager(first, next),
            v::sort_links(&here, EVENT_SORTS, sort.key, sort.desc),
            &format!("?{keep_qs}"),
        ),
    )
        .into_any();
    crate::web::render_refreshing(&state, &s, EVENTS.active, EVENTS.title, content, refresh)
}

/// A chain verification the events page shows: a job's progress, or a synchronous answer.
enum Check {
    Job(Result<Value, ApiError>),
    Now(Result<Value, ApiError>),
}

/// The filters a form carries back to the events page (`filters`, a query string), limited
/// to the page's own parameters.
fn kept_filters(fields: &HashMap<String, String>) -> String {
    const KEYS: &[&str] = &[
        "tenant", "type", "actor", "outcome", "from", "to", "sort", "order",
    ];
    let pairs: Vec<(String, String)> = fields
        .get("filters")
        .and_then(|f| serde_urlencoded::from_str(f).ok())
        .unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| KEYS.contains(&k.as_str()) && v.len() <= 200)
        .collect();
    serde_urlencoded::to_string(&kept).unwrap_or_default()
}

/// `POST /admin/security-events/verify`: starts identity's verification job of the chosen
/// chain (the tenant admin's own; the platform admin's choice), then shows its progress on
/// the events page (`verification=<id>`), which reloads itself until the job is done.
async fn verify_chain(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tenant = fields.get("tenant").map_or("", |t| t.trim());
    if s.tenant
        .as_ref()
        .is_some_and(|own| !tenant.is_empty() && tenant != own)
    {
        return not_found(&state, &s, EVENTS.active);
    }
    let here = format!("{}?{}", state.url(EVENTS.active), kept_filters(&fields));
    let Some((chain, _)) = chain_of(&s, tenant) else {
        return redirect(&here);
    };
    let path = format!(
        "admin/security-events/verifications?tenant={}",
        urlencode(&chain)
    );
    match api::call(&state, &s.access_token, Method::POST, &path, None).await {
        Ok(job) => {
            let id = urlencode(&field(&job, "id"));
            redirect(&format!("{here}&verification={id}"))
        }
        Err(ApiError::Status(429, detail)) => page_with(
            &state,
            &s,
            EVENTS.active,
            EVENTS.title,
            views::notice("error", format!("Not started: {detail}")),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => failed(&state, &s, EVENTS.active, EVENTS.title, e),
    }
}

/// Up to 10,000 events of the filter as identity's NDJSON (the dashboard's own limit per file).
async fn export_lines(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
) -> Result<String, Response> {
    let Ok((_, qs, _)) = event_query(s, query) else {
        return Err(not_found(state, s, "admin/security-events"));
    };
    api::call_text(
        state,
        &s.access_token,
        &format!("admin/security-events/export?limit=10000&{qs}"),
    )
    .await
    .map_err(|e| failed(state, s, "admin/security-events", "Security events", e))
}

fn download(body: String, content_type: &'static str, disposition: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(CONTENT_DISPOSITION, HeaderValue::from_static(disposition));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn export_ndjson(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/admin/security-events");
    let body = tri!(export_lines(&state, &s, &query).await);
    download(
        body,
        "application/x-ndjson",
        "attachment; filename=\"security-events.ndjson\"",
    )
}

/// A CSV field (RFC 4180), neutralising spreadsheet formulas.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

pub(crate) fn ndjson_to_csv(ndjson: &str) -> String {
    const COLUMNS: &[&str] = &[
        "id",
        "time",
        "tenant_id",
        "seq",
        "type",
        "actor",
        "ip",
        "user_agent",
        "outcome",
        "details",
        "trace_id",
        "prev_hash",
        "hash",
    ];
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for line in ndjson.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let row: Vec<String> = COLUMNS
            .iter()
            .map(|c| match e.get(*c) {
                Some(Value::String(s)) => csv_field(s),
                Some(Value::Null) | None => String::new(),
                Some(other) => csv_field(&other.to_string()),
            })
            .collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

async fn export_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/admin/security-events");
    let body = tri!(export_lines(&state, &s, &query).await);
    download(
        ndjson_to_csv(&body),
        "text/csv; charset=utf-8",
        "attachment; filename=\"security-events.csv\"",
    )
}

// ---------------------------------------------------------------- settings

async fn settings(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/settings");
    settings_page(&state, &s, q(&query, "tenant"), Outcome::none()).await
}

async fn settings_page(state: &AppState, s: &Session, tenant: &str, outcome: Outcome) -> Response {
    const ACTIVE: &str = "settings";
    const TITLE: &str = "Identity settings";
    let mut scope = tri!(tenant_scope(state, s, tenant, ACTIVE, ACTIVE).await);
    let header = scope.header();
    // The key rotation policy is the service's (platform admins read it).
    let keys = if s.tenant.is_none() {
        match api::call(
            state,
            &s.access_token,
            Method::GET,
            "admin/keys/policies",
            None,
        )
        .await
        {
            Ok(p) => v::key_policy(state.base(), &p),
            Err(e) => views::notice("error", format!("The key policy is unavailable: {e}")),
        }
    } else {
        views::notice(
            "",
            "Signing keys and their rotation are managed by the platform administrators.".into(),
        )
    };
    let body = match &scope.tenant {
        Some(t) => v::settings(state.base(), &s.csrf, t, keys),
        None => (v::choose_tenant(), v::key_rotation_heading(), keys).into_any(),
    };
    let content = (outcome.message, header, body).into_any();
    page_with(state, s, ACTIVE, TITLE, content, outcome.status)
}

/// The policy of the form: empty optional numbers are `null`; bad numbers are problems.
fn policy_of(fields: &HashMap<String, String>) -> Result<Value, Vec<String>> {
    let mut policy = serde_json::Map::new();
    let mut problems = Vec::new();
    for (key, optional) in [
        ("access_token_lifetime_secs", true),
        ("refresh_token_lifetime_secs", true),
        ("session_timeout_secs", true),
        ("password_min_length", false),
        ("lockout_threshold", false),
        ("lockout_duration_secs", false),
    ] {
        let raw = fields.get(key).map_or("", |v| v.trim());
        if raw.is_empty() {
            if optional {
                policy.insert(key.into(), Value::Null);
            } else {
                problems.push(format!("{key}: required"));
            }
            continue;
        }
        match raw.parse::<u64>() {
            Ok(n) => {
                policy.insert(key.into(), json!(n));
            }
            Err(_) => problems.push(format!("{key}: a whole number")),
        }
    }
    policy.insert(
        "mfa_required".into(),
        json!(fields.get("mfa_required").map(String::as_str) == Some("yes")),
    );
    if problems.is_empty() {
        Ok(Value::Object(policy))
    } else {
        Err(problems)
    }
}

/// Saves a tenant's policy: platform admins for any tenant, tenant admins for their own
/// (identity allows both, and refuses a tenant admin anything but the policy).
async fn save_settings(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, SETTINGS.active));
    let outcome = match policy_of(&fields) {
        Err(problems) => {
            Outcome::refused(format!("The policy was not saved: {}", problems.join("; ")))
        }
        Ok(policy) => tri!(
            act(
                &state,
                &s,
                SETTINGS,
                "Saving the policy",
                Method::PATCH,
                &format!("admin/tenants/{}", urlencode(&tid)),
                Some(&json!({ "policy": policy })),
                |t| format!("The policy of {} was saved.", field(t, "slug")),
            )
            .await
        ),
    };
    settings_page(&state, &s, &tid, outcome).await
}

// ---------------------------------------------------------------- secrets

async fn secrets(State(state): State<AppState>, headers: HeaderMap, Query(query): Q) -> Response {
    let s = signed_in!(state, headers, "/secrets");
    secrets_page(&state, &s, &query, Outcome::none()).await
}

const SECRET_SORTS: &[(&str, &str)] = &[("name", "Name"), ("latest", "Latest version")];

/// The creation time of a secret's latest version (the `latest` sort).
fn secret_key(sec: &Value, key: &str) -> String {
    if key == "latest" {
        sec.get("versions")
            .and_then(Value::as_array)
            .and_then(|v| v.last())
            .map(|v| field(v, "created_at"))
            .unwrap_or_default()
    } else {
        field(sec, key)
    }
}

async fn secrets_page(
    state: &AppState,
    s: &Session,
    query: &HashMap<String, String>,
    outcome: Outcome,
) -> Response {
    tenant_list_page(
        state,
        s,
        query,
        outcome,
        SECRETS,
        "secrets",
        SECRET_SORTS,
        secret_key,
        |tid, rows, links| v::secrets(state.base(), &s.csrf, tid, rows, links),
    )
    .await
}

async fn put_secret(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, SECRETS.active));
    let name = fields.get("name").map_or("", |v| v.trim()).to_owned();
    let value = fields.get("value").cloned().unwrap_or_default();
    let outcome = if name.is_empty() || value.is_empty() {
        Outcome::refused("A name and a value are required.".into())
    } else {
        tri!(
            act(
                &state,
                &s,
                SECRETS,
                "Storing the secret",
                Method::PUT,
                &tenant_api(&tid, "secrets", &name, ""),
                Some(&json!({ "value": value })),
                |v| format!(
                    "Secret {} stored as version {}.",
                    field(v, "name"),
                    field(v, "version")
                ),
            )
            .await
        )
    };
    secrets_page(&state, &s, &tenant_query(&tid), outcome).await
}

async fn revoke_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(query): Q,
) -> Response {
    let s = signed_in!(state, headers, "/secrets");
    let scope = tri!(tenant_scope(&state, &s, q(&query, "tenant"), "secrets", "secrets").await);
    let tid = scope.id();
    if tid.is_empty() {
        return not_found(&state, &s, "secrets");
    }
    tenant_confirm(
        &state,
        &s,
        SECRETS,
        &format!("secrets/{}/revoke", urlencode(&name)),
        &tid,
        &[],
        format!("Revoke every version of the secret {name}? Nothing can read it afterwards."),
        "Revoke secret",
    )
}

async fn revoke_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let (s, fields) = posted!(state, headers, body);
    let tid = tri!(form_tenant(&state, &s, &fields, SECRETS.active));
    let confirm_page = format!("secrets/{}/revoke", urlencode(&name));
    if let Some(r) = unconfirmed(&state, &fields, &confirm_page, &tid, "") {
        return r;
    }
    let outcome = tri!(
        act(
            &state,
            &s,
            SECRETS,
            "Revoking the secret",
            Method::POST,
            &tenant_api(&tid, "secrets", &name, "revoke"),
            None,
            |_| format!("Secret {name} revoked."),
        )
        .await
    );
    secrets_page(&state, &s, &tenant_query(&tid), outcome).await
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tansu_shared::testing::TestServer;

    use super::*;
    use crate::Config;

    /// A tenant admin's session of tenant `t1`, against an unreachable identity: everything
    /// about another tenant is refused before identity is even asked.
    #[tokio::test]
    async fn tenant_admins_never_reach_other_tenants() {
        let state = AppState::new(Config {
            issuer: "http://127.0.0.1:1/identity/".into(),
            health_url: "http://127.0.0.1:1/health".into(),
            public_url: "https://gw.test/dashboard/".into(),
            ..Config::default()
        })
        .unwrap();
        let id = state.sessions.insert(Session {
            subject: "u1".into(),
            email: "owner@t1.test".into(),
            name: "Owner".into(),
            roles: vec!["Owner".into()],
            tenant: Some("t1".into()),
            access_token: "at".into(),
            id_token: "idt".into(),
            csrf: "csrf-token".into(),
            expires: Instant::now() + Duration::from_secs(600),
        });
        let server = TestServer::start(crate::router(state)).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = format!("{}={id}", crate::session::SESSION_COOKIE);
        for path in [
            "/users?tenant=t2",
            "/admin/providers?tenant=t2",
            "/admin/providers/p?tenant=t2",
            "/admin/security-events?tenant=t2",
            "/admin/security-events?tenant=platform",
            "/admin/security-events/export.csv?tenant=t2",
            "/settings?tenant=t2",
            "/secrets?tenant=t2",
            "/secrets/x/revoke?tenant=t2",
            "/users/u/mfa?tenant=t2",
        ] {
            let r = http
                .get(server.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{path}");
        }
        for path in [
            "/tenants",
            "/keys",
            "/clients",
            "/tenants/t2/status?to=suspend",
        ] {
            let r = http
                .get(server.url(path))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{path}");
        }
        for action in [
            "/users",
            "/users/u/status",
            "/users/u/password",
            "/users/u/roles",
            "/users/u/mfa",
            "/admin/providers",
            "/admin/providers/p",
            "/admin/providers/p/test",
            "/admin/providers/p/status",
            "/admin/providers/p/delete",
            "/settings",
            "/secrets",
            "/secrets/x/revoke",
        ] {
            let r = http
                .post(server.url(action))
                .header("cookie", &cookie)
                .form(&[
                    ("csrf", "csrf-token"),
                    ("tenant", "t2"),
                    ("confirm", "yes"),
                    ("to", "disable"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "POST {action}");
        }
        let r = http
            .post(server.url("/tenants"))
            .header("cookie", &cookie)
            .form(&[("csrf", "csrf-token"), ("slug", "x"), ("name", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        server.stop().await;
    }

    #[test]
    fn sorts_are_allow_listed() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let s = ListSort::parse(&query(&[]), TENANT_SORTS, false).unwrap();
        assert_eq!(s.query(), "sort=created&order=asc");
        let s = ListSort::parse(
            &query(&[("sort", "slug"), ("order", "desc")]),
            TENANT_SORTS,
            false,
        )
        .unwrap();
        assert_eq!(s.query(), "sort=slug&order=desc");
        assert_eq!(
            ListSort::parse(&query(&[]), EVENT_SORTS, true)
                .unwrap()
                .query(),
            "sort=time&order=desc"
        );
        for bad in [
            query(&[("sort", "password_hash")]),
            query(&[("sort", "name&x=1")]),
            query(&[("order", "up")]),
        ] {
            assert!(
                ListSort::parse(&bad, TENANT_SORTS, false).is_none(),
                "{bad:?}"
            );
        }
        let mut rows = vec![
            json!({"name": "beta"}),
            json!({"name": "Alpha"}),
            json!({"name": "gamma"}),
        ];
        let s = ListSort::parse(&query(&[("order", "desc")]), PROVIDER_SORTS, false).unwrap();
        s.apply(&mut rows, field);
        let names: Vec<String> = rows.iter().map(|r| field(r, "name")).collect();
        assert_eq!(names, ["gamma", "beta", "Alpha"]);
    }

    #[test]
    fn datetime_local_values_become_rfc3339() {
        assert_eq!(utc("2026-11-26T10:05").unwrap(), "2026-11-26T10:05:00Z");
        assert_eq!(utc("2026-11-26T10:05:09").unwrap(), "2026-11-26T10:05:09Z");
        for bad in [
            "",
            "yesterday",
            "2026-11-26 10:05",
            "2026-11-26T10:05Z",
            "2026-11-26T10:05:00&x=1",
        ] {
            assert!(utc(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn csv_export_escapes_and_defuses_formulas() {
        let nd = concat!(
            r#"{"id":"1","time":"t","tenant_id":null,"seq":1,"type":"sign_in","actor":"=cmd()","ip":"1.2.3.4","user_agent":"a, \"b\"","outcome":"success","details":{"x":1},"trace_id":"","prev_hash":"","hash":"h"}"#,
            "\n\nnot json\n"
        );
        let csv = ndjson_to_csv(nd);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with("id,time,tenant_id"));
        assert!(lines[1].contains(",'=cmd(),"), "{csv}");
        assert!(lines[1].contains(r#""a, ""b""""#), "{csv}");
        assert!(lines[1].contains(r#""{""x"":1}""#), "{csv}");
        assert_eq!(lines.len(), 3, "{csv}");
    }

    #[test]
    fn policy_form_values() {
        let f: HashMap<String, String> = [
            ("access_token_lifetime_secs", ""),
            ("refresh_token_lifetime_secs", "3600"),
            ("session_timeout_secs", ""),
            ("password_min_length", "14"),
            ("lockout_threshold", "5"),
            ("lockout_duration_secs", "900"),
            ("mfa_required", "yes"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let p = policy_of(&f).unwrap();
        assert_eq!(p["access_token_lifetime_secs"], Value::Null);
        assert_eq!(p["refresh_token_lifetime_secs"], 3600);
        assert_eq!(p["password_min_length"], 14);
        assert_eq!(p["mfa_required"], true);
        let mut bad = f.clone();
        bad.insert("lockout_threshold".into(), "-1".into());
        bad.insert("password_min_length".into(), String::new());
        assert_eq!(policy_of(&bad).unwrap_err().len(), 2);
    }
}
