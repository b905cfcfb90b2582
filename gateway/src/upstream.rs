//! Upstream instances of a route: round-robin over the available ones, passive ejection on
//! connection failure, and an active `/health/ready` probe.
//!
//! An instance is available when its last probe said ready (instances start as ready so the
//! gateway serves before the first probe) and it is not ejected. A refused connection ejects it
//! for `eject_ms`; a successful probe ends the ejection early.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http::uri::{Authority, Scheme};
use http_body_util::BodyExt;
use tansu_shared::health::{Readiness, ReadyStatus};

use crate::proxy::{Client, empty_body};

/// One upstream instance (`http://host:port[/base]`).
#[derive(Debug)]
pub struct Upstream {
    pub url: String,
    scheme: Scheme,
    authority: Authority,
    /// `Host` of the requests sent to it.
    host_header: http::HeaderValue,
    base_path: String,
    ready: AtomicBool,
    /// Milliseconds since the pool clock's start until which the instance is skipped.
    ejected_until: AtomicU64,
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("upstream {url:?} is not a URL: {e}"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!("upstream {url:?} must be an http:// URL"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| format!("upstream {url:?} has no host"))?;
        if uri.query().is_some() {
            return Err(format!("upstream {url:?} must not have a query"));
        }
        let host_header = http::HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("upstream {url:?}: {e}"))?;
        Ok(Self {
            url: url.to_owned(),
            scheme: Scheme::HTTP,
            authority,
            host_header,
            base_path: uri.path().trim_end_matches('/').to_owned(),
            ready: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
        })
    }

    /// The upstream URI for a path (already stripped of the route prefix) and query.
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let origin = self.origin_form(path, query)?;
        let mut parts = origin.into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        Ok(Uri::from_parts(parts)?)
    }

    /// The upstream request target (origin form) for a path (already stripped of the route
    /// prefix) and query.
    pub fn origin_form(&self, path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let mut pq = String::with_capacity(self.base_path.len() + path.len() + 16);
        pq.push_str(&self.base_path);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Ok(Uri::from_maybe_shared(Bytes::from(pq))?)
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn host_header(&self) -> &http::HeaderValue {
        &self.host_header
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// A clock shared by the pools (milliseconds since the gateway started).
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Self {
        Self(Instant::now())
    }
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The instances of one route.
#[derive(Debug)]
pub struct Pool {
    pub upstreams: Vec<Arc<Upstream>>,
    next: AtomicUsize,
    clock: Clock,
    eject: Duration,
}

impl Pool {
    pub fn new(urls: &[String], clock: Clock, eject: Duration) -> Result<Self, String> {
        let upstreams = urls
            .iter()
            .map(|u| Upstream::parse(u).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            upstreams,
            next: AtomicUsize::new(0),
            clock,
            eject,
        })
    }

    /// The next available instance in round-robin order, skipping those in `tried`.
    ///
    /// When no instance at all is available because every one reports not ready (their
    /// database is away, say), the ones not ejected are used anyway: they still answer what
    /// needs no database (keys, discovery) and a 503 with `Retry-After` for the rest, which
    /// is better than the gateway refusing everything.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let n = self.upstreams.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now_ms();
        let order = || (0..n).map(|i| (start + i) % n);
        if let Some(i) = order().find(|&i| !tried.contains(&i) && self.available_at(i, now)) {
            return Some(i);
        }
        if order().any(|i| self.available_at(i, now)) {
            return None;
        }
        order().find(|&i| !tried.contains(&i) && !self.ejected_at(i, now))
    }

    fn ejected_at(&self, i: usize, now_ms: u64) -> bool {
        self.upstreams
            .get(i)
            .is_none_or(|u| u.ejected_until.load(Ordering::Relaxed) > now_ms)
    }

    /// Whether instance `i` is ready and not ejected now.
    pub fn is_available(&self, i: usize) -> bool {
        self.available_at(i, self.clock.now_ms())
    }

    fn available_at(&self, i: usize, now_ms: u64) -> bool {
        self.upstreams
            .get(i)
            .is_some_and(|u| u.is_ready() && u.ejected_until.load(Ordering::Relaxed) <= now_ms)
    }

    /// Passive ejection: the instance refused a connection.
    pub fn eject(&self, i: usize) {
        if let Some(u) = self.upstreams.get(i) {
            let until = self
                .clock
                .now_ms()
                .saturating_add(u64::try_from(self.eject.as_millis()).unwrap_or(u64::MAX));
            u.ejected_until.store(until, Ordering::Relaxed);
            tracing::warn!(upstream = %u.url, "upstream ejected after a connection failure");
        }
    }
}

