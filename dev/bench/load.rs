//! The load generator: `connections` keep-alive HTTP/1.1 connections (hyper client, optionally
//! over rustls), each running one operation after the other for a fixed time after a warm-up.
//! An operation is one `GET` of a fixed path, or the requests of a [`Script`] (a token request,
//! a login of two requests, a refresh that carries its token on to the next one).
//!
//! Every request started inside the measured window counts; its latency is taken from just
//! before the request is written to after the last body byte was read. Latencies are kept
//! exactly (one `u32` of microseconds per request) and sorted at the end: no histogram
//! rounding, and 10 s at 100,000 req/s is 4 MB.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsConnector;

/// What to load and how hard.
#[derive(Clone)]
pub struct LoadSpec {
    /// A loopback address (checked by [`check_loopback`]).
    pub addr: SocketAddr,
    /// The `Host` header (`localhost:8443`).
    pub host: String,
    /// Path and query sent on every request.
    pub path: String,
    /// TLS: the connector (trusting the benchmark's certificate) and the name to verify.
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Longest wait for one response (or one connection attempt).
    pub request_timeout: Duration,
    /// What each connection sends: `None` = `GET path`, one request per operation, 2xx = success.
    pub script: Option<ScriptFactory>,
}

/// A request as the load generator sends it.
pub type Req = Request<Full<Bytes>>;

/// What a [`Script`] does after a response.
pub enum Step {
    /// The operation goes on with this request (on the same connection).
    Next(Box<Req>),
    /// The operation succeeded; its latency is counted.
    Done,
    /// The operation failed (counted as an error); the next one starts.
    Failed(String),
}

/// One connection's operations: a script keeps what it needs between requests and operations
/// (cookies of a login, the refresh token the last response returned).
pub trait Script: Send {
    /// The first request of the next operation.
    fn start(&mut self) -> Req;
    /// The answer to the operation's last request.
    fn response(&mut self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> Step;

    /// The same request on every operation, already encoded as HTTP/1.1 bytes: the connection
    /// then writes these bytes and reads the answer with a minimal parser instead of hyper's
    /// client (plain TCP only; one request per operation; `response` sees no headers). The
    /// lightest load generator, for targets whose own cost per request is small enough that
    /// the generator's share of the CPUs shows in the result.
    fn encoded(&self) -> Option<Bytes> {
        None
    }
}

/// Makes the script of connection `n` (0-based).
pub type ScriptFactory = Arc<dyn Fn(usize) -> Box<dyn Script> + Send + Sync>;

/// `GET path`, 2xx = success.
struct Get {
    path: String,
    host: String,
}

impl Script for Get {
    fn start(&mut self) -> Req {
        Request::get(self.path.as_str())
            .header(header::HOST, self.host.as_str())
            .body(Full::default())
            .expect("a static request is well-formed")
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, _: Bytes) -> Step {
        if status.is_success() {
            Step::Done
        } else {
            Step::Failed(format!("status {status}"))
        }
    }
}

/// Only loopback targets: the benchmark never sends load anywhere else.
pub fn check_loopback(addr: SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "only loopback targets (127.0.0.1, ::1) are allowed, not {addr}"
    );
    Ok(())
}

/// The outcome of one run.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Successful operations (2xx for a plain GET) started in the measured window.
    pub requests: u64,
    /// Failed requests (non-2xx, I/O error, timeout) started in the measured window.
    pub errors: u64,
    /// Connections opened after the first one of a worker (the server closed one).
    pub reconnects: u64,
    pub window: Duration,
    /// Sorted latencies of the successful requests, in microseconds.
    pub latencies_us: Vec<u32>,
    pub first_error: Option<String>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds: the smallest sample with at least
    /// `q` of the samples at or below it.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latencies_us
            .last()
            .map_or(f64::NAN, |&us| f64::from(us) / 1000.0)
    }
}

#[derive(Default)]
struct WorkerStats {
    requests: u64,
    errors: u64,
    reconnects: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

impl WorkerStats {
    fn error(&mut self, counted: bool, what: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(what());
            }
        }
    }
}

