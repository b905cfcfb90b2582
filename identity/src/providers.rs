//! External OIDC providers per tenant (issue #8): the admin API under
//! `/admin/tenants/{tid}/providers`.
//!
//! Who may call it: the same callers as the users API ([`crate::admin_tenants::Caller`]):
//! platform admins for every tenant, tenant admins for their own tenant only; any other
//! tenant id, and any provider id of another tenant, answers 404 like one that does not exist.
//!
//! The client secret is write-only: it is sealed with AES-256-GCM under the tenant's vault data
//! key ([`crate::vault`], envelope encryption under the master key) with AAD
//! `tansu-provider:<tenant>\n<provider id>`, so a ciphertext copied to another row does not
//! open; the API only ever says `has_secret`.
//!
//! `POST …/{id}/test` fetches the provider's discovery document. Because a tenant admin chooses
//! the URL, the fetch is bounded (5 s, 256 KiB, no redirects) and the issuer must be `https`
//! (plain `http` only for loopback hosts in dev mode; outside dev mode, IP-literal hosts in
//! loopback, private or link-local ranges are refused). Every outcome of the fetch is a `200`
//! with `ok: false` and a reason, never a 5xx: the provider being wrong is not our failure.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tansu_shared::Problem;

use crate::AppState;
use crate::admin::{json_body, store_failed};
use crate::admin_tenants::{audit, found, tenant_for};
use crate::clients::rfc3339;
use crate::events::Meta;
use crate::http::{Action, Caller};
use crate::store::providers::ProviderRow;
use crate::store::{new_id, now_ms};

/// The security event type of provider changes.
pub const PROVIDER_CHANGE: &str = "provider.change";

/// Bounds of the discovery fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_SCOPES: usize = 20;
const MAX_SECRET_BYTES: usize = 1024;

pub fn router() -> crate::http::Routes<AppState> {
    crate::http::Routes::new()
        .route(
            "/admin/tenants/{tid}/providers",
            get(list_providers).post(create_provider),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}",
            get(get_provider)
                .patch(update_provider)
                .delete(delete_provider),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/disable",
            set_enabled(false),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/enable",
            set_enabled(true),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/test",
            post(test_provider),
        )
}

/// A provider as the API shows it (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderView {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub has_secret: bool,
    pub scopes: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ProviderRow> for ProviderView {
    fn from(p: &ProviderRow) -> Self {
        Self {
            id: p.id.clone(),
            tenant_id: p.tenant_id.clone(),
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            has_secret: p.client_secret.is_some(),
            scopes: p.scopes.clone(),
            enabled: p.enabled,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProvider {
    name: String,
    issuer: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProviderUpdate {
    name: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    /// A new secret (replaces the stored one).
    client_secret: Option<String>,
    /// `true` removes the stored secret.
    remove_secret: Option<bool>,
    scopes: Option<Vec<String>>,
    enabled: Option<bool>,
}

fn invalid(problems: Vec<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid provider",
    )
    .with_detail(problems.join("; "))
    .with_extension("errors", problems)
}

fn conflict() -> Problem {
    Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
        .with_detail("the tenant already has a provider with this issuer")
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Addresses a tenant admin must not point the server at outside dev mode.
fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                // Shared address space (RFC 6598), often a cloud's internal network.
                || (a == 100 && (64..128).contains(&b))
                // Benchmarking (RFC 2544) and IETF protocol assignments.
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal_ip(v4.into()))
        }
    }
}

