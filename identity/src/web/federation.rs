//! Sign-in through a tenant's external providers, in the browser: the buttons and the
//! home-realm discovery field of the login page ([`login_fragment`]), `GET
//! /federation/{provider}/start` (to the provider), `GET /federation/{provider}/callback` (back
//! from it) and `GET /federation/discover` (an address's domain names the provider). What
//! happens to the verified identity (a linked account, a new one, a link waiting for the
//! existing account's password) is [`super::federation_link`]; the relying party itself is
//! [`crate::federation`].
//!
//! Security decisions:
//! - The provider is always looked up by (tenant of the pending authorization request,
//!   provider id): a provider of one tenant never signs anyone into another.
//! - State, nonce and PKCE verifier stay on the server, in a single-use row keyed by the
//!   state's SHA-256 that expires after [`crate::federation::PENDING_LIFETIME_MS`] and is bound
//!   to the browser that started it (the SHA-256 of a random `SameSite=Lax` cookie: the
//!   provider's redirect back is a cross-site navigation, which a Strict cookie would miss).
//!   A callback whose state, cookie or provider path does not match answers a page, never a
//!   session.
//! - A provider that is down or answers nonsense gives the login page with a 502 and a
//!   sentence; a refused answer (an ID token failing a check) a 400. Never a 500.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::crypto;
use crate::events;
use crate::federation::{self, FederationError, PENDING_LIFETIME_MS, Upstream};
use crate::store::federation::{FederationPendingRow, KIND_AUTHORIZE};
use crate::store::now_ms;
use crate::store::providers::ProviderRow;
use crate::store::tenants::TenantRow;
use crate::web::authorize::{AuthRequest, AuthorizeError, parse_request};
use crate::web::page::{cookie_value, escape, redirect, set_cookie, unavailable};
use crate::web::password::login_page;

/// A checked upstream identity waiting for a step (`kind`: a link waiting for the account's
/// password, an address waiting for its proof by mail): stored under the SHA-256 of the
/// single-use `token`, bound to the SHA-256 of `binding`, until `lifetime_ms` from now. `Err`:
/// the page to answer.
pub(crate) async fn hold_identity(
    state: &AppState,
    (tenant, p, id): (&TenantRow, &ProviderRow, &federation::UpstreamIdentity),
    req: &AuthRequest,
    (kind, token, binding): (&str, &str, &str),
    user_id: Option<String>,
    lifetime_ms: i64,
) -> Result<(), Response> {
    let identity = serde_json::to_string(id).map_err(|e| unavailable(&e))?;
    let now = now_ms();
    let row = FederationPendingRow {
        token_hash: crypto::sha256(token.as_bytes()),
        binding_hash: crypto::sha256(binding.as_bytes()),
        kind: kind.to_owned(),
        tenant_id: tenant.id.clone(),
        provider_id: p.id.clone(),
        request: req.raw.clone(),
        nonce: None,
        pkce_verifier: None,
        user_id,
        identity: Some(identity),
        created_at: now,
        expires_at: now + lifetime_ms,
    };
    state
        .store
        .insert_federation_pending(&row)
        .await
        .map_err(|e| unavailable(&e))
}

/// The cookie that binds a sign-in at a provider to the browser that started it.
pub(crate) const FEDERATION_COOKIE: &str = "tansu_federation";

/// What the login page of a tenant offers besides the password.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// (id, name) of each enabled provider.
    buttons: Vec<(String, String)>,
    /// Whether a provider claims domains (the page then asks for the address first).
    discovery: bool,
}

/// The offer of `tenant_id`'s login page (nothing when its providers cannot be read).
pub(crate) async fn offer(state: &AppState, tenant_id: &str) -> Offer {
    match state.store.enabled_providers(tenant_id).await {
        Ok(providers) => Offer {
            discovery: providers.iter().any(|p| !p.sign_in.home_domains.is_empty()),
            buttons: providers.into_iter().map(|p| (p.id, p.name)).collect(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "reading a tenant's providers failed");
            Offer::default()
        }
    }
}