/// Runs the load: warm-up, then the measured window; returns once every connection finished
/// its last request (each bounded by `request_timeout`).
pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    check_loopback(spec.addr)?;
    anyhow::ensure!(spec.connections > 0, "at least one connection");
    let spec = Arc::new(spec);
    let start = Instant::now();
    let from = start + spec.warmup;
    let until = from + spec.duration;
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..spec.connections {
        let script: Box<dyn Script> = match &spec.script {
            Some(make) => make(n),
            None => Box::new(Get {
                path: spec.path.clone(),
                host: spec.host.clone(),
            }),
        };
        workers.spawn(worker(spec.clone(), script, from, until));
    }
    let mut result = LoadResult {
        window: spec.duration,
        ..LoadResult::default()
    };
    // Every worker stops starting requests at `until` and waits at most `request_timeout`
    // for the last one (plus a connection attempt): bounded.
    let deadline = until + spec.request_timeout * 2 + Duration::from_secs(1);
    loop {
        match timeout_at(deadline, workers.join_next()).await {
            Ok(Some(Ok(w))) => {
                result.requests += w.requests;
                result.errors += w.errors;
                result.reconnects += w.reconnects;
                result.latencies_us.extend(w.latencies_us);
                if result.first_error.is_none() {
                    result.first_error = w.first_error;
                }
            }
            Ok(Some(Err(e))) => anyhow::bail!("a load worker failed: {e}"),
            Ok(None) => break,
            Err(_) => {
                workers.abort_all();
                anyhow::bail!("load workers did not stop in time");
            }
        }
    }
    result.latencies_us.sort_unstable();
    Ok(result)
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn worker(
    spec: Arc<LoadSpec>,
    mut script: Box<dyn Script>,
    from: Instant,
    until: Instant,
) -> WorkerStats {
    if spec.tls.is_none()
        && let Some(request) = script.encoded()
    {
        return raw_worker(spec, script, request, from, until).await;
    }
    let mut stats = WorkerStats::default();
    let mut connections = 0u64;
    'connect: while Instant::now() < until {
        let Some((mut sender, driver)) = attempt(&spec, &mut stats, from, connect(&spec)).await
        else {
            continue;
        };
        connections += 1;
        let result = 'operations: loop {
            let started = Instant::now();
            if started >= until {
                break Ok(());
            }
            let counted = started >= from;
            let mut request = script.start();
            let outcome = loop {
                let exchange = async {
                    sender.ready().await?;
                    let resp = sender.send_request(request).await?;
                    let (parts, body) = resp.into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok::<_, hyper::Error>((parts.status, parts.headers, body))
                };
                match timeout(spec.request_timeout, exchange).await {
                    Ok(Ok((status, headers, body))) => {
                        match script.response(status, &headers, body) {
                            Step::Next(next) => request = *next,
                            Step::Done => break Ok(()),
                            Step::Failed(why) => break Err(why),
                        }
                    }
                    Ok(Err(e)) => {
                        // The connection is unusable (closed by the server or broken): reconnect.
                        stats.error(counted, || format!("request: {e}"));
                        break 'operations Err(());
                    }
                    Err(_) => {
                        stats.error(counted, || "request: timed out".into());
                        break 'operations Err(());
                    }
                }
            };
            match outcome {
                Ok(()) if counted => {
                    stats.requests += 1;
                    let us = started.elapsed().as_micros();
                    stats
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                Ok(()) => {}
                Err(why) => stats.error(counted, || why),
            }
        };
        driver.abort();
        if result.is_ok() {
            break 'connect;
        }
    }
    stats.reconnects = connections.saturating_sub(1);
    stats
}

/// One connection attempt, bounded by the request timeout. A failure is counted (when it
/// started inside the measured window) and answers `None`: the caller tries again.
async fn attempt<T>(
    spec: &LoadSpec,
    stats: &mut WorkerStats,
    from: Instant,
    connect: impl Future<Output = anyhow::Result<T>>,
) -> Option<T> {
    let started = Instant::now();
    match timeout(spec.request_timeout, connect).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(e)) => {
            stats.error(started >= from, || format!("connect: {e:#}"));
            tokio::time::sleep(Duration::from_millis(20)).await;
            None
        }
        Err(_) => {
            stats.error(started >= from, || "connect: timed out".into());
            None
        }
    }
}