/// The outcome of one readiness probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub ready: bool,
    /// The service's own readiness report, when it sent one.
    pub readiness: Option<Readiness>,
    pub error: Option<String>,
}

/// `GET {upstream}/health/ready`, bounded by `timeout`.
pub async fn probe(client: &Client, upstream: &Upstream, timeout: Duration) -> Probe {
    let uri = match upstream.uri_for("/health/ready", None) {
        Ok(u) => u,
        Err(e) => {
            return Probe {
                ready: false,
                readiness: None,
                error: Some(e.to_string()),
            };
        }
    };
    let request = match http::Request::get(uri).body(empty_body()) {
        Ok(r) => r,
        Err(e) => {
            return Probe {
                ready: false,
                readiness: None,
                error: Some(e.to_string()),
            };
        }
    };
    let work = async {
        let resp = client.request(request).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_else(|_| Bytes::new());
        Ok::<_, String>((status, body))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok((status, body))) => {
            let readiness = serde_json::from_slice::<Readiness>(&body).ok();
            let ready = status == http::StatusCode::OK
                && readiness
                    .as_ref()
                    .is_none_or(|r| r.status == ReadyStatus::Ready);
            Probe {
                ready,
                readiness,
                error: (!ready).then(|| format!("status {status}")),
            }
        }
        Ok(Err(e)) => Probe {
            ready: false,
            readiness: None,
            error: Some(e),
        },
        Err(_) => Probe {
            ready: false,
            readiness: None,
            error: Some("timed out".into()),
        },
    }
}

/// Probes every instance every `interval` until `stop` changes.
pub async fn health_loop(
    pools: Vec<Arc<Pool>>,
    client: Client,
    interval: Duration,
    timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let checks = pools.iter().flat_map(|p| p.upstreams.iter()).map(|u| {
            let client = client.clone();
            let u = u.clone();
            async move {
                let p = probe(&client, &u, timeout).await;
                let was = u.ready.swap(p.ready, Ordering::Relaxed);
                if p.ready {
                    u.ejected_until.store(0, Ordering::Relaxed);
                }
                if was != p.ready {
                    tracing::info!(upstream = %u.url, ready = p.ready, error = ?p.error, "upstream readiness changed");
                }
            }
        });
        futures::future::join_all(checks).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_ejected_and_unready() {
        let urls: Vec<String> = (1..=3).map(|p| format!("http://127.0.0.1:{p}")).collect();
        let pool = Pool::new(&urls, Clock::new(), Duration::from_secs(60)).unwrap();
        let picks: Vec<_> = (0..3).map(|_| pool.pick(&[]).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2]);
        pool.eject(1);
        pool.upstreams[2].ready.store(false, Ordering::Relaxed);
        for _ in 0..5 {
            assert_eq!(pool.pick(&[]), Some(0));
        }
        assert_eq!(pool.pick(&[0]), None);
    }

    #[test]
    fn with_no_instance_ready_the_unready_ones_not_ejected_still_serve() {
        let urls: Vec<String> = (1..=3).map(|p| format!("http://127.0.0.1:{p}")).collect();
        let pool = Pool::new(&urls, Clock::new(), Duration::from_secs(60)).unwrap();
        for u in &pool.upstreams {
            u.ready.store(false, Ordering::Relaxed);
        }
        pool.eject(1);
        let mut picks: Vec<_> = (0..4).map(|_| pool.pick(&[]).unwrap()).collect();
        picks.sort();
        picks.dedup();
        assert_eq!(picks, vec![0, 2], "the ejected instance is never used");
        assert_eq!(pool.pick(&[0, 2]), None);
        pool.eject(0);
        pool.eject(2);
        assert_eq!(pool.pick(&[]), None);
    }

    #[test]
    fn upstream_uris() {
        let u = Upstream::parse("http://127.0.0.1:7001/base/").unwrap();
        assert_eq!(
            u.uri_for("/x/y", Some("a=1")).unwrap().to_string(),
            "http://127.0.0.1:7001/base/x/y?a=1"
        );
        assert!(Upstream::parse("https://127.0.0.1:1").is_err());
        assert!(Upstream::parse("not a url").is_err());
    }
}