/// Problems with an issuer URL: https (http only for loopback in dev mode), no credentials,
/// query or fragment; outside dev mode no loopback/private IP literal.
pub fn issuer_problems(issuer: &str, dev_mode: bool) -> Vec<String> {
    let mut v = Vec::new();
    if issuer.len() > 2048 {
        v.push("issuer: at most 2048 characters".to_owned());
        return v;
    }
    let url = match url::Url::parse(issuer) {
        Ok(u) => u,
        Err(_) => {
            v.push("issuer: an absolute https URL".to_owned());
            return v;
        }
    };
    let Some(host) = url.host() else {
        v.push("issuer: an absolute https URL".to_owned());
        return v;
    };
    match url.scheme() {
        "https" => {}
        "http" if dev_mode && is_loopback_host(&host) => {}
        "http" => v.push("issuer: must be https (http only for loopback in dev mode)".to_owned()),
        _ => v.push("issuer: an absolute https URL".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        v.push("issuer: must not contain credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        v.push("issuer: must not have a query or fragment".to_owned());
    }
    if !dev_mode {
        let internal = match host {
            url::Host::Ipv4(ip) => is_internal_ip(ip.into()),
            url::Host::Ipv6(ip) => is_internal_ip(ip.into()),
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        };
        if internal {
            v.push("issuer: must not be a loopback, private or link-local address".to_owned());
        }
    }
    v
}

fn row_problems(p: &ProviderRow, dev_mode: bool) -> Vec<String> {
    let mut v = Vec::new();
    let name_len = p.name.chars().count();
    if name_len == 0 || name_len > 200 || p.name.chars().any(char::is_control) {
        v.push("name: required, at most 200 characters".to_owned());
    }
    v.extend(issuer_problems(&p.issuer, dev_mode));
    if p.client_id.is_empty()
        || p.client_id.len() > 256
        || p.client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        v.push("client_id: 1 to 256 characters, no spaces".to_owned());
    }
    if p.scopes.len() > MAX_SCOPES {
        v.push(format!("scopes: at most {MAX_SCOPES}"));
    }
    if p.scopes
        .iter()
        .any(|s| s.len() > 128 || crate::scopes::parse(s).is_none_or(|t| t.len() != 1))
    {
        v.push("scopes: each a single RFC 6749 scope token".to_owned());
    }
    if !p.scopes.iter().any(|s| s == "openid") {
        v.push("scopes: must include openid".to_owned());
    }
    v
}

fn secret_aad(tid: &str, id: &str) -> Vec<u8> {
    format!("tansu-provider:{tid}\n{id}").into_bytes()
}

async fn seal_secret(
    state: &AppState,
    tid: &str,
    id: &str,
    secret: &str,
) -> Result<Vec<u8>, Problem> {
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(invalid(vec![format!(
            "client_secret: 1 to {MAX_SECRET_BYTES} bytes"
        )]));
    }
    let dek = crate::vault::data_key(state, tid)
        .await
        .map_err(|e| store_failed(&e))?;
    dek.seal(secret.as_bytes(), &secret_aad(tid, id))
        .map_err(|e| store_failed(&e))
}

/// The provider's client secret, opened (for the sign-in flow that will use it).
pub async fn client_secret(
    state: &AppState,
    p: &ProviderRow,
) -> anyhow::Result<Option<zeroize::Zeroizing<String>>> {
    let Some(sealed) = &p.client_secret else {
        return Ok(None);
    };
    let dek = crate::vault::data_key(state, &p.tenant_id).await?;
    let plain = dek.open(sealed, &secret_aad(&p.tenant_id, &p.id))?;
    Ok(Some(zeroize::Zeroizing::new(String::from_utf8(
        plain.to_vec(),
    )?)))
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

async fn create_provider(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageProviders(&tid), &tid).await?;
    let new: NewProvider = json_body(body).await?;
    let now = now_ms();
    let mut row = ProviderRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        name: new.name.trim().to_owned(),
        issuer: new.issuer.trim().to_owned(),
        client_id: new.client_id.trim().to_owned(),
        client_secret: None,
        scopes: new.scopes.unwrap_or_else(default_scopes),
        enabled: new.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let problems = row_problems(&row, state.config.dev_mode);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if let Some(secret) = new.client_secret.as_deref().filter(|s| !s.is_empty()) {
        row.client_secret = Some(seal_secret(&state, &tenant.id, &row.id, secret).await?);
    }
    match state.store.insert_provider(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(conflict()),
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %tenant.id, provider = %row.id, by = %caller.subject(), "external provider created");
    audit(
        &state,
        &caller,
        &meta,
        &tenant.id,
        PROVIDER_CHANGE,
        json!({"action": "create", "provider": row.id, "issuer": row.issuer}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(ProviderView::from(&row))).into_response())
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<String>,
    limit: Option<i64>,
}

