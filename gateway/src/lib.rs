//! `tansu-gateway` — the single ingress of the platform.
//!
//! What it does to every request, in order (see [`proxy`]):
//! 1. terminates TLS (rustls, HTTP/1.1 and HTTP/2 by ALPN; the certificate is reloaded from its
//!    PEM files without a restart, [`tls`]);
//! 2. gives the request an id (`X-Request-Id`, kept when well-formed) and a W3C `traceparent`;
//! 3. answers a service's internal paths (`/metrics`, `/health/ready`, …: `internal_paths`) 404
//!    like an unrouted path, whatever their spelling ([`surface`]); rate-limits it per client
//!    (IPv4 address, IPv6 /64), more strictly on identity's sign-in and registration endpoints,
//!    with a platform-wide budget for registrations, and per tenant for requests whose token the
//!    gateway verified ([`ratelimit`]);
//! 4. resolves the tenant — subdomain, then `/t/{tenant}/…`, then the bearer token's `tid` —
//!    and checks it against the [`tenant::TenantDirectory`]; any inbound `X-Tansu-Tenant` is
//!    removed and the resolved one injected ([`tenant`]);
//! 5. routes by longest path prefix, strips the prefix and forwards to one of the route's
//!    upstreams (round-robin over the healthy ones, [`upstream`]) with hop-by-hop headers removed
//!    and `X-Forwarded-*`/`Forwarded` set from the connection ([`forwarding`]), streaming both
//!    bodies.
//!
//! Around these steps: public paths configured as aliases of others (`aliases`: identity's
//! discovery documents at the host root, RFC 8414 §3) are handled as those paths, and
//! cross-origin requests are decided per path and tenant ([`cors`]): preflights answered by the
//! gateway, not-allowed origins refused before the service, `Access-Control-*` set by the
//! gateway alone.
//!
//! Failures the gateway answers itself are RFC 9457 problem+json carrying the request id.
//!
//! The gateway's own paths: `GET /health` (every upstream's `/health/ready`, 200 only when all
//! are ready) and `GET /health/live`. Protection: header size, per-route body size (413),
//! TLS-handshake, header-read (slowloris) and idle timeouts, upstream answer timeout (504) and
//! a cap on open connections per listener.
//!
//! Threads: connections are served by `workers` threads (one per CPU by default), each with a
//! single-threaded runtime and its own upstream connection pool, all accepting from the same
//! listening sockets; a new connection is served by the worker with the fewest open ones
//! (handed over once if another worker accepted it, `src/balance.rs`), and a request is handled
//! start to end on one thread (no cross-thread hand-off to a pooled upstream connection). Shared state (routes and upstream health, the
//! tenant cache, rate-limit buckets, the certificate) is behind `Arc`s and atomics. Background
//! work (health probes, certificate reload, the internal listener) runs on the caller's runtime.
//!
//! The gateway's own metrics are served at `/metrics` on the internal listener
//! (`listen_internal`) only; on the public listeners `/metrics` is an ordinary unrouted path,
//! and the services' own `/metrics` (`/identity/metrics`, …) are internal paths.
//!
//! Replaceable parts ([`Parts`], [`serve_with`]): the tenant directory (identity's tenant
//! directory when `tenant_directory` is configured, [`tenant::HttpDirectory`]; else the
//! config-backed list or the open directory) and the rate limiter (in memory, or [`ratelimit::RedisLimiter`]
//! when `rate_limit.redis_url` is set, so replicas share one budget).
#![forbid(unsafe_code)]

mod accepted;
mod balance;
pub mod config;
pub mod connections;
pub mod cors;
pub mod forwarding;
pub mod health;
mod idle;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
mod redirect;
mod server;
pub mod surface;
pub mod tenant;
pub mod tls;
pub mod trace;
pub mod upstream;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::{
    Alias, Bucket, Config, Limits, RateLimitConfig, RegistrationLimit, Route, RouteSettings,
    StrictLimit, TenantDirectoryConfig, TenantEntry, TokenCheck, UpstreamConfig,
};

/// Serves on the configured addresses until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let https = tansu_shared::server::bind(&config.listen_https).await?;
    let http = if config.listen_http.is_empty() {
        None
    } else {
        Some(tansu_shared::server::bind(&config.listen_http).await?)
    };
    let internal_listener = if config.listen_internal.is_empty() {
        None
    } else {
        Some(tansu_shared::server::bind(&config.listen_internal).await?)
    };
    let parts = Parts {
        internal_listener,
        ..Parts::default()
    };
    serve_with(https, http, config, parts, shutdown).await
}

/// Serves on already bound listeners (HTTPS, and optionally the HTTP redirector).
pub async fn serve_on(
    https: TcpListener,
    http: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with(https, http, config, Parts::default(), shutdown).await
}

/// Replaceable parts of the gateway: where tenants are looked up and how budgets are kept.
/// `None` uses the config-backed directory and the in-memory limiter.
#[derive(Default)]
pub struct Parts {
    pub tenant_directory: Option<std::sync::Arc<dyn tenant::TenantDirectory>>,
    /// Used when `rate_limit.enabled` (for example a budget shared across replicas).
    pub rate_limiter: Option<std::sync::Arc<dyn ratelimit::RateLimiter>>,
    /// The plain-HTTP listener proxies exactly like the HTTPS one (`X-Forwarded-Proto: http`)
    /// instead of redirecting. For the benchmark (`tansu-bench gateway` compares plain HTTP
    /// with nginx) and for embedding behind a TLS-terminating hop on a private network.
    /// Deliberately not a config-file setting: a deployment cannot switch it on by accident.
    pub plain_http_proxy: bool,
    /// Where `/metrics` is served (the config's `listen_internal` is bound only by [`serve`]).
    pub internal_listener: Option<TcpListener>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts")
            .field("tenant_directory", &self.tenant_directory.is_some())
            .field("rate_limiter", &self.rate_limiter.is_some())
            .field("plain_http_proxy", &self.plain_http_proxy)
            .field("internal_listener", &self.internal_listener)
            .finish()
    }
}

/// [`serve_on`] with replaced parts.
pub async fn serve_with(
    https: TcpListener,
    http: Option<TcpListener>,
    config: Config,
    parts: Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    server::run(https, http, config, parts, shutdown).await
}
