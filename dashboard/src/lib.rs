//! `tansu-dashboard` — The admin console (Leptos, server-side rendered).
//!
//! Every page is rendered on the server with Leptos (`view!` → HTML) and served by axum; every
//! action is a plain HTML form with a CSRF token, so nothing needs WebAssembly or JavaScript.
//! Sign-in is an OIDC relying-party flow against identity (code + PKCE, confidential client);
//! sessions live on the server, the browser only holds a random session id in a `Secure`,
//! `HttpOnly`, `SameSite=Lax` cookie scoped to the dashboard's public path.
//!
//! The service serves `/`; the gateway strips `/dashboard`. Every link, form action and redirect
//! is built from the configured [`Config::public_url`].
#![forbid(unsafe_code)]

mod action;
mod api;
mod error;
mod extract;
mod frame;
mod http;
mod oidc;
mod page;
mod pages;
mod scope;
mod session;
mod widgets;

#[cfg(test)]
mod router_tests;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use tansu_shared::config::{Secret, Validate};
use tansu_shared::health::Health;
use tansu_shared::routes::Routes;
use tokio::net::TcpListener;

/// The `[dashboard]` section of the platform config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// The dashboard's public base URL (through the gateway), ending with `/`.
    pub public_url: String,
    /// The identity issuer (exact string, ending with `/`): discovery, sign-in and admin API.
    pub issuer: String,
    /// identity's own address (ending with `/`) for the dashboard's server-to-server calls:
    /// discovery, keys, the code exchange and the admin API. Empty: the issuer, through the
    /// gateway — where those calls all share the dashboard's one client-IP budget, which a
    /// flood of sign-in attempts from elsewhere could empty.
    pub identity_url: String,
    /// The gateway's aggregated health report, shown on the overview page.
    pub health_url: String,
    /// The dashboard's OIDC client (a confidential client at identity).
    pub client_id: String,
    /// The client secret; empty: read from `client_secret_file`.
    pub client_secret: Secret,
    /// A file holding the client secret (first line), read at each sign-in.
    pub client_secret_file: Option<PathBuf>,
    /// An extra PEM certificate to trust for calls to the issuer and the gateway (the dev
    /// stack's self-signed gateway certificate).
    pub ca_file: Option<PathBuf>,
    /// How long a dashboard session lasts at most (also bounded by the access token).
    pub session_lifetime_secs: u64,
    /// Redis for sessions shared by every replica (`redis://…`); empty: this process's memory.
    pub redis_url: String,
    /// 32 bytes, base64: seals sessions in Redis and pending sign-in cookies, the same on
    /// every replica. Empty: read from `session_key_file`; neither: a random key per process
    /// (one replica only; not allowed with `redis_url`).
    pub session_key: Secret,
    /// A file holding the session key (first line).
    pub session_key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7004".into(),
            public_url: "https://127.0.0.1:8443/dashboard/".into(),
            issuer: "https://127.0.0.1:8443/identity/".into(),
            identity_url: String::new(),
            health_url: "https://127.0.0.1:8443/health".into(),
            client_id: "tansu-dashboard".into(),
            client_secret: Secret::default(),
            client_secret_file: None,
            ca_file: None,
            session_lifetime_secs: 8 * 3600,
            redis_url: String::new(),
            session_key: Secret::default(),
            session_key_file: None,
        }
    }
}

/// A session key: 32 bytes in base64 (standard or URL-safe, padded or not).
fn parse_session_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(text))
        .ok()?;
    bytes.try_into().ok()
}