async fn list_providers(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageProviders(&tid), &tid).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .store
        .list_providers(&tenant.id, q.after.as_deref(), limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let next = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let items: Vec<ProviderView> = rows.iter().map(ProviderView::from).collect();
    Ok(Json(json!({ "items": items, "next_after": next })))
}

/// The provider `id` of tenant `tid` if the caller may manage the tenant; else 404.
async fn load(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    id: &str,
) -> Result<ProviderRow, Problem> {
    let tenant = tenant_for(state, caller, &Action::ManageProviders(tid), tid).await?;
    state
        .store
        .provider(&tenant.id, id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)
}

async fn get_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<ProviderView>, Problem> {
    Ok(Json(ProviderView::from(
        &load(&state, &caller, &tid, &id).await?,
    )))
}

async fn save(
    state: &AppState,
    caller: &Caller,
    meta: &Meta,
    mut row: ProviderRow,
    update: ProviderUpdate,
    action: &str,
) -> Result<Json<ProviderView>, Problem> {
    if let Some(v) = update.name {
        row.name = v.trim().to_owned();
    }
    if let Some(v) = update.issuer {
        row.issuer = v.trim().to_owned();
    }
    if let Some(v) = update.client_id {
        row.client_id = v.trim().to_owned();
    }
    if let Some(v) = update.scopes {
        row.scopes = v;
    }
    if let Some(v) = update.enabled {
        row.enabled = v;
    }
    let problems = row_problems(&row, state.config.dev_mode);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let secret_changed = match (update.client_secret.as_deref(), update.remove_secret) {
        (Some(s), _) if !s.is_empty() => {
            row.client_secret = Some(seal_secret(state, &row.tenant_id, &row.id, s).await?);
            true
        }
        (_, Some(true)) => {
            row.client_secret = None;
            true
        }
        _ => false,
    };
    row.updated_at = now_ms();
    match state.store.update_provider(&row).await {
        Ok(true) => {}
        Ok(false) => return Err(Problem::not_found()),
        Err(e) if e.is_unique_violation() => return Err(conflict()),
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, action, by = %caller.subject(), "external provider changed");
    audit(
        state,
        caller,
        meta,
        &row.tenant_id,
        PROVIDER_CHANGE,
        json!({"action": action, "provider": row.id, "issuer": row.issuer,
               "enabled": row.enabled, "secret_changed": secret_changed}),
    )
    .await;
    Ok(Json(ProviderView::from(&row)))
}

async fn update_provider(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<ProviderView>, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    let update: ProviderUpdate = json_body(body).await?;
    save(&state, &caller, &meta, row, update, "update").await
}

/// `POST …/disable` or `…/enable` (`enabled`).
fn set_enabled(enabled: bool) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              caller: Caller,
              meta: Meta,
              Path((tid, id)): Path<(String, String)>| async move {
            let row = load(&state, &caller, &tid, &id).await?;
            let update = ProviderUpdate {
                enabled: Some(enabled),
                ..ProviderUpdate::default()
            };
            let action = if enabled { "enable" } else { "disable" };
            save(&state, &caller, &meta, row, update, action).await
        },
    )
}

