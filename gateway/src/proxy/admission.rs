//! Step 3: what the gateway answers before any route is chosen — its own paths, the services'
//! internal paths, malformed targets, a host and path naming different tenants — and the
//! per-client budgets (the strict ones of sign-in paths, the platform's registration budget).

use std::net::IpAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use tansu_shared::problem::Problem;

use super::{Client, Gateway, ProxyBody, json_response, no_route, tenant_mismatch, unknown_tenant};
use crate::forwarding::{self, Connection};
use crate::ratelimit::{self, Decision, Key, RateLimiter};
use crate::surface;
use crate::tenant;

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Where a request is addressed, before any route is chosen.
pub(super) struct Addressed<'p> {
    /// The tenant named by `/t/{tenant}/…`.
    pub(super) path_tenant: Option<&'p str>,
    /// The tenant named by the host (`{tenant}.{base_domain}`).
    pub(super) host_tenant: Option<String>,
    /// The path to route: without `/t/{tenant}`.
    pub(super) path: &'p str,
}

/// The authority asked for: the URI's (HTTP/2, absolute form), else `Host`; only when valid.
pub(super) fn requested_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => headers.get(header::HOST).cloned(),
    }
    .filter(|h| h.to_str().is_ok_and(forwarding::is_valid_host))
}

impl Gateway {
    /// The gateway's own paths: `GET /health` (every upstream's readiness; it costs a client
    /// budget like any request) and `GET /health/live`.
    pub(super) async fn own_path<B>(
        &self,
        req: &Request<B>,
        conn: &Connection,
        client: &Client,
    ) -> Result<Option<Response<ProxyBody>>, Problem> {
        if req.method() != Method::GET {
            return Ok(None);
        }
        match req.uri().path() {
            "/health" => {
                // The aggregate probes every upstream: it costs a client budget like any request.
                if let Some(limiter) = &self.limiter {
                    let ip = self.trusted.client_ip(conn.peer.ip(), req.headers());
                    let client = ratelimit::client_bucket(ip, self.ipv6_prefix);
                    check_budget(limiter.as_ref(), &[Key::ClientIp(client)], None).await?;
                }
                Ok(Some(self.health(client).await))
            }
            "/health/live" => Ok(Some(json_response(
                StatusCode::OK,
                br#"{"status":"live"}"#.to_vec(),
            ))),
            _ => Ok(None),
        }
    }

    /// Refuses internal paths (as unrouted, at an unrouted path's cost), dot segments, a `/t/`
    /// segment that names no valid tenant, and a host and path naming different tenants.
    pub(super) async fn screen<'p>(
        &self,
        full_path: &'p str,
        public_path: &str,
        host: Option<&HeaderValue>,
        client_ip: IpAddr,
    ) -> Result<Addressed<'p>, Problem> {
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
        let host_tenant = match (&self.base_domain, host.and_then(|h| h.to_str().ok())) {
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
        Ok(Addressed {
            path_tenant,
            host_tenant,
            path,
        })
    }

    /// The client's budgets: its own, the strict ones of the paths it asks for, and for an
    /// unsafe request to a registration path the platform's (last, so a client refused by its
    /// own buckets spends none of the platform's). `None` without rate limiting.
    pub(super) async fn client_budgets(
        &self,
        method: &Method,
        public_path: &str,
        client_ip: IpAddr,
    ) -> Result<Option<Decision>, Problem> {
        let Some(limiter) = &self.limiter else {
            return Ok(None);
        };
        let client = ratelimit::client_bucket(client_ip, self.ipv6_prefix);
        let ip = Key::ClientIp(client);
        let mut strict = (self.strict_paths.iter().enumerate())
            .filter(|(_, prefix)| surface::is_under(public_path, prefix))
            .map(|(i, _)| Key::Strict(i, client));
        let registration = (!is_safe(method)
            && (self.registration_paths.iter()).any(|p| surface::is_under(public_path, p)))
        .then_some(Key::Registration);
        // Most paths have no strict limit: their one key needs no list.
        Ok(Some(match (strict.next(), registration) {
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
        }))
    }
}

pub(super) async fn check_budget(
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

pub(super) fn set_ratelimit_headers(
    h: &mut HeaderMap,
    limit: u32,
    remaining: u32,
    reset: Duration,
) {
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