/// The login page's part for external providers: a button per provider, and the address field
/// of home-realm discovery.
pub(crate) fn login_fragment(state: &AppState, req: &AuthRequest) -> String {
    let offer = &req.federation;
    if offer.buttons.is_empty() {
        return String::new();
    }
    let issuer = &state.config.issuer;
    let buttons: String = offer
        .buttons
        .iter()
        .map(|(id, name)| {
            format!(
                "<p><a class=\"button federation\" href=\"{}\">Sign in with {}</a></p>",
                escape(&format!("{issuer}federation/{id}/start?{}", req.raw)),
                escape(name)
            )
        })
        .collect();
    let discovery = if offer.discovery {
        format!(
            "<form method=\"get\" action=\"{}\" class=\"federation-discovery\">\
             <input type=\"hidden\" name=\"request\" value=\"{}\">\
             <label>Work email <input type=\"email\" name=\"email\" autocomplete=\"username\" required></label>\
             <button type=\"submit\">Continue with your organisation</button></form>",
            escape(&format!("{issuer}federation/discover")),
            escape(&req.raw)
        )
    } else {
        String::new()
    };
    format!("<section class=\"federation\"><p>Or sign in with</p>{buttons}{discovery}</section>")
}

/// Records a security event of the flow.
pub(crate) async fn event(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: &str,
    kind: &str,
    actor: String,
    outcome: &str,
    details: serde_json::Value,
) {
    let meta = events::Meta::from_headers(headers);
    let event = events::Event {
        tenant_id: Some(tenant_id),
        kind,
        actor,
        outcome,
        details,
    };
    events::record(&state.events, &meta, event).await;
}

/// The active tenant of a pending authorization request.
pub(crate) async fn request_tenant(
    state: &AppState,
    req: &AuthRequest,
) -> Result<Option<TenantRow>, Response> {
    let Some(t) = &req.tenant else {
        return Ok(None);
    };
    match state.store.tenant_by_ref(t).await {
        Ok(Some(t)) if t.status == crate::tenants::STATUS_ACTIVE => Ok(Some(t)),
        Ok(_) => Ok(None),
        Err(e) => Err(unavailable(&e)),
    }
}

/// The enabled provider `id` of `tenant` (another tenant's provider finds nothing).
pub(crate) async fn tenant_provider(
    state: &AppState,
    tenant: &TenantRow,
    id: &str,
) -> Result<Option<ProviderRow>, Response> {
    match state.store.provider(&tenant.id, id).await {
        Ok(p) => Ok(p.filter(|p| p.enabled)),
        Err(e) => Err(unavailable(&e)),
    }
}

const NO_PROVIDER: &str = "This sign-in provider is not available here.";
pub(crate) const FEDERATION_EXPIRED: &str = "This sign-in through a provider expired or was already used. Start again from the application.";

/// The provider discovered, with its secret from the vault; `Err`: the page to answer.
async fn upstream(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    p: &ProviderRow,
) -> Result<Upstream, Response> {
    let secret = match crate::providers::client_secret(&state.store, state.keys.master(), p).await {
        Ok(s) => s,
        Err(e) => return Err(unavailable(&e)),
    };
    let callback = format!("{}federation/{}/callback", state.config.issuer, p.id);
    let cache = &state.provider_metadata;
    federation::discover(cache, p, secret, &callback, state.config.dev_mode)
        .await
        .map_err(|e| failed(state, headers, req, p, &e))
}

/// The login page after a failure at or of the provider: 502 when it is unavailable, 400
/// when its answer was refused.
pub(crate) fn failed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    p: &ProviderRow,
    e: &FederationError,
) -> Response {
    tracing::info!(provider = %p.id, error = %e, "sign-in through a provider failed");
    let (status, message) = match e {
        FederationError::Unavailable(_) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "{} could not be reached or answered something unusable. Try again later, or \
                 sign in with your password.",
                p.name
            ),
        ),
        FederationError::Refused(_) => (
            StatusCode::BAD_REQUEST,
            format!(
                "The answer of {} could not be verified, so it signs no one in. Start again.",
                p.name
            ),
        ),
    };
    login_page(state, headers, req, Some(message.as_str()), status)
}