/// The configured session key, from `session_key` or `session_key_file`.
fn session_key(config: &Config) -> anyhow::Result<Option<[u8; 32]>> {
    let text = match (&config.session_key, &config.session_key_file) {
        (k, _) if !k.is_empty() => zeroize::Zeroizing::new(k.expose().to_owned()),
        (_, Some(path)) => zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("session_key_file {}: {e}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        _ => return Ok(None),
    };
    parse_session_key(&text)
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("session key: must be 32 bytes, base64"))
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Err(e) = self.listen.parse::<std::net::SocketAddr>() {
            v.push(format!("listen: {e}"));
        }
        for (name, value) in [("public_url", &self.public_url), ("issuer", &self.issuer)] {
            match url::Url::parse(value) {
                Ok(_) if !value.ends_with('/') => v.push(format!("{name}: must end with /")),
                Ok(u) if u.scheme() != "https" && u.scheme() != "http" => {
                    v.push(format!("{name}: must be http(s)"))
                }
                Ok(_) => {}
                Err(e) => v.push(format!("{name}: {e}")),
            }
        }
        if !self.identity_url.is_empty()
            && (!self.identity_url.ends_with('/') || url::Url::parse(&self.identity_url).is_err())
        {
            v.push("identity_url: a URL ending with /".into());
        }
        if url::Url::parse(&self.health_url).is_err() {
            v.push("health_url: not a URL".into());
        }
        if self.client_id.is_empty() {
            v.push("client_id: required".into());
        }
        if self.session_lifetime_secs < 60 {
            v.push("session_lifetime_secs: at least 60".into());
        }
        if !self.session_key.is_empty() && parse_session_key(self.session_key.expose()).is_none() {
            v.push("session_key: must be 32 bytes, base64".into());
        }
        if !self.redis_url.is_empty()
            && self.session_key.is_empty()
            && self.session_key_file.is_none()
        {
            v.push(
                "redis_url: sessions shared in Redis need session_key or session_key_file".into(),
            );
        }
        v
    }
}

/// Shared state of the service's handlers. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub(crate) http: reqwest::Client,
    pub(crate) sessions: session::Sessions,
    pub(crate) provider: Arc<oidc::ProviderCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state: the outgoing HTTP client (trusting `ca_file` if set) and an empty
    /// session store.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let problems = config.validate();
        anyhow::ensure!(
            problems.is_empty(),
            "dashboard configuration is invalid: {}",
            problems.join("; ")
        );
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // The OIDC client must not follow redirects (SSRF); nothing else needs them.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("ca_file {}: {e}", path.display()))?;
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Self {
            http: http.build()?,
            sessions: session::Sessions::new(
                Some(config.redis_url.as_str()).filter(|u| !u.is_empty()),
                session_key(&config)?,
            )?,
            config: Arc::new(config),
            provider: Arc::default(),
        })
    }

    /// Where the dashboard calls identity itself: `identity_url`, else the issuer.
    pub(crate) fn identity_base(&self) -> &str {
        if self.config.identity_url.is_empty() {
            &self.config.issuer
        } else {
            &self.config.identity_url
        }
    }

    /// The public base URL (ends with `/`).
    pub(crate) fn base(&self) -> &str {
        &self.config.public_url
    }

    /// A public URL for a service-relative path (`"keys"` → `…/dashboard/keys`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path.trim_start_matches('/'))
    }

    /// The cookie path: the public URL's path.
    pub(crate) fn cookie_path(&self) -> String {
        url::Url::parse(self.base())
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| "/".into())
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.base().starts_with("https:")
    }
}

/// Adds `Server-Timing: total;dur=<ms>` (the handler's time, identity's calls included) to
/// every answer: the page benchmark reads it, and a browser's developer tools show it.
async fn server_timing(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("total;dur={ms:.1}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}

/// Every route of the dashboard (health aside): one table, built from one table per page, so
/// a test can list every path (the authorization matrix checks each against
/// `docs/authorization.md`).
pub fn routes() -> Routes<AppState> {
    pages::routes()
}

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let routes = routes()
        .into_router()
        .with_state(state)
        .layer(axum::middleware::from_fn(server_timing))
        .merge(Health::new("dashboard").router())
        .fallback(tansu_shared::problem::not_found_fallback);
    tansu_shared::server::with_common_layers("dashboard", routes)
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
    tracing::info!(addr = %listener.local_addr()?, "dashboard listening");
    let state = AppState::new(config)?;
    tansu_shared::server::serve(listener, router(state), shutdown).await?;
    Ok(())
}
