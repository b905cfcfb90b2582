//! `tansu-shared` — the auth library every Tansu service uses.
//!
//! What lives here, and why in one crate: every service must verify access tokens, check scopes,
//! audiences and tenants, and answer failures in exactly the same standard shapes. Having one
//! implementation means one place to get the security-critical parts right:
//!
//! - [`admin_api`]: the request and response types of identity's admin API, for the server and
//!   the dashboard alike;
//! - [`auth`]: the JWKS-backed [`auth::Verifier`] (strict RFC 9068 checks), the axum extractors
//!   ([`auth::Principal`], [`auth::RequireScope`], [`auth::Tenant`]) and RFC 6750 bearer errors;
//! - [`token_source`]: a cached client-credentials token source for service-to-service calls;
//! - [`events`]: reporting security events (access denials) to identity, batched and retried;
//! - [`tenant_directory`]: a tenant's status (active, suspended, unknown) from identity's tenant
//!   directory, cached, for the accesses a service must re-check itself;
//! - [`origin`]: web origins as browsers send them (tenants' and clients' CORS allow-lists);
//! - [`problem`]: RFC 9457 `application/problem+json` errors;
//! - [`config`]: TOML + `TANSU_…` environment configuration, validated, secrets redacted;
//! - [`telemetry`]: `tracing`, OTLP export when configured, Prometheus `/metrics`;
//! - [`health`]: `/health/live` and `/health/ready`;
//! - [`server`]: the common middleware stack, serving and graceful shutdown;
//! - `openapi` (feature `openapi`): OpenAPI 3.1 documents of the services' APIs, built from
//!   their operation tables and the bodies' types;
//! - [`routes`]: a route table that remembers its paths (for the authorization matrix tests);
//! - `db` (feature `db`): the connection pool policy of the services that keep a database;
//! - `testing` (feature `testing`): in-process servers on ephemeral ports and the
//!   skip-or-require convention for suites that need PostgreSQL or Chromium.
#![forbid(unsafe_code)]

pub mod admin_api;
pub mod auth;
#[cfg(feature = "changes")]
pub mod changes;
pub mod clock;
pub mod config;
#[cfg(feature = "db")]
pub mod db;
pub mod events;
pub mod extract;
/// The fuzz targets' bodies (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod health;
pub mod ids;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod origin;
pub mod problem;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod tenant_directory;
pub mod token_source;

#[cfg(feature = "testing")]
pub mod testing;

pub use problem::Problem;

/// The header the gateway injects with the resolved tenant id. Never trusted from clients: the
/// gateway strips any inbound copy, and services compare it with the token's `tid`.
pub const TENANT_HEADER: &str = "x-tansu-tenant";

/// Installs the workspace's single rustls crypto provider (aws-lc-rs). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