fn page(status: StatusCode, message: &'static str) -> Response {
    AuthorizeError::Page(status, message).into_response()
}

/// `GET /federation/{provider}/start?{authorization request}`: to the provider.
pub async fn start(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let req = match parse_request(&state, uri.query().unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let tenant = match request_tenant(&state, &req).await {
        Ok(Some(t)) => t,
        Ok(None) => return page(StatusCode::NOT_FOUND, NO_PROVIDER),
        Err(r) => return r,
    };
    let p = match tenant_provider(&state, &tenant, &provider_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return page(StatusCode::NOT_FOUND, NO_PROVIDER),
        Err(r) => return r,
    };
    let details = serde_json::json!({"provider": p.id, "issuer": p.issuer});
    let upstream = match upstream(&state, &headers, &req, &p).await {
        Ok(u) => u,
        Err(r) => {
            let anonymous = "anonymous".to_owned();
            let kind = federation::FEDERATION_START;
            event(
                &state, &headers, &tenant.id, kind, anonymous, "failure", details,
            )
            .await;
            return r;
        }
    };
    let started = upstream.start(&p.scopes);
    let binding = match crypto::random_secret() {
        Ok(b) => b,
        Err(e) => return unavailable(&e),
    };
    let now = now_ms();
    let row = FederationPendingRow {
        token_hash: crypto::sha256(started.state.as_bytes()),
        binding_hash: crypto::sha256(binding.as_bytes()),
        kind: KIND_AUTHORIZE.into(),
        tenant_id: tenant.id.clone(),
        provider_id: p.id.clone(),
        request: req.raw.clone(),
        nonce: Some(started.nonce),
        pkce_verifier: Some(started.pkce_verifier),
        user_id: None,
        identity: None,
        created_at: now,
        expires_at: now + PENDING_LIFETIME_MS,
    };
    if let Err(e) = state.store.insert_federation_pending(&row).await {
        return unavailable(&e);
    }
    let kind = federation::FEDERATION_START;
    event(
        &state,
        &headers,
        &tenant.id,
        kind,
        "anonymous".into(),
        "success",
        details,
    )
    .await;
    let mut response = redirect(&started.url);
    let lifetime = u64::try_from(PENDING_LIFETIME_MS / 1000).unwrap_or(600);
    if let Some(c) = set_cookie(&state, FEDERATION_COOKIE, &binding, "Lax", lifetime) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The security event of a sign-in the provider did not complete.
async fn sign_in_failed(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &TenantRow,
    p: &ProviderRow,
    reason: String,
) {
    let details = serde_json::json!({"provider": p.id, "issuer": p.issuer, "reason": reason});
    let kind = federation::FEDERATION_SIGN_IN;
    event(
        state,
        headers,
        &tenant.id,
        kind,
        "anonymous".into(),
        "failure",
        details,
    )
    .await;
}

/// `GET /federation/{provider}/callback?code&state` (or `error`): back from the provider.
pub async fn callback(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q.get("state").map(String::as_str).unwrap_or("");
    let row = match state
        .store
        .take_federation_pending(&crypto::sha256(token.as_bytes()), now_ms())
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return page(StatusCode::BAD_REQUEST, FEDERATION_EXPIRED),
        Err(e) => return unavailable(&e),
    };
    let binding = crypto::sha256(
        cookie_value(&headers, FEDERATION_COOKIE)
            .unwrap_or("")
            .as_bytes(),
    );
    if row.kind != KIND_AUTHORIZE
        || row.provider_id != provider_id
        || !bool::from(binding.ct_eq(&row.binding_hash))
    {
        tracing::info!("provider callback refused: not this browser's sign-in");
        return page(StatusCode::BAD_REQUEST, FEDERATION_EXPIRED);
    }
    let req = match parse_request(&state, &row.request).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let tenant = match request_tenant(&state, &req).await {
        Ok(Some(t)) if t.id == row.tenant_id => t,
        Ok(_) => return page(StatusCode::BAD_REQUEST, FEDERATION_EXPIRED),
        Err(r) => return r,
    };
    let p = match tenant_provider(&state, &tenant, &row.provider_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return page(StatusCode::NOT_FOUND, NO_PROVIDER),
        Err(r) => return r,
    };
    let (Some(code), None) = (q.get("code"), q.get("error")) else {
        let error: String = q
            .get("error")
            .map_or("no code", String::as_str)
            .chars()
            .take(64)
            .collect();
        sign_in_failed(
            &state,
            &headers,
            &tenant,
            &p,
            format!("the provider answered {error}"),
        )
        .await;
        let message = format!(
            "{} did not sign you in. Start again, or sign in with your password.",
            p.name
        );
        return login_page(
            &state,
            &headers,
            &req,
            Some(message.as_str()),
            StatusCode::BAD_REQUEST,
        );
    };
    let upstream = match upstream(&state, &headers, &req, &p).await {
        Ok(u) => u,
        Err(r) => {
            sign_in_failed(&state, &headers, &tenant, &p, "discovery failed".into()).await;
            return r;
        }
    };
    let verifier = row.pkce_verifier.as_deref().unwrap_or("");
    let nonce = row.nonce.as_deref().unwrap_or("");
    let cache = &state.provider_metadata;
    let identity = match upstream.finish(cache, &p, code, verifier, nonce).await {
        Ok(i) => i,
        Err(e) => {
            sign_in_failed(&state, &headers, &tenant, &p, e.to_string()).await;
            return failed(&state, &headers, &req, &p, &e);
        }
    };
    super::federation_link::land(&state, &headers, &req, &tenant, &p, identity).await
}

/// `GET /federation/discover?request&email`: home-realm discovery, to the provider of the
/// tenant that claims the address's domain.
pub async fn discover(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let raw = q.get("request").map(String::as_str).unwrap_or("");
    let req = match parse_request(&state, raw).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let email = q.get("email").map(String::as_str).unwrap_or("");
    let tenant = match request_tenant(&state, &req).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let providers = match &tenant {
        Some(t) => match state.store.enabled_providers(&t.id).await {
            Ok(p) => p,
            Err(e) => return unavailable(&e),
        },
        None => Vec::new(),
    };
    match federation::home_realm(&providers, email) {
        Some(p) => redirect(&format!(
            "{}federation/{}/start?{}",
            state.config.issuer, p.id, req.raw
        )),
        None => login_page(
            &state,
            &headers,
            &req,
            Some(
                "No sign-in provider of this tenant serves this address. Sign in with your password.",
            ),
            StatusCode::OK,
        ),
    }
}

/// Where a signed-out browser goes next to end its session at the provider it signed in
/// through (OpenID Connect RP-Initiated Logout at the provider's `end_session_endpoint`, with
/// our `client_id`): best effort, `None` when the session did not sign in through a provider,
/// the provider has no such endpoint, or cannot be reached.
pub(crate) async fn upstream_logout(
    state: &AppState,
    session: &crate::store::users::SessionRow,
) -> Option<String> {
    if !session.amr.split(' ').any(|m| m == "fed") {
        return None;
    }
    let tenant = session.tenant_id.as_deref()?;
    let links = state
        .store
        .federated_identities_of_user(&session.user_id, Some(tenant))
        .await
        .ok()?;
    let last = links.iter().max_by_key(|l| l.last_used_at)?;
    let p = state
        .store
        .provider(tenant, &last.provider_id)
        .await
        .ok()
        .flatten()
        .filter(|p| p.enabled)?;
    let callback = format!("{}federation/{}/callback", state.config.issuer, p.id);
    let cache = &state.provider_metadata;
    let upstream = federation::discover(cache, &p, None, &callback, state.config.dev_mode)
        .await
        .ok()?;
    let mut url = url::Url::parse(upstream.end_session_endpoint.as_deref()?).ok()?;
    url.query_pairs_mut().append_pair("client_id", &p.client_id);
    Some(url.to_string())
}
