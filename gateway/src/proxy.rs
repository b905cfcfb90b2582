//! The request path through the gateway (see the crate docs for the order of the steps).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tansu_shared::TENANT_HEADER;
use tansu_shared::auth::{Verifier, VerifierConfig, bearer_token};
use tansu_shared::problem::Problem;

use crate::Config;
use crate::connections::{Connections, SendError};
use crate::forwarding::{self, Connection, REQUEST_ID, TrustedProxies, X_FORWARDED_PREFIX};
use crate::ratelimit::{self, Decision, Key, RateLimiter};
use crate::surface::{self, InternalPaths};
use crate::tenant::{self, CachedDirectory, TenantStatus};
use crate::upstream::{Clock, Pool};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the gateway sends or forwards: streamed, never collected.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
pub type Client = hyper_util::client::legacy::Client<HttpConnector, ProxyBody>;

static TENANT: HeaderName = HeaderName::from_static(TENANT_HEADER);
static HSTS_VALUE: HeaderValue = HeaderValue::from_static("max-age=63072000; includeSubDomains");
static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

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
            trusted: TrustedProxies::new(&config.trusted_proxies),
            base_domain: config.base_domain.as_ref().map(|d| d.to_ascii_lowercase()),
            hsts: !config.dev_mode,
            request_timeout: Duration::from_millis(config.limits.request_timeout_ms),
            health_timeout: Duration::from_millis(config.upstream.health_timeout_ms),
            stats: crate::metrics::Stats::default(),
        })
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
        let mut resp = match self.forward(req, conn, &rid, (client, conns)).await {
            Ok(r) => r,
            Err(p) => {
                // Never the headers or the query: they may carry credentials.
                tracing::debug!(status = p.status, request_id = ?rid, problem = %p.type_uri, "answered by the gateway");
                problem_response(p, &rid)
            }
        };
        self.stats.record(resp.status());
        let h = resp.headers_mut();
        h.insert(REQUEST_ID.clone(), rid);
        if self.hsts {
            h.insert(header::STRICT_TRANSPORT_SECURITY, HSTS_VALUE.clone());
        }
        resp
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        conn: &Connection,
        rid: &HeaderValue,
        (client, conns): (&Client, &Connections),
    ) -> Result<Response<ProxyBody>, Problem> {
        let path = req.uri().path();
        if path == "/health" && req.method() == Method::GET {
            // The aggregate probes every upstream: it costs a client budget like any request.
            if let Some(limiter) = &self.limiter {
                let ip = self.trusted.client_ip(conn.peer.ip(), req.headers());
                let client = ratelimit::client_bucket(ip, self.ipv6_prefix);
                check_budget(limiter.as_ref(), &[Key::ClientIp(client)], None).await?;
            }
            return Ok(self.health(client).await);
        }
        if path == "/health/live" && req.method() == Method::GET {
            return Ok(json_response(
                StatusCode::OK,
                br#"{"status":"live"}"#.to_vec(),
            ));
        }
        let upgrade = req.version() == Version::HTTP_11 && forwarding::wants_upgrade(req.headers());
        let inbound_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();

        // The authority asked for: the URI's (HTTP/2, absolute form), else `Host`.
        let host = match parts.uri.authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => parts.headers.get(header::HOST).cloned(),
        }
        .filter(|h| h.to_str().is_ok_and(forwarding::is_valid_host));
        let client_ip = self.trusted.client_ip(conn.peer.ip(), &parts.headers);

        // Tenant from the path (stripped before routing) and from the host.
        let full_path = parts.uri.path();
        // The path as the most lenient service would read it, without its tenant segments:
        // what the path rules (internal paths, strict and registration budgets) compare with.
        let canonical = surface::canonical(full_path);
        let public_path = surface::without_tenant(&canonical);
        if self.internal.contains(public_path) {
            // The same answer, and the same cost to the client, as an unrouted path: nothing
            // tells which paths are behind.
            if let Some(limiter) = &self.limiter {
                let client = ratelimit::client_bucket(client_ip, self.ipv6_prefix);
                check_budget(limiter.as_ref(), &[Key::ClientIp(client)], None).await?;
            }
            return Err(no_route());
        }
        if forwarding::has_dot_segment(full_path) {
            // `/identity/../db/…` must not reach a service that normalises paths differently.
            return Err(Problem::bad_request(
                "dot segments are not allowed in the path",
            ));
        }
        let (path_tenant, path) = match tenant::from_path(full_path) {
            None => (None, full_path),
            Some(Ok((slug, rest))) => (Some(slug), rest),
            Some(Err(())) => return Err(unknown_tenant()),
        };
        let host_tenant = match (
            &self.base_domain,
            host.as_ref().and_then(|h| h.to_str().ok()),
        ) {
            (Some(base), Some(h)) => tenant::from_host(&forwarding::host_name(h), base),
            _ => None,
        };
        if let (Some(h), Some(p)) = (&host_tenant, path_tenant)
            && h != p
        {
            return Err(tenant_mismatch(
                "the host and the path name different tenants",
            ));
        }

        // Per-client budgets before any work that costs more than a map lookup.
        let mut budget = None;
        if let Some(limiter) = &self.limiter {
            let client = ratelimit::client_bucket(client_ip, self.ipv6_prefix);
            let ip = Key::ClientIp(client);
            let mut strict = (self.strict_paths.iter().enumerate())
                .filter(|(_, prefix)| surface::is_under(public_path, prefix))
                .map(|(i, _)| Key::Strict(i, client));
            // Last, so a client refused by its own buckets spends none of the platform's.
            let registration = (!is_safe(&parts.method)
                && (self.registration_paths.iter()).any(|p| surface::is_under(public_path, p)))
            .then_some(Key::Registration);
            // Most paths have no strict limit: their one key needs no list.
            budget = Some(match (strict.next(), registration) {
                (None, None) => check_budget(limiter.as_ref(), &[ip], None).await?,
                (first, registration) => {
                    let keys: Vec<Key<'_>> = [ip]
                        .into_iter()
                        .chain(first)
                        .chain(strict)
                        .chain(registration)
                        .collect();
                    check_budget(limiter.as_ref(), &keys, None).await?
                }
            });
        }

        let (route, stripped) = self.route_for(path).ok_or_else(no_route)?;

        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > route.max_body
        {
            return Err(too_large(route.max_body));
        }

        // The token's tenant: verified when the route checks tokens, else only decoded.
        let (token_tid, verified) = match bearer_token(&parts.headers) {
            Ok(Some(token)) => match &route.verifier {
                Some(v) => (v.verify(token).await.map_err(|e| e.to_problem())?.tid, true),
                None => (tenant::unverified_tid(token), false),
            },
            Ok(None) => (None, false),
            Err(e) if route.verifier.is_some() => return Err(e.to_problem()),
            Err(_) => (None, false),
        };

        let resolved = match (host_tenant.as_deref().or(path_tenant), token_tid.as_deref()) {
            (Some(slug), tid) => {
                let info = self
                    .directory
                    .by_slug(slug)
                    .await
                    .map_err(directory_unavailable)?
                    .ok_or_else(unknown_tenant)?;
                if tid.is_some_and(|tid| tid != info.id) {
                    return Err(tenant_mismatch(
                        "the token was issued for another tenant than the one addressed",
                    ));
                }
                Some(info)
            }
            (None, Some(tid)) => {
                if !tenant::is_valid_id(tid) {
                    return Err(unknown_tenant());
                }
                Some(
                    self.directory
                        .by_id(tid)
                        .await
                        .map_err(directory_unavailable)?
                        .ok_or_else(unknown_tenant)?,
                )
            }
            (None, None) => None,
        };
        if let Some(t) = &resolved
            && t.status == TenantStatus::Suspended
        {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "tenant-suspended",
                "Tenant suspended",
            ));
        }
        // Only the tenant's own verified credential spends its budget: anyone can name a
        // tenant (host, path, an unverified token's `tid`), and must not use up its budget.
        if let (Some(limiter), Some(t)) = (&self.limiter, &resolved)
            && verified
            && token_tid.as_deref() == Some(t.id.as_str())
        {
            let keys = [Key::Tenant(&t.id)];
            budget = Some(check_budget(limiter.as_ref(), &keys, budget).await?);
        }

        // The request as the service sees it.
        let headers = &mut parts.headers;
        // Room for what is added below: the map grows once instead of doubling on the way.
        headers.reserve(10);
        forwarding::remove_hop_by_hop(headers, upgrade);
        while headers.remove(&TENANT).is_some() {}
        if let Some(t) = &resolved
            && let Ok(v) = HeaderValue::from_str(&t.id)
        {
            headers.insert(TENANT.clone(), v);
        }
        forwarding::set_forwarded(headers, conn, host.as_ref());
        let public_prefix = match path_tenant {
            Some(slug) => HeaderValue::from_str(&format!("/t/{slug}{}", route.prefix)).ok(),
            None => route.prefix_header.clone(),
        };
        if let Some(v) = public_prefix {
            headers.insert(X_FORWARDED_PREFIX.clone(), v);
        }
        headers.insert(REQUEST_ID.clone(), rid.clone());
        forwarding::propagate_trace(headers);
        headers.remove(header::HOST);
        // The gateway already answered `100 Continue` to the client when it read the body.
        headers.remove(header::EXPECT);

        let mut resp = self
            .send(
                conns,
                route,
                &parts.method,
                std::mem::take(headers),
                (stripped, parts.uri.query()),
                body,
            )
            .await?;

        // Room for the request id, the budget and HSTS (see `handle`): one growth at most.
        resp.headers_mut().reserve(5);
        if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            if let Some(inbound) = inbound_upgrade {
                tokio::spawn(async move {
                    let (Ok(client), Ok(service)) = tokio::join!(inbound, upstream_upgrade) else {
                        return;
                    };
                    let mut client = TokioIo::new(client);
                    let mut service = TokioIo::new(service);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut service).await;
                });
            }
        } else {
            forwarding::remove_hop_by_hop(resp.headers_mut(), false);
        }
        if let Some(Decision::Allowed {
            limit,
            remaining,
            reset,
        }) = budget
        {
            set_ratelimit_headers(resp.headers_mut(), limit, remaining, reset);
        }
        Ok(resp)
    }

    /// Sends to the route's upstreams in round-robin order. A refused connection ejects the
    /// instance; a request without a body is retried on the next one (a streamed body cannot
    /// be replayed).
    async fn send(
        &self,
        conns: &Connections,
        route: &RouteEntry,
        method: &Method,
        mut headers: HeaderMap,
        (path, query): (&str, Option<&str>),
        body: Incoming,
    ) -> Result<Response<ProxyBody>, Problem> {
        let replayable = body.is_end_stream();
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut body = Some(LimitedBody {
            inner: body,
            remaining: route.max_body,
            exceeded: exceeded.clone(),
        });
        let mut tried = Vec::new();
        loop {
            let Some(i) = route.pool.pick(&tried) else {
                return Err(if tried.is_empty() {
                    Problem::service_unavailable("no upstream instance is available")
                } else {
                    bad_gateway("no upstream instance accepted the connection")
                });
            };
            tried.push(i);
            let upstream = &route.pool.upstreams[i];
            let uri = upstream
                .origin_form(path, query)
                .map_err(|_| Problem::bad_request("malformed request target"))?;
            let retry_possible = replayable && tried.len() < route.pool.upstreams.len();
            let out_body = match (replayable, body.take()) {
                (true, _) => empty_body(),
                (false, Some(b)) => b.boxed_unsync(),
                (false, None) => return Err(bad_gateway("upstream unreachable")),
            };
            let mut out_headers = if retry_possible {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            out_headers.insert(header::HOST, upstream.host_header().clone());
            let mut out = Request::new(out_body);
            *out.method_mut() = method.clone();
            *out.uri_mut() = uri;
            *out.version_mut() = Version::HTTP_11;
            *out.headers_mut() = out_headers;
            let sent = conns.send((route.id, i), upstream, out);
            match tokio::time::timeout(self.request_timeout, sent).await {
                Err(_) => {
                    return Err(Problem::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream-timeout",
                        "Gateway timeout",
                    )
                    .with_detail("the service did not answer in time"));
                }
                Ok(Ok(resp)) => return Ok(resp),
                Ok(Err(e @ SendError::Connect(_))) => {
                    route.pool.eject(i);
                    tracing::warn!(upstream = %upstream.url, error = %e, "upstream connection failed");
                    if !retry_possible {
                        return Err(bad_gateway("the service could not be reached"));
                    }
                }
                Ok(Err(e @ SendError::Request(_))) => {
                    if exceeded.load(Ordering::Relaxed) {
                        return Err(too_large(route.max_body));
                    }
                    tracing::warn!(upstream = %upstream.url, error = %e, "upstream request failed");
                    return Err(bad_gateway("the service failed to answer"));
                }
            }
        }
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

async fn check_budget(
    limiter: &dyn RateLimiter,
    keys: &[Key<'_>],
    previous: Option<Decision>,
) -> Result<Decision, Problem> {
    match limiter.check(keys).await {
        Decision::Limited { limit, retry_after } => {
            let secs = ratelimit::ceil_secs(retry_after).max(1);
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            )
            .with_detail("the request budget is used up; retry later");
            let mut h = HeaderMap::new();
            set_ratelimit_headers(&mut h, limit, 0, retry_after);
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            for (name, value) in h.iter() {
                p = p.with_header(name.clone(), value.clone());
            }
            Err(p)
        }
        allowed @ Decision::Allowed { remaining, .. } => Ok(match previous {
            Some(prev @ Decision::Allowed { remaining: r, .. }) if r <= remaining => prev,
            _ => allowed,
        }),
    }
}

fn set_ratelimit_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: Duration) {
    h.insert(RATELIMIT_LIMIT.clone(), HeaderValue::from(limit));
    h.insert(RATELIMIT_REMAINING.clone(), HeaderValue::from(remaining));
    h.insert(
        RATELIMIT_RESET.clone(),
        HeaderValue::from(ratelimit::ceil_secs(reset)),
    );
}

/// GET, HEAD and OPTIONS create nothing; any other method may.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
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

fn directory_unavailable(e: String) -> Problem {
    tracing::warn!(error = %e, "tenant directory unavailable");
    Problem::service_unavailable("the tenant directory is unavailable")
}

fn bad_gateway(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway").with_detail(detail)
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

/// The inbound body, streamed to the upstream, refusing to pass more than `remaining` bytes.
struct LimitedBody {
    inner: Incoming,
    remaining: u64,
    exceeded: Arc<AtomicBool>,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        this.exceeded.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err("request body too large".into())));
                    }
                    this.remaining -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
