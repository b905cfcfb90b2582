//! The gateway's configuration: listeners, routes, tenant resolution, rate limits, protection
//! limits and upstream settings, with their defaults and validation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tansu_shared::config::{Secret, Validate};

use crate::{forwarding, surface, tenant, upstream};

mod limits;

pub use limits::*;

/// One route: requests whose path starts with `prefix` go to one of `upstreams`, with the
/// prefix stripped (`/identity/.well-known/jwks` → `{upstream}/.well-known/jwks`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub prefix: String,
    pub upstreams: Vec<String>,
}

/// Per-route options beyond the target (kept apart from [`Route`] so a route stays a plain
/// prefix → upstreams pair). Settings whose prefix names no route are ignored (the defaults
/// carry settings for `/storage`, which a stack without storage does not route).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RouteSettings {
    /// The route prefix these settings apply to.
    pub prefix: String,
    /// Largest request body accepted on this route (413 above); default `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Verify bearer tokens at the gateway before they reach the service.
    pub verify_tokens: Option<TokenCheck>,
}

/// Where the gateway gets the keys to check tokens for one route.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TokenCheck {
    /// The exact issuer (`https://<host>/identity/`).
    pub issuer: String,
    /// The audience the route's service requires (`tansu.db`, …).
    pub audience: String,
    /// The issuer's metadata on an internal address (optional).
    pub discovery_url: Option<String>,
    /// The JWKS directly (skips discovery; optional).
    pub jwks_uri: Option<String>,
}

/// A public path answered by another public path: a request for `path` (exactly, one trailing
/// `/` ignored) is handled as one for `to`, query kept. For the names standards place at the
/// host root (RFC 8414 §3 inserts `/.well-known/oauth-authorization-server` before the issuer's
/// path), so the gateway knows them as configuration, not as a service's API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    pub path: String,
    pub to: String,
}

/// A tenant known to the config-backed directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TenantEntry {
    /// The DNS label / path segment (`acme`).
    pub slug: String,
    /// The tenant id tokens carry in `tid` and the gateway injects in `X-Tansu-Tenant`.
    pub id: String,
    pub suspended: bool,
    /// Browser origins allowed to call the tenant's APIs (`cors` rules with `origins = "tenant"`).
    pub allowed_origins: Vec<String>,
}

/// identity's tenant directory: `GET {identity_url}admin/tenant-directory/{id or slug}` with a
/// client-credentials token (scope `tenants.read`) from `{identity_url}connect/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantDirectoryConfig {
    /// identity's internal base URL, ending in '/'.
    pub identity_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Read the secret from this file's first line instead (when `client_secret` is empty),
    /// at the first token request.
    pub client_secret_file: Option<PathBuf>,
    /// Longest wait for one lookup before the directory counts as unreachable.
    pub timeout_ms: u64,
}

impl Default for TenantDirectoryConfig {
    fn default() -> Self {
        Self {
            identity_url: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: None,
            timeout_ms: 2_000,
        }
    }
}

/// Upstream pool and health checking.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub connect_timeout_ms: u64,
    /// Active `/health/ready` probe of every upstream.
    pub health_interval_ms: u64,
    pub health_timeout_ms: u64,
    /// How long an upstream that refused a connection is skipped (passive ejection).
    pub eject_ms: u64,
    pub pool_idle_timeout_ms: u64,
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            health_interval_ms: 5_000,
            health_timeout_ms: 2_000,
            eject_ms: 10_000,
            pool_idle_timeout_ms: 90_000,
            pool_max_idle_per_host: 128,
        }
    }
}