/// [`worker`] for a script with a pre-encoded request ([`Script::encoded`]).
async fn raw_worker(
    spec: Arc<LoadSpec>,
    mut script: Box<dyn Script>,
    request: Bytes,
    from: Instant,
    until: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut connections = 0u64;
    let mut buf = Vec::with_capacity(16 * 1024);
    'connect: while Instant::now() < until {
        let plain = async {
            let tcp = TcpStream::connect(spec.addr).await?;
            tcp.set_nodelay(true)?;
            anyhow::Ok(tcp)
        };
        let Some(mut tcp) = attempt(&spec, &mut stats, from, plain).await else {
            continue;
        };
        connections += 1;
        loop {
            let started = Instant::now();
            if started >= until {
                break 'connect;
            }
            let counted = started >= from;
            buf.clear();
            let exchange = raw_exchange(&mut tcp, &request, &mut buf);
            match timeout(spec.request_timeout, exchange).await {
                Ok(Ok((status, body_at, keep_alive))) => {
                    let body = Bytes::copy_from_slice(&buf[body_at..]);
                    match script.response(status, &HeaderMap::new(), body) {
                        Step::Done if counted => {
                            stats.requests += 1;
                            let us = started.elapsed().as_micros();
                            stats
                                .latencies_us
                                .push(u32::try_from(us).unwrap_or(u32::MAX));
                        }
                        Step::Done => {}
                        Step::Next(_) => stats.error(counted, || {
                            "a script with an encoded request has one request per operation".into()
                        }),
                        Step::Failed(why) => stats.error(counted, || why),
                    }
                    if !keep_alive {
                        continue 'connect;
                    }
                }
                Ok(Err(e)) => {
                    stats.error(counted, || format!("request: {e:#}"));
                    continue 'connect;
                }
                Err(_) => {
                    stats.error(counted, || "request: timed out".into());
                    continue 'connect;
                }
            }
        }
    }
    stats.reconnects = connections.saturating_sub(1);
    stats
}

/// Writes `request` and reads one response into `buf`: its status, where its body starts in
/// `buf`, and whether the connection stays open. Needs a `Content-Length` (no chunked bodies).
async fn raw_exchange(
    tcp: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(StatusCode, usize, bool)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    tcp.write_all(request).await?;
    let mut chunk = [0u8; 8192];
    let (status, head_len, body_len, keep_alive) = loop {
        let n = tcp.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head_len) = response.parse(buf)? {
            let status = StatusCode::from_u16(response.code.unwrap_or(0))?;
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value)
            };
            let body_len: usize = std::str::from_utf8(
                header("content-length").context("a response without Content-Length")?,
            )?
            .trim()
            .parse()?;
            let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
            break (status, head_len, body_len, !close);
        }
    };
    while buf.len() < head_len + body_len {
        let n = tcp.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection in the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, head_len, keep_alive))
}

async fn connect(spec: &LoadSpec) -> anyhow::Result<(Sender, tokio::task::JoinHandle<()>)> {
    let tcp = TcpStream::connect(spec.addr)
        .await
        .with_context(|| format!("connecting to {}", spec.addr))?;
    tcp.set_nodelay(true)?;
    match &spec.tls {
        None => handshake(tcp).await,
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .context("TLS handshake")?;
            handshake(tls).await
        }
    }
}

async fn handshake<T>(io: T) -> anyhow::Result<(Sender, tokio::task::JoinHandle<()>)>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, driver))
}

/// A TLS connector trusting exactly the given PEM certificate(s), HTTP/1.1 by ALPN.
pub fn tls_connector(cert_pem: &[u8]) -> anyhow::Result<TlsConnector> {
    tansu_shared::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(cert.context("reading the certificate PEM")?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "no certificate in the PEM");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One request, to check a target answers what the benchmark expects before loading it.
/// Returns the status, the headers and the body.
pub async fn probe(spec: &LoadSpec) -> anyhow::Result<(http::StatusCode, http::HeaderMap, Bytes)> {
    check_loopback(spec.addr)?;
    let (mut sender, driver) = timeout(spec.request_timeout, connect(spec))
        .await
        .context("connecting timed out")??;
    let request = Request::get(spec.path.as_str())
        .header(header::HOST, spec.host.as_str())
        .body(Full::default())?;
    let exchange = async {
        let resp = sender.send_request(request).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>((parts.status, parts.headers, body))
    };
    let r = timeout(spec.request_timeout, exchange)
        .await
        .context("the probe timed out")?;
    driver.abort();
    Ok(r?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let r = LoadResult {
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..LoadResult::default()
        };
        assert_eq!(r.quantile_ms(0.5), 50.0);
        assert_eq!(r.quantile_ms(0.99), 99.0);
        assert_eq!(r.quantile_ms(1.0), 100.0);
        assert_eq!(r.max_ms(), 100.0);
        assert!(LoadResult::default().quantile_ms(0.5).is_nan());
    }

    #[test]
    fn only_loopback_targets() {
        assert!(check_loopback("127.0.0.1:80".parse().unwrap()).is_ok());
        assert!(check_loopback("[::1]:80".parse().unwrap()).is_ok());
        assert!(check_loopback("10.0.0.1:80".parse().unwrap()).is_err());
    }
}