async fn delete_provider(
    State(state): State<AppState>,
    caller: Caller,
    meta: Meta,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    found(state.store.delete_provider(&row.tenant_id, &row.id).await)?;
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, by = %caller.subject(), "external provider deleted");
    audit(
        &state,
        &caller,
        &meta,
        &row.tenant_id,
        PROVIDER_CHANGE,
        json!({"action": "delete", "provider": row.id, "issuer": row.issuer}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- discovery test

/// The HTTP client of a discovery fetch; `pinned` connects `host` to that address only.
fn http(pinned: Option<(&str, std::net::SocketAddr)>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        // A redirect could lead anywhere (SSRF); discovery documents are served directly.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("tansu-identity (provider discovery test)");
    if let Some((host, addr)) = pinned {
        builder = builder.resolve(host, addr);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Refused fetches say only this, so the check is no oracle for probing a network.
const NOT_ALLOWED: &str = "the provider's address is not allowed";

/// Outside dev mode, the one address a discovery fetch may connect to: every address the
/// issuer's host resolves to must be public (not loopback, private, link-local — which
/// includes cloud metadata at 169.254.169.254 — or otherwise internal), and the fetch then
/// connects to the first of them only, so a DNS answer that changes between this check and
/// the connection (rebinding) cannot aim it inward. `None` in dev mode or for an IP literal
/// (checked by [`issuer_problems`]).
async fn vetted_address(
    url: &url::Url,
    dev_mode: bool,
) -> Result<Option<(String, std::net::SocketAddr)>, String> {
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(None);
    };
    if dev_mode {
        return Ok(None);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| "the provider's host name could not be resolved".to_owned())?
        .collect();
    match addrs.first() {
        Some(first) if addrs.iter().all(|a| !is_internal_ip(a.ip())) => {
            Ok(Some((host.to_owned(), *first)))
        }
        _ => Err(NOT_ALLOWED.to_owned()),
    }
}

/// The discovery URL of an issuer (OIDC Discovery §4: the issuer without a trailing `/`).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The outcome of a discovery check.
#[derive(Debug, Serialize)]
pub struct DiscoveryCheck {
    pub ok: bool,
    pub discovery_url: String,
    /// Why it failed (absent when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The HTTP status the provider answered, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub elapsed_ms: u64,
}

/// Fetches and checks `issuer`'s discovery document: an answer within the time and size
/// bounds, `200`, a JSON object whose `issuer` equals `issuer` exactly, and the authorization,
/// token and JWKS endpoints present.
pub async fn check_discovery(issuer: &str, dev_mode: bool) -> DiscoveryCheck {
    let started = Instant::now();
    let url = discovery_url(issuer);
    let mut check = DiscoveryCheck {
        ok: false,
        discovery_url: url.clone(),
        reason: None,
        http_status: None,
        issuer: None,
        authorization_endpoint: None,
        token_endpoint: None,
        jwks_uri: None,
        elapsed_ms: 0,
    };
    let result = fetch_document(&url, dev_mode, &mut check).await;
    check.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let doc = match result {
        Ok(doc) => doc,
        Err(reason) => {
            check.reason = Some(reason);
            return check;
        }
    };
    let field = |k: &str| {
        doc.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(2048).collect::<String>())
    };
    check.issuer = field("issuer");
    check.authorization_endpoint = field("authorization_endpoint");
    check.token_endpoint = field("token_endpoint");
    check.jwks_uri = field("jwks_uri");
    let reason = match &check.issuer {
        None => Some("the document has no issuer".to_owned()),
        Some(i) if i != issuer => Some(format!(
            "the document's issuer {i:?} does not match the configured issuer {issuer:?} exactly"
        )),
        Some(_) => {
            let missing: Vec<&str> = [
                ("authorization_endpoint", &check.authorization_endpoint),
                ("token_endpoint", &check.token_endpoint),
                ("jwks_uri", &check.jwks_uri),
            ]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
            (!missing.is_empty()).then(|| format!("the document lacks {}", missing.join(", ")))
        }
    };
    check.ok = reason.is_none();
    check.reason = reason;
    check
}

async fn fetch_document(
    url: &str,
    dev_mode: bool,
    check: &mut DiscoveryCheck,
) -> Result<serde_json::Value, String> {
    let parsed = url::Url::parse(url).map_err(|_| "the issuer is not a URL".to_owned())?;
    let pinned = vetted_address(&parsed, dev_mode).await?;
    let client = http(pinned.as_ref().map(|(h, a)| (h.as_str(), *a)))?;
    let mut resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the provider did not answer in time".to_owned()
            } else if e.is_connect() {
                "the provider could not be reached (connection failed)".to_owned()
            } else {
                "the request to the provider failed".to_owned()
            }
        })?;
    let status = resp.status();
    check.http_status = Some(status.as_u16());
    if status.is_redirection() {
        return Err(format!(
            "the provider answered {} (a redirect; discovery must be served directly)",
            status.as_u16()
        ));
    }
    if !status.is_success() {
        return Err(format!("the provider answered HTTP {}", status.as_u16()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!(
            "the document is larger than {} KiB",
            MAX_DOCUMENT_BYTES / 1024
        ));
    }
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(format!(
                        "the document is larger than {} KiB",
                        MAX_DOCUMENT_BYTES / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err("the provider did not answer in time".into()),
            Err(_) => return Err("the provider's answer broke off".into()),
        }
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("the document is not a JSON object".into()),
        Err(_) => Err("the document is not JSON".into()),
    }
}

