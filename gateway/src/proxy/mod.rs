//! The request path through the gateway. [`Gateway::handle`] answers every request; its
//! `forward` runs the steps of the crate docs in order, each a function of its own:
//!
//! 3. [`admission`]: the gateway's own paths, the services' internal paths (404 like an
//!    unrouted path), malformed targets, the tenant the host and path name, per-client budgets;
//! 4. [`resolve`]: the tenant — host or path, else the token's `tid` — checked against the
//!    directory and the token, and the tenant's budget;
//! 5. [`send`]: the route, the request as the service sees it, the upstream, the answer.
//!
//! (Steps 1 and 2, TLS and the request id, happen in `server` and in [`Gateway::handle`].)

mod admission;
#[doc(hidden)]
pub mod fuzzing;
mod resolve;
mod send;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tansu_shared::auth::{Verifier, VerifierConfig};
use tansu_shared::problem::Problem;

use crate::Config;
use crate::connections::Connections;
use crate::cors::{self, Cors, Kind, Origins};
use crate::forwarding::{self, Connection, REQUEST_ID, TrustedProxies};
use crate::ratelimit::{Decision, RateLimiter};
use crate::surface::{self, InternalPaths};
use crate::tenant::{self, CachedDirectory, TenantInfo};
use crate::upstream::{Clock, Pool};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the gateway sends or forwards: streamed, never collected.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Client = hyper_util::client::legacy::Client<HttpConnector, ProxyBody>;

static HSTS_VALUE: HeaderValue = HeaderValue::from_static("max-age=63072000; includeSubDomains");

pub fn empty_body() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn full_body(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

struct RouteEntry {
    /// The route's index in `Gateway::routes` (and in a worker's [`Connections`]).
    id: usize,
    prefix: String,
    /// `prefix` as the `X-Forwarded-Prefix` value (requests without a tenant path segment).
    prefix_header: Option<HeaderValue>,
    pool: Arc<Pool>,
    max_body: u64,
    verifier: Option<Verifier>,
}

/// Everything the request path needs; one per gateway, shared by every connection.
pub struct Gateway {
    routes: Vec<RouteEntry>,
    pub(crate) client: Client,
    directory: CachedDirectory,
    limiter: Option<Arc<dyn RateLimiter>>,
    strict_paths: Vec<String>,
    /// The paths whose unsafe requests spend the platform-wide registration budget.
    registration_paths: Vec<String>,
    ipv6_prefix: u8,
    /// Paths of the services that are never forwarded.
    internal: InternalPaths,
    /// Public paths handled as other paths (`aliases`).
    aliases: Vec<(String, String)>,
    cors: Cors,
    pub(crate) trusted: TrustedProxies,
    base_domain: Option<String>,
    hsts: bool,
    request_timeout: Duration,
    health_timeout: Duration,
    stats: crate::metrics::Stats,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field(
                "routes",
                &self.routes.iter().map(|r| &r.prefix).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

pub fn build_client(config: &Config) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_millis(
        config.upstream.connect_timeout_ms,
    )));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_millis(config.upstream.pool_idle_timeout_ms))
        .pool_max_idle_per_host(config.upstream.pool_max_idle_per_host)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

