//! `tansu-identity` — the platform's OIDC/OAuth2 issuer, tenants and users, MFA, the encrypted
//! per-tenant vault and the hash-chained security-event log.
//!
//! Where things are (see ARCHITECTURE.md for the map):
//! - [`routes`]: every route of the service in one table;
//! - [`web`]: the browser flows (the sign-in request, password, steps, sign-in through a
//!   tenant's external providers, consent, logout, the account pages, registration), with one page/cookie/CSRF module;
//! - [`admin`]: the JSON admin API, one module per resource;
//! - [`oauth`]: the protocol endpoints (token, introspection, revocation, userinfo, discovery
//!   and JWKS);
//! - [`http`]: what every handler shares: the [`http::Caller`] extractor, the authorization
//!   [`http::policy`], bearer-token verification and request metadata;
//! - the domain modules ([`keys`], [`crypto`], [`mfa`], [`passwords`], [`events`], [`vault`],
//!   [`tenants`], [`roles`], [`scopes`], [`clients`], [`providers`], [`federation`], [`registration`], …) and
//!   [`store`], the one repository layer over SQLite (embedded default) and PostgreSQL. They
//!   import nothing from the wings.
//!
//! Every URL the service publishes is built from the configured issuer string; the routes
//! themselves sit at the root, so the gateway can strip its `/identity` prefix.
#![forbid(unsafe_code)]

// Wings: HTTP handlers.
pub mod admin;
pub mod http;
pub mod oauth;
pub mod routes;
pub mod web;

// Domain.
pub mod account;
pub mod cache;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod devices;
pub mod event_log;
pub mod events;
pub mod federation;
pub mod keys;
pub mod mail;
pub mod master_keys;
pub mod messages;
pub mod mfa;
pub mod paging;
pub mod passkeys;
pub mod passwords;
pub mod providers;
pub mod provisioning;
pub mod registration;
pub mod roles;
pub mod scopes;
pub mod stats;
pub mod store;
pub mod tenants;
pub mod vault;
pub mod verifications;

mod seed;
mod state;

use std::future::Future;

use axum::Router;
use tansu_shared::health::Health;
use tokio::net::TcpListener;

pub use config::Config;
pub use routes::routes;
pub use state::{AppState, DEV_ADMIN_EMAIL, DEV_CLIENT_ID, Services};

use crate::store::now_ms;

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let store = state.store.clone();
    let keys = state.keys.clone();
    let health = Health::new("identity")
        .check("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .check("signing keys", move || {
            let ready = keys
                .ring()
                .signer(keys.policy().algorithms[0], now_ms())
                .is_some();
            async move {
                if ready {
                    Ok(())
                } else {
                    Err("no current signing key".to_owned())
                }
            }
        });
    let routes = routes()
        .into_router()
        .route("/openapi.json", axum::routing::get(admin::openapi::json))
        .route("/openapi", axum::routing::get(admin::openapi::page))
        .with_state(state)
        .merge(health.router())
        .fallback(tansu_shared::problem::not_found_fallback);
    tansu_shared::server::with_common_layers("identity", routes)
}

/// Serves on `config.listen` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tansu_shared::server::bind(&config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (the dev stack and tests bind first).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tansu_shared::install_crypto_provider();
    let state = AppState::new(config).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        issuer = %state.config.issuer,
        store = state.store.dialect(),
        "identity listening"
    );
    let maintenance = state.spawn_maintenance();
    if state.config.master_key_rewrap_on_start {
        // Rows still under a previous key move under the current one (no-op otherwise).
        let _ = state.spawn_rewrap("system".into());
    }
    let stats_flusher = state.stats.spawn_flusher(state.store.clone());
    let (store, stats) = (state.store.clone(), state.stats.clone());
    let result = tansu_shared::server::serve(listener, router(state), shutdown).await;
    maintenance.abort();
    stats_flusher.abort();
    if let Err(e) = stats.flush(&store).await {
        tracing::warn!(error = %e, "token statistics flush failed");
    }
    store.close().await;
    result?;
    Ok(())
}
