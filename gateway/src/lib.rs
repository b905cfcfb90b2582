//! `tansu-gateway` — the single ingress: TLS termination, routing by path prefix, tenant
//! resolution and `X-Tansu-Tenant` injection (never trusted from clients), forwarded headers,
//! request ids, rate limiting.
//!
//! Skeleton: the contract the dev stack builds on (config, `serve`, `serve_on`). The proxy
//! lands with issue #5.
#![forbid(unsafe_code)]

use std::future::Future;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tansu_shared::config::Validate;
use tokio::net::TcpListener;

/// One route: requests whose path starts with `prefix` go to one of `upstreams`, with the
/// prefix stripped (`/identity/.well-known/jwks` → `{upstream}/.well-known/jwks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub prefix: String,
    pub upstreams: Vec<String>,
}

/// The `[gateway]` section of the platform config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTPS listener.
    pub listen_https: String,
    /// Plain-HTTP listener that redirects to HTTPS (none when empty).
    pub listen_http: String,
    /// PEM certificate chain and private key.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Development mode: no HSTS.
    pub dev_mode: bool,
    pub routes: Vec<Route>,
}

impl Default for Config {
    fn default() -> Self {
        let route = |prefix: &str, port: u16| Route {
            prefix: prefix.into(),
            upstreams: vec![format!("http://127.0.0.1:{port}")],
        };
        Self {
            listen_https: "127.0.0.1:8443".into(),
            listen_http: "127.0.0.1:8080".into(),
            tls_cert: PathBuf::from(".tansu/tls/cert.pem"),
            tls_key: PathBuf::from(".tansu/tls/key.pem"),
            dev_mode: false,
            routes: vec![
                route("/identity", 7001),
                route("/db", 7002),
                route("/storage", 7003),
                route("/dashboard", 7004),
            ],
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listen_https.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "listen_https: not host:port: {:?}",
                self.listen_https
            ));
        }
        for r in &self.routes {
            if !r.prefix.starts_with('/') || r.prefix.len() < 2 || r.prefix.ends_with('/') {
                problems.push(format!(
                    "routes: prefix {:?} must look like \"/name\"",
                    r.prefix
                ));
            }
            if r.upstreams.is_empty() {
                problems.push(format!("routes: {} has no upstreams", r.prefix));
            }
        }
        problems
    }
}

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
    serve_on(https, http, config, shutdown).await
}

/// Serves on already bound listeners (HTTPS, and optionally the HTTP redirector).
pub async fn serve_on(
    https: TcpListener,
    http: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = (https, http, config, shutdown);
    anyhow::bail!("the gateway proxy is not implemented yet")
}