/// Tests the provider's discovery document; the result is JSON (`ok`, `reason`, endpoints).
async fn test_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<DiscoveryCheck>, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    // Re-checked at use: the stored URL may predate a change of mode.
    if let Some(problem) = issuer_problems(&row.issuer, state.config.dev_mode)
        .into_iter()
        .next()
    {
        return Ok(Json(DiscoveryCheck {
            ok: false,
            discovery_url: discovery_url(&row.issuer),
            reason: Some(problem),
            http_status: None,
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            elapsed_ms: 0,
        }));
    }
    let mut check = check_discovery(&row.issuer, state.config.dev_mode).await;
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, ok = check.ok, "external provider discovery tested");
    if !caller.is_platform() {
        // No oracle for a tenant: neither the upstream's status, nor its timing, nor why a
        // connection failed.
        check.http_status = None;
        check.elapsed_ms = 0;
        if check.issuer.is_none() && !check.ok {
            check.reason = Some("the provider's discovery document could not be fetched".into());
        }
    }
    Ok(Json(check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_include_metadata_and_shared_space() {
        for ip in [
            "169.254.169.254",
            "100.100.100.200",
            "10.0.0.1",
            "127.0.0.1",
            "0.1.2.3",
            "::1",
            "fd00::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_inward_is_refused_outside_dev_mode() {
        // `localhost` resolves from the hosts file, without the network.
        let url =
            url::Url::parse("https://localhost:8443/.well-known/openid-configuration").unwrap();
        assert_eq!(vetted_address(&url, false).await.unwrap_err(), NOT_ALLOWED);
        assert!(vetted_address(&url, true).await.unwrap().is_none());
        let mut check = check_discovery("https://localhost:8443", false).await;
        assert!(!check.ok);
        assert_eq!(check.reason.take().as_deref(), Some(NOT_ALLOWED));
        assert!(check.http_status.is_none());
    }

    #[test]
    fn issuer_rules() {
        assert!(issuer_problems("https://accounts.example.com", false).is_empty());
        assert!(issuer_problems("https://login.example.com/tenant/v2.0/", false).is_empty());
        assert!(issuer_problems("http://127.0.0.1:8080/", true).is_empty());
        assert!(issuer_problems("http://localhost:8080", true).is_empty());
        for bad in [
            "http://example.com",
            "http://127.0.0.1:8080/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://u:p@example.com/",
            "https://example.com/?q",
            "ftp://example.com",
            "not a url",
            "",
        ] {
            assert!(!issuer_problems(bad, false).is_empty(), "{bad}");
        }
        assert!(!issuer_problems("http://example.com", true).is_empty());
    }

    #[test]
    fn discovery_url_drops_the_trailing_slash() {
        assert_eq!(
            discovery_url("https://a.example/x/"),
            "https://a.example/x/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example"),
            "https://a.example/.well-known/openid-configuration"
        );
    }
}