impl Gateway {
    /// Builds the gateway from a validated config. `limiter` replaces the in-memory one
    /// (`None` with rate limiting enabled builds the in-memory limiter).
    pub async fn new(
        config: &Config,
        directory: Arc<dyn tenant::TenantDirectory>,
        limiter: Option<Arc<dyn RateLimiter>>,
    ) -> anyhow::Result<Self> {
        let clock = Clock::new();
        let eject = Duration::from_millis(config.upstream.eject_ms);
        let mut routes = Vec::new();
        for r in &config.routes {
            let settings = config.route_settings.iter().find(|s| s.prefix == r.prefix);
            let verifier = match settings.and_then(|s| s.verify_tokens.as_ref()) {
                Some(check) => {
                    let mut vc = VerifierConfig::new(&check.issuer, &check.audience);
                    vc.discovery_url =
                        check.discovery_url.as_deref().map(str::parse).transpose()?;
                    vc.jwks_uri = check.jwks_uri.as_deref().map(str::parse).transpose()?;
                    Some(
                        Verifier::new(vc)
                            .await
                            .map_err(|e| anyhow::anyhow!("route {}: {e}", r.prefix))?,
                    )
                }
                None => None,
            };
            routes.push(RouteEntry {
                id: 0,
                prefix: r.prefix.clone(),
                prefix_header: HeaderValue::from_str(&r.prefix).ok(),
                pool: Arc::new(Pool::new(&r.upstreams, clock, eject).map_err(anyhow::Error::msg)?),
                max_body: settings
                    .and_then(|s| s.max_body_bytes)
                    .unwrap_or(config.limits.max_body_bytes),
                verifier,
            });
        }
        // Longest prefix first: the first match is the most specific route.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        for (id, r) in routes.iter_mut().enumerate() {
            r.id = id;
        }
        Ok(Self {
            routes,
            client: build_client(config),
            directory: CachedDirectory::new(
                directory,
                Duration::from_millis(config.tenant_cache_ms),
                Duration::from_millis(config.tenant_stale_ms),
                10_000,
            ),
            limiter,
            strict_paths: config
                .rate_limit
                .strict
                .iter()
                .map(|s| s.path_prefix.clone())
                .collect(),
            registration_paths: config.rate_limit.registration.paths.clone(),
            ipv6_prefix: config.rate_limit.ipv6_prefix,
            internal: InternalPaths::new(&config.routes, &config.internal_paths),
            aliases: (config.aliases.iter())
                .map(|a| (a.path.clone(), a.to.clone()))
                .collect(),
            cors: Cors::new(&config.cors),
            trusted: TrustedProxies::new(&config.trusted_proxies),
            base_domain: config.base_domain.as_ref().map(|d| d.to_ascii_lowercase()),
            hsts: !config.dev_mode,
            request_timeout: Duration::from_millis(config.limits.request_timeout_ms),
            health_timeout: Duration::from_millis(config.upstream.health_timeout_ms),
            stats: crate::metrics::Stats::default(),
        })
    }

    /// The tenant directory's cache (expired by pushed changes, see [`tansu_shared::changes`]).
    pub fn tenant_cache(&self) -> &CachedDirectory {
        &self.directory
    }

    /// A worker's own idle upstream connections (see [`Connections`]), per `config.upstream`.
    pub fn connections(&self, config: &Config) -> Connections {
        let u = &config.upstream;
        Connections::new(
            &self
                .routes
                .iter()
                .map(|r| r.pool.upstreams.len())
                .collect::<Vec<_>>(),
            Duration::from_millis(u.connect_timeout_ms),
            Duration::from_millis(u.pool_idle_timeout_ms),
            u.pool_max_idle_per_host,
        )
    }

    pub fn stats(&self) -> &crate::metrics::Stats {
        &self.stats
    }

    pub fn pools(&self) -> Vec<(String, Arc<Pool>)> {
        self.routes
            .iter()
            .map(|r| (r.prefix.clone(), r.pool.clone()))
            .collect()
    }

    /// The route serving `path`, and the path as its service sees it (the prefix stripped).
    fn route_for<'p>(&self, path: &'p str) -> Option<(&RouteEntry, &'p str)> {
        self.routes.iter().find_map(|r| {
            let rest = path.strip_prefix(r.prefix.as_str())?;
            if rest.is_empty() {
                Some((r, "/"))
            } else if rest.starts_with('/') {
                Some((r, rest))
            } else {
                None
            }
        })
    }

    /// Answers one request through the calling worker's upstream connections (`client` for
    /// the health aggregate's probes). Never fails: errors become problem+json responses.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        conn: &Connection,
        (client, conns): (&Client, &Connections),
    ) -> Response<ProxyBody> {
        let rid = forwarding::request_id(req.headers());
        let mut cors = cors::Outcome::default();
        let mut resp = match self
            .forward(req, conn, &rid, (client, conns), &mut cors)
            .await
        {
            Ok(r) => r,
            Err(p) => {
                // Never the headers or the query: they may carry credentials.
                tracing::debug!(status = p.status, request_id = ?rid, problem = %p.type_uri, "answered by the gateway");
                problem_response(p, &rid)
            }
        };
        self.stats.record(resp.status());
        cors.apply(resp.headers_mut());
        let h = resp.headers_mut();
        h.insert(REQUEST_ID.clone(), rid);
        if self.hsts {
            h.insert(header::STRICT_TRANSPORT_SECURITY, HSTS_VALUE.clone());
        }
        resp
    }

    /// The steps of the crate docs, 3 to 5, in order (see the module docs).
    async fn forward<'g>(
        &'g self,
        mut req: Request<Incoming>,
        conn: &Connection,
        rid: &HeaderValue,
        (client, conns): (&Client, &Connections),
        cors: &mut cors::Outcome<'g>,
    ) -> Result<Response<ProxyBody>, Problem> {
        // 3. The gateway's own paths (`/health`, `/health/live`).
        if let Some(resp) = self.own_path(&req, conn, client).await? {
            return Ok(resp);
        }
        self.apply_alias(&mut req);
        let upgrade = req.version() == Version::HTTP_11 && forwarding::wants_upgrade(req.headers());
        let inbound_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let admitted = self
            .admit(
                (&parts.method, &parts.uri, &mut parts.headers),
                upgrade,
                conn,
                rid,
                cors,
            )
            .await?;
        let (route, stripped, budget, span) = match admitted {
            Admitted::Answered(resp) => return Ok(resp),
            Admitted::Forward {
                route,
                path,
                budget,
                span,
                ..
            } => (route, path, budget, span),
        };
        let sent = self.send(
            conns,
            route,
            &parts.method,
            std::mem::take(&mut parts.headers),
            (stripped, parts.uri.query()),
            body,
        );
        let resp = match span {
            Some(span) => {
                use tracing::Instrument;
                let resp = sent.instrument(span.clone()).await;
                let status = resp
                    .as_ref()
                    .map_or_else(|p| p.status, |r| r.status().as_u16());
                span.record("http.response.status_code", status);
                resp?
            }
            None => sent.await?,
        };
        Ok(send::finish(resp, upgrade, inbound_upgrade, budget))
    }

    /// Steps 3 and 4, and step 5 up to the upstream: where the request goes and its headers as
    /// the service sees them (`headers` is rewritten), or the gateway's own answer (a
    /// preflight). Only the head: the body stays with the caller.
    async fn admit<'g, 'p>(
        &'g self,
        (method, uri, headers): (&Method, &'p Uri, &mut HeaderMap),
        upgrade: bool,
        conn: &Connection,
        rid: &HeaderValue,
        cors: &mut cors::Outcome<'g>,
    ) -> Result<Admitted<'g, 'p>, Problem> {
        let host = admission::requested_host(uri, headers);
        let cross_origin = cors::classify(method, headers, conn.proto, host.as_ref());
        let client_ip = self.trusted.client_ip(conn.peer.ip(), headers);

        // 3. Internal paths and malformed targets; the tenant the host and the path name.
        // The path as the most lenient service would read it, without its tenant segments:
        // what the path rules (internal paths, strict and registration budgets) compare with.
        let canonical = surface::canonical(uri.path());
        let public_path = surface::without_tenant(&canonical);
        let addressed = self
            .screen(uri.path(), public_path, host.as_ref(), client_ip)
            .await?;
        // 3. Per-client budgets, before any work that costs more than a map lookup.
        let budget = self.client_budgets(method, public_path, client_ip).await?;

        // 5. The route (and a declared body it cannot take).
        let (route, stripped) = self.route(addressed.path, headers)?;
        cors.rule = self.cors.rule_for(public_path);

        // 4. The tenant (for a preflight: its answer), and its budget.
        let tenant = self.resolve(route, headers, &addressed).await?;
        match &cross_origin {
            Kind::SameOrigin => {}
            Kind::Preflight(origin) => {
                return Self::preflight(cors, origin.as_deref(), &tenant, headers)
                    .map(Admitted::Answered);
            }
            Kind::CrossOrigin(origin) => Self::cross_origin(cors, origin.as_deref(), &tenant)?,
        }
        let budget = self.tenant_budget(&tenant, budget).await?;

        // One trace per request (with export on): the gateway's span, whose context the
        // service continues.
        let span = crate::trace::server_span(
            headers,
            method,
            &route.prefix,
            tenant.info.as_deref().map(|t| t.id.as_str()),
        );
        // 5. The request as the service sees it.
        send::prepare_headers(
            headers,
            upgrade,
            tenant.info.as_deref(),
            conn,
            host.as_ref(),
            route.public_prefix(addressed.path_tenant),
            rid,
        );
        if let Some(span) = &span {
            tansu_shared::telemetry::inject_context(span, headers);
        }
        Ok(Admitted::Forward {
            route,
            path: stripped,
            budget,
            span,
            tenant: tenant.info,
        })
    }

    /// A path configured as an alias of another is handled as that path (query kept).
    fn apply_alias<B>(&self, req: &mut Request<B>) {
        let path = req.uri().path();
        let path = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let Some((_, to)) = self.aliases.iter().find(|(from, _)| from == path) else {
            return;
        };
        let target = match req.uri().query() {
            Some(q) => format!("{to}?{q}"),
            None => to.clone(),
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = target.parse().ok();
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }

    /// The gateway's answer to a preflight: 204 with what the origin may send, or 403.
    // `Problem` is the request path's answer, returned by value as in every step.
    #[allow(clippy::result_large_err)]
    fn preflight(
        cors: &mut cors::Outcome<'_>,
        origin: Option<&str>,
        tenant: &resolve::Resolved,
        headers: &http::HeaderMap,
    ) -> Result<Response<ProxyBody>, Problem> {
        let rule = cors
            .rule
            .ok_or_else(|| cors::refused("cross-origin requests are not allowed on this path"))?;
        let origin = origin.ok_or_else(|| cors::refused("the origin is not an http(s) origin"))?;
        if !rule.allows(origin, tenant.allowed_origins()) {
            return Err(cors::refused(
                if rule.origins == Origins::Tenant && tenant.info.is_none() {
                    "name the tenant in the host or the path (/t/{tenant}/…): a preflight carries no token"
                } else {
                    "the origin is not allowed"
                },
            ));
        }
        let allowed = rule.preflight(origin, headers)?;
        cors.preflight = true;
        let mut resp = Response::new(empty_body());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp.headers_mut().extend(allowed);
        Ok(resp)
    }

    /// A request from another origin: an origin its rule allows may read the answer; one a
    /// tenant does not allow is refused before the service sees the request.
    #[allow(clippy::result_large_err)]
    fn cross_origin(
        cors: &mut cors::Outcome<'_>,
        origin: Option<&str>,
        tenant: &resolve::Resolved,
    ) -> Result<(), Problem> {
        let Some(rule) = cors.rule else {
            return Ok(());
        };
        match origin.filter(|o| rule.allows(o, tenant.allowed_origins())) {
            Some(o) => cors.allowed = Some(o.to_owned()),
            None if rule.origins == Origins::Tenant => {
                return Err(cors::refused(
                    "the origin is not allowed to call this tenant",
                ));
            }
            None => {}
        }
        Ok(())
    }

    async fn health(&self, client: &Client) -> Response<ProxyBody> {
        let report = crate::health::aggregate(&self.pools(), client, self.health_timeout).await;
        let status = match report.status {
            tansu_shared::health::ReadyStatus::Ready => StatusCode::OK,
            tansu_shared::health::ReadyStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        json_response(status, serde_json::to_vec(&report).unwrap_or_default())
    }
}

/// What [`Gateway::admit`] decided about a request.
enum Admitted<'g, 'p> {
    /// The gateway's own answer (a preflight).
    Answered(Response<ProxyBody>),
    /// To be sent on `route` as `path` (the route's prefix and any tenant segment stripped),
    /// with the headers prepared.
    Forward {
        route: &'g RouteEntry,
        path: &'p str,
        budget: Option<Decision>,
        span: Option<tracing::Span>,
        /// The tenant resolved (and injected in `X-Tansu-Tenant`), if any.
        tenant: Option<Arc<TenantInfo>>,
    },
}

/// An unrouted path's answer (also an internal path's).
fn no_route() -> Problem {
    Problem::not_found().with_detail("no route for this path")
}

fn unknown_tenant() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "unknown-tenant", "Unknown tenant")
}

fn tenant_mismatch(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "tenant-mismatch", "Tenant mismatch").with_detail(detail)
}

fn too_large(limit: u64) -> Problem {
    Problem::payload_too_large().with_detail(format!("the request body exceeds {limit} bytes"))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<ProxyBody> {
    let mut r = Response::new(full_body(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A problem answered by the gateway itself, with the request id in the body.
pub fn problem_response(p: Problem, rid: &HeaderValue) -> Response<ProxyBody> {
    use axum::response::IntoResponse;
    let p = match rid.to_str() {
        Ok(id) => p.with_extension("request_id", id),
        Err(_) => p,
    };
    p.into_response()
        .map(|b| b.map_err(BoxError::from).boxed_unsync())
}
