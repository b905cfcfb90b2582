//! Test harness: echo upstreams, a self-signed certificate, a gateway on ephemeral ports and
//! clients that trust exactly that certificate.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::routing::any;
use serde::Deserialize;
use tansu_gateway::{Config, Route};
use tansu_shared::health::Health;
use tansu_shared::testing::TestServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the echo upstream saw.
#[derive(Debug, Deserialize)]
pub struct Echo {
    pub instance: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body_len: usize,
}

impl Echo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// An upstream answering every path with what it received (and `/health/ready`).
pub async fn echo(instance: &'static str) -> TestServer {
    let router = Router::new()
        .route("/slow", any(slow))
        .fallback(move |req: Request| handle(instance, req))
        .merge(Health::new(instance).router());
    TestServer::start(router).await
}

async fn slow() -> &'static str {
    // A service that takes longer than the gateway's request timeout in the tests.
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn handle(instance: &'static str, req: Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return (axum::http::StatusCode::BAD_REQUEST, "body").into_response(),
    };
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in parts.headers.iter() {
        headers
            .entry(k.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    axum::Json(serde_json::json!({
        "instance": instance,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body.len(),
    }))
    .into_response()
}

pub struct Cert {
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn self_signed() -> Cert {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "tansu.test".to_string(),
        "*.tansu.test".to_string(),
    ];
    let c = rcgen::generate_simple_self_signed(names).expect("self-signed certificate");
    Cert {
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
    }
}

/// A running gateway.
pub struct Gateway {
    pub https: SocketAddr,
    pub http: SocketAddr,
    pub cert: Cert,
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn route(prefix: &str, upstreams: &[&TestServer]) -> Route {
    Route {
        prefix: prefix.into(),
        upstreams: upstreams.iter().map(|u| u.url("")).collect(),
    }
}

/// A config for tests: the given routes, generous rate limits, fast health checks.
pub fn config(routes: Vec<Route>) -> Config {
    let mut c = Config {
        routes,
        route_settings: Vec::new(),
        tls_reload_interval_ms: 100,
        ..Config::default()
    };
    c.upstream.health_interval_ms = 200;
    c.upstream.health_timeout_ms = 1_000;
    c.rate_limit.per_ip.burst = 100_000;
    c.rate_limit.per_ip.replenish_ms = 1;
    c
}

impl Gateway {
    pub async fn start(config: Config) -> Self {
        tansu_shared::install_crypto_provider();
        let cert = self_signed();
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_with(config, cert, dir).await
    }

    pub async fn start_with(config: Config, cert: Cert, dir: tempfile::TempDir) -> Self {
        Self::start_full(config, tansu_gateway::Parts::default(), cert, dir).await
    }

    pub async fn start_with_parts(config: Config, parts: tansu_gateway::Parts) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_full(config, parts, self_signed(), dir).await
    }

    async fn start_full(
        mut config: Config,
        parts: tansu_gateway::Parts,
        cert: Cert,
        dir: tempfile::TempDir,
    ) -> Self {
        tansu_shared::install_crypto_provider();
        let cert_path = dir.path().join("cert.pem");
        let key_path = dir.path().join("key.pem");
        std::fs::write(&cert_path, &cert.cert_pem).unwrap();
        std::fs::write(&key_path, &cert.key_pem).unwrap();
        config.tls_cert = cert_path;
        config.tls_key = key_path;
        let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (https_addr, http_addr) = (https.local_addr().unwrap(), http.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(tansu_gateway::serve_with(
            https,
            Some(http),
            config,
            parts,
            async {
                let _ = rx.await;
            },
        ));
        let gw = Self {
            https: https_addr,
            http: http_addr,
            cert,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        };
        // Ready once the TLS listener answers.
        let client = gw.client();
        let url = gw.url("/health/live");
        eventually("gateway answers", Duration::from_secs(10), || {
            let client = client.clone();
            let url = url.clone();
            async move { client.get(&url).send().await.is_ok() }
        })
        .await;
        gw
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{}", self.https.port(), path)
    }

    pub fn host_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{}", self.https.port(), path)
    }

    /// A client trusting only this gateway's certificate; `*.tansu.test` and `localhost`
    /// resolve to the gateway.
    pub fn client(&self) -> reqwest::Client {
        client_for(&self.cert.cert_pem, self.https, false)
    }

    pub fn http1_client(&self) -> reqwest::Client {
        client_for(&self.cert.cert_pem, self.https, true)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("gateway stops in time");
            r.unwrap().unwrap();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn client_for(cert_pem: &str, addr: SocketAddr, http1_only: bool) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder()
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .resolve("localhost", addr)
        .resolve("tansu.test", addr);
    for t in ["acme", "globex", "initech", "nope"] {
        b = b.resolve(&format!("{t}.tansu.test"), addr);
    }
    if http1_only {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// Polls `check` until it holds, failing the test after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `GET url` with a client from `client` until its status satisfies `want` (a
/// transport error does not), failing the test after `within`.
pub async fn eventually_answers(
    what: &str,
    within: Duration,
    url: &str,
    want: impl Fn(reqwest::StatusCode) -> bool,
    client: impl Fn() -> reqwest::Client,
) {
    let want = &want;
    eventually(what, within, || {
        let client = client();
        async move { client.get(url).send().await.is_ok_and(|r| want(r.status())) }
    })
    .await;
}

pub async fn echo_of(resp: reqwest::Response) -> Echo {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "status {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an echo ({e}): {text}"))
}

pub async fn problem_of(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "problem content type"
    );
    let rid = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], status);
    assert_eq!(v["request_id"], rid, "problem carries the request id");
    v
}

/// An unsigned JWT-shaped token with the given `tid` (the gateway only decodes it unless the
/// route verifies tokens).
pub fn token_with_tid(tid: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"k"}"#),
        b64(&format!(r#"{{"sub":"u","tid":"{tid}"}}"#)),
        b64("sig")
    )
}

pub fn headers_of(resp: &reqwest::Response) -> HeaderMap {
    resp.headers().clone()
}

/// A raw TLS connection to the gateway (HTTP/1.1 by ALPN), for tests that need to misbehave.
pub async fn raw_tls(
    gw: &Gateway,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(gw.cert.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.https).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Reads until the peer closes (bounded by `within`); returns what was read, or panics when
/// the connection is still open after `within`.
pub async fn read_until_closed<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    within: Duration,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("the gateway closes the connection in time");
    out
}