/// The `[gateway]` section of the platform config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTPS listener.
    pub listen_https: String,
    /// Plain-HTTP listener that redirects to HTTPS (none when empty; it proxies instead only
    /// with [`Parts::plain_http_proxy`]).
    pub listen_http: String,
    /// PEM certificate chain and private key.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Development mode: no HSTS.
    pub dev_mode: bool,
    pub routes: Vec<Route>,
    /// How often the certificate files are checked for a change (SIGHUP reloads at once).
    pub tls_reload_interval_ms: u64,
    /// The HTTPS port named in redirects (default: the HTTPS listener's port).
    pub public_https_port: Option<u16>,
    /// `{tenant}.{base_domain}` hosts carry the tenant in the subdomain.
    pub base_domain: Option<String>,
    /// The config-backed tenant directory. `None`: every well-formed slug is an active tenant
    /// whose id is the slug (development, until identity serves the tenant directory).
    pub tenants: Option<Vec<TenantEntry>>,
    /// How long a tenant lookup is cached (a suspension takes effect within this bound).
    pub tenant_cache_ms: u64,
    /// While the tenant directory is unreachable, a cached answer is still served for this long
    /// past its `tenant_cache_ms`; after that the tenant's requests answer 503.
    pub tenant_stale_ms: u64,
    /// identity's tenant directory (production and the dev stack). Without it the
    /// config-backed `tenants` list, or the open directory when that is absent, decides.
    pub tenant_directory: Option<TenantDirectoryConfig>,
    /// Listener for the gateway's own `/metrics` (and `/health/live`), never proxied and
    /// never reachable through the public listeners; empty: none.
    pub listen_internal: String,
    /// Paths of the routed services that are never forwarded (404 like an unrouted path):
    /// `*/path` is that path on every route, `/prefix/path` one route's. Each covers what lies
    /// below it, compared in canonical form ignoring case ([`surface`]). Setting the list
    /// replaces the defaults.
    pub internal_paths: Vec<String>,
    /// Threads serving connections, each with its own single-threaded runtime and upstream
    /// pool (a request never changes threads); 0: one per CPU.
    pub workers: usize,
    /// Peers (IP or CIDR) whose `X-Forwarded-*`/`Forwarded` headers are believed.
    pub trusted_proxies: Vec<String>,
    pub route_settings: Vec<RouteSettings>,
    /// Public paths answered as other paths (see [`Alias`]); setting the list replaces the
    /// defaults (identity's discovery documents and WebFinger at the host root).
    pub aliases: Vec<Alias>,
    /// Cross-origin access per path (see [`crate::cors`]); setting the list replaces the
    /// defaults. A path under no rule answers every CORS preflight 403.
    pub cors: Vec<crate::cors::CorsRule>,
    pub rate_limit: RateLimitConfig,
    pub limits: Limits,
    pub upstream: UpstreamConfig,
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
            tls_reload_interval_ms: 5_000,
            public_https_port: None,
            base_domain: None,
            tenants: None,
            tenant_cache_ms: 5_000,
            tenant_stale_ms: 60_000,
            tenant_directory: None,
            listen_internal: "127.0.0.1:9464".into(),
            internal_paths: vec![
                // Prometheus scrapes each service on its own listener.
                "*/metrics".into(),
                // The checks' error texts; the gateway's `/health` is the public report.
                "*/health/ready".into(),
                // Called by the gateway and the services on identity's internal address.
                "/identity/admin/tenant-directory".into(),
                "/identity/admin/security-events/ingest".into(),
            ],
            workers: 0,
            trusted_proxies: Vec::new(),
            route_settings: vec![RouteSettings {
                prefix: "/storage".into(),
                max_body_bytes: Some(5 * 1024 * 1024 * 1024),
                verify_tokens: None,
            }],
            aliases: [
                (
                    "/.well-known/oauth-authorization-server/identity",
                    "/identity/.well-known/oauth-authorization-server",
                ),
                (
                    "/.well-known/openid-configuration/identity",
                    "/identity/.well-known/openid-configuration",
                ),
                ("/.well-known/webfinger", "/identity/.well-known/webfinger"),
            ]
            .into_iter()
            .map(|(path, to)| Alias {
                path: path.into(),
                to: to.into(),
            })
            .collect(),
            cors: crate::cors::default_rules(),
            rate_limit: RateLimitConfig::default(),
            limits: Limits::default(),
            upstream: UpstreamConfig::default(),
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
        if !self.listen_http.is_empty() && self.listen_http.parse::<std::net::SocketAddr>().is_err()
        {
            problems.push(format!(
                "listen_http: not host:port: {:?}",
                self.listen_http
            ));
        }
        for r in &self.routes {
            if !r.prefix.starts_with('/') || r.prefix.len() < 2 || r.prefix.ends_with('/') {
                problems.push(format!(
                    "routes: prefix {:?} must look like \"/name\"",
                    r.prefix
                ));
            }
            if r.prefix == "/health" || r.prefix == "/t" {
                problems.push(format!("routes: prefix {:?} is reserved", r.prefix));
            }
            if r.upstreams.is_empty() {
                problems.push(format!("routes: {} has no upstreams", r.prefix));
            }
            for u in &r.upstreams {
                if let Err(e) = upstream::Upstream::parse(u) {
                    problems.push(format!("routes: {}: {e}", r.prefix));
                }
            }
        }
        for p in &self.trusted_proxies {
            if forwarding::IpRange::parse(p).is_none() {
                problems.push(format!("trusted_proxies: not an IP or CIDR: {p:?}"));
            }
        }
        if let Some(d) = &self.base_domain
            && (d.is_empty() || d.starts_with('.') || d.ends_with('.'))
        {
            problems.push(format!("base_domain: {d:?} must look like \"example.com\""));
        }
        for t in self.tenants.iter().flatten() {
            if !tenant::is_valid_slug(&t.slug) || !tenant::is_valid_id(&t.id) {
                problems.push(format!("tenants: bad slug or id in {t:?}"));
            }
        }
        // An alias whose target no route serves answers 404 like any unrouted path (the
        // defaults name identity's, which a gateway without identity does not route).
        for a in &self.aliases {
            if !surface::is_valid_path_rule(&a.path) || !surface::is_valid_path_rule(&a.to) {
                problems.push(format!("aliases: {a:?}: two paths like \"/.well-known/x\""));
            }
        }
        problems.extend(crate::cors::validate(&self.cors));
        let rl = &self.rate_limit;
        let buckets = [rl.per_ip, rl.per_tenant, rl.registration.bucket()]
            .into_iter()
            .chain(rl.strict.iter().map(|s| s.bucket));
        for b in buckets {
            if b.burst == 0 || b.replenish_ms == 0 {
                problems.push("rate_limit: burst and replenish_ms must be > 0".into());
            }
        }
        for p in (rl.strict.iter().map(|s| &s.path_prefix)).chain(&rl.registration.paths) {
            if !surface::is_valid_path_rule(p) {
                problems.push(format!(
                    "rate_limit: path {p:?} must look like \"/identity/login\" (no trailing '/', '//', '.', '%', ';')"
                ));
            }
        }
        if !(16..=128).contains(&rl.ipv6_prefix) {
            problems.push("rate_limit.ipv6_prefix: between 16 and 128".into());
        }
        for p in &self.internal_paths {
            if !surface::is_valid_internal_rule(p) {
                problems.push(format!(
                    "internal_paths: {p:?} must look like \"*/metrics\" or \"/identity/admin/x\""
                ));
            }
        }
        if !self.rate_limit.redis_url.is_empty()
            && redis::Client::open(self.rate_limit.redis_url.expose()).is_err()
        {
            // The URL may hold a password: name the key, not the value.
            problems.push("rate_limit.redis_url: not a redis:// URL".into());
        }
        // Durations are added to clocks: keep them representable (at most a week).
        const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;
        let l = &self.limits;
        let u = &self.upstream;
        for (name, ms) in [
            ("tls_reload_interval_ms", self.tls_reload_interval_ms),
            ("tenant_cache_ms", self.tenant_cache_ms),
            ("tenant_stale_ms", self.tenant_stale_ms),
            (
                "rate_limit.redis_timeout_ms",
                self.rate_limit.redis_timeout_ms,
            ),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.idle_timeout_ms", l.idle_timeout_ms),
            ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
            (
                "limits.tls_handshake_timeout_ms",
                l.tls_handshake_timeout_ms,
            ),
            ("upstream.connect_timeout_ms", u.connect_timeout_ms),
            ("upstream.health_interval_ms", u.health_interval_ms),
            ("upstream.health_timeout_ms", u.health_timeout_ms),
            ("upstream.eject_ms", u.eject_ms),
            ("upstream.pool_idle_timeout_ms", u.pool_idle_timeout_ms),
        ] {
            if ms == 0 || ms > WEEK_MS {
                problems.push(format!("{name}: between 1 and {WEEK_MS}"));
            }
        }
        let buckets_ms = [
            rl.per_ip.replenish_ms,
            rl.per_tenant.replenish_ms,
            rl.registration.replenish_ms,
        ]
        .into_iter()
        .chain(rl.strict.iter().map(|s| s.bucket.replenish_ms));
        if buckets_ms.into_iter().any(|ms| ms > WEEK_MS) {
            problems.push(format!("rate_limit: replenish_ms at most {WEEK_MS}"));
        }
        if let Some(d) = &self.tenant_directory {
            let url_ok = url::Url::parse(&d.identity_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.path().ends_with('/'));
            if !url_ok {
                problems.push("tenant_directory.identity_url: an http(s) URL ending in '/'".into());
            }
            if d.client_id.is_empty()
                || (d.client_secret.is_empty() && d.client_secret_file.is_none())
            {
                problems.push(
                    "tenant_directory: client_id and client_secret (or client_secret_file) are required"
                        .into(),
                );
            }
            if d.timeout_ms == 0 || d.timeout_ms > 60_000 {
                problems.push("tenant_directory.timeout_ms: between 1 and 60000".into());
            }
        }
        if !self.listen_internal.is_empty()
            && self
                .listen_internal
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            problems.push(format!(
                "listen_internal: not host:port: {:?}",
                self.listen_internal
            ));
        }
        if self.workers > 256 {
            problems.push("workers: at most 256 (0: one per CPU)".into());
        }
        if self.limits.max_header_bytes < 8192 {
            problems.push("limits.max_header_bytes: at least 8192".into());
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_bad_values_are_named() {
        assert_eq!(Config::default().validate(), Vec::<String>::new());
        let mut c = Config::default();
        c.limits.idle_timeout_ms = u64::MAX;
        c.limits.max_header_bytes = 100;
        c.trusted_proxies = vec!["nope".into()];
        c.routes[0].upstreams = vec!["https://127.0.0.1:1".into()];
        c.internal_paths.push("/identity/metrics/".into());
        c.rate_limit
            .registration
            .paths
            .push("/identity//register".into());
        c.rate_limit.ipv6_prefix = 0;
        c.aliases.push(Alias {
            path: "/.well-known/x/".into(),
            to: "identity/x".into(),
        });
        c.cors[0].credentials = true;
        let problems = c.validate().join("\n");
        assert!(problems.contains("aliases"), "{problems}");
        assert!(problems.contains("credentials"), "{problems}");
        assert!(problems.contains("internal_paths"), "{problems}");
        assert!(problems.contains("//register"), "{problems}");
        assert!(problems.contains("ipv6_prefix"), "{problems}");
        assert!(problems.contains("limits.idle_timeout_ms"), "{problems}");
        assert!(problems.contains("max_header_bytes"), "{problems}");
        assert!(problems.contains("trusted_proxies"), "{problems}");
        assert!(problems.contains("http://"), "{problems}");
    }
}
