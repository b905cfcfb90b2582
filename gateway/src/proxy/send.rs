//! Step 5: the route, the request as the service sees it (hop-by-hop headers gone, the
//! resolved tenant injected, `X-Forwarded-*` set), the upstream (round-robin, with ejection and
//! retry), and the answer as the client sees it (upgrades spliced, budget headers).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tansu_shared::TENANT_HEADER;
use tansu_shared::problem::Problem;

use super::admission::set_ratelimit_headers;
use super::{BoxError, Gateway, ProxyBody, RouteEntry, empty_body, no_route, too_large};
use crate::connections::{Connections, SendError};
use crate::forwarding::{self, Connection, REQUEST_ID, X_FORWARDED_PREFIX};
use crate::ratelimit::Decision;
use crate::tenant::TenantInfo;

static TENANT: HeaderName = HeaderName::from_static(TENANT_HEADER);

impl RouteEntry {
    /// The `X-Forwarded-Prefix` the service builds its public URLs with.
    pub(super) fn public_prefix(&self, path_tenant: Option<&str>) -> Option<HeaderValue> {
        match path_tenant {
            Some(slug) => HeaderValue::from_str(&format!("/t/{slug}{}", self.prefix)).ok(),
            None => self.prefix_header.clone(),
        }
    }
}

impl Gateway {
    /// The route serving `path` and the path as its service sees it; 413 when the declared
    /// body is larger than the route takes.
    // `Problem` is the request path's answer, returned by value as in every step.
    #[allow(clippy::result_large_err)]
    pub(super) fn route<'p>(
        &self,
        path: &'p str,
        headers: &HeaderMap,
    ) -> Result<(&RouteEntry, &'p str), Problem> {
        let (route, stripped) = self.route_for(path).ok_or_else(no_route)?;
        if let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > route.max_body
        {
            return Err(too_large(route.max_body));
        }
        Ok((route, stripped))
    }

    /// Sends to the route's upstreams in round-robin order. A refused connection ejects the
    /// instance; a request without a body is retried on the next one (a streamed body cannot
    /// be replayed).
    pub(super) async fn send(
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
                    Problem::retry_later("no upstream instance is available")
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
}

/// The request's headers as the service sees them: hop-by-hop headers removed, any inbound
/// `X-Tansu-Tenant` replaced by the resolved tenant's, `Forwarded`/`X-Forwarded-*` from the
/// connection, the request id and trace context, no `Host` (set per upstream) and no `Expect`.
pub(super) fn prepare_headers(
    headers: &mut HeaderMap,
    upgrade: bool,
    tenant: Option<&TenantInfo>,
    conn: &Connection,
    host: Option<&HeaderValue>,
    public_prefix: Option<HeaderValue>,
    rid: &HeaderValue,
) {
    // Room for what is added below: the map grows once instead of doubling on the way.
    headers.reserve(10);
    forwarding::remove_hop_by_hop(headers, upgrade);
    while headers.remove(&TENANT).is_some() {}
    if let Some(t) = tenant
        && let Ok(v) = HeaderValue::from_str(&t.id)
    {
        headers.insert(TENANT.clone(), v);
    }
    forwarding::set_forwarded(headers, conn, host);
    if let Some(v) = public_prefix {
        headers.insert(X_FORWARDED_PREFIX.clone(), v);
    }
    headers.insert(REQUEST_ID.clone(), rid.clone());
    forwarding::propagate_trace(headers);
    headers.remove(header::HOST);
    // The gateway already answered `100 Continue` to the client when it read the body.
    headers.remove(header::EXPECT);
}

/// The service's answer as the client sees it: an accepted upgrade spliced to the client's
/// connection, else hop-by-hop headers removed; the budget's `RateLimit-*` headers.
pub(super) fn finish(
    mut resp: Response<ProxyBody>,
    upgrade: bool,
    inbound_upgrade: Option<OnUpgrade>,
    budget: Option<Decision>,
) -> Response<ProxyBody> {
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
    resp
}

fn bad_gateway(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway").with_detail(detail)
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
