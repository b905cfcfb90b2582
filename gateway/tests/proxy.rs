//! End-to-end through real TLS: routing, forwarding hygiene, HTTP/2, redirects, health,
//! ejection and upstream failures.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Version;
use tansu_shared::testing::http::SendOk;

#[tokio::test]
async fn routes_by_prefix_strips_it_and_sets_forwarding_headers() {
    let a = echo("identity").await;
    let b = echo("db").await;
    let gw = Gateway::start(config(vec![route("/identity", &[&a]), route("/db", &[&b])])).await;
    let client = gw.http1_client();

    let resp = client
        .get(gw.url("/identity/.well-known/jwks?x=1"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("connection", "x-secret")
        .header("x-secret", "hop")
        .header("x-request-id", "req-123")
        .send_ok()
        .await;
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let e = echo_of(resp).await;
    assert_eq!(e.instance, "identity");
    assert_eq!(e.path, "/.well-known/jwks");
    assert_eq!(e.query.as_deref(), Some("x=1"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/identity"));
    assert_eq!(e.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    let host = format!("localhost:{}", gw.https.port());
    assert_eq!(e.header("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(
        e.header("forwarded"),
        Some(format!("for=127.0.0.1;proto=https;host=\"{host}\"").as_str())
    );
    assert_eq!(e.header("x-request-id"), Some("req-123"));
    assert!(e.header("traceparent").is_some(), "a trace is started");
    assert!(e.header("x-secret").is_none(), "hop-by-hop header removed");

    // A W3C trace context is propagated unchanged.
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let e = echo_of(
        client
            .post(gw.url("/db/api/x"))
            .header("traceparent", tp)
            .body(vec![7u8; 10_000])
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.instance, "db");
    assert_eq!(e.method, "POST");
    assert_eq!(e.path, "/api/x");
    assert_eq!(e.body_len, 10_000);
    assert_eq!(e.header("traceparent"), Some(tp));
    assert!(
        e.header("x-request-id").is_some(),
        "a request id is created"
    );

    let e = echo_of(client.get(gw.url("/db")).send_ok().await).await;
    assert_eq!(e.path, "/");

    // Unknown paths, and prefixes that only share letters with a route, are 404 problems.
    for path in ["/nope", "/dbx/a"] {
        let v = problem_of(client.get(gw.url(path)).send_ok().await, 404).await;
        assert_eq!(v["type"], "urn:tansu:problem:not-found");
    }
    gw.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let a = echo("db").await;
    let gw = Gateway::start(config(vec![route("/db", &[&a])])).await;
    let resp = gw.client().get(gw.url("/db/x")).send_ok().await;
    assert_eq!(resp.version(), Version::HTTP_2);
    let e = echo_of(resp).await;
    assert_eq!(e.path, "/x");
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    let resp = gw.http1_client().get(gw.url("/db/x")).send_ok().await;
    assert_eq!(resp.version(), Version::HTTP_11);
    gw.stop().await;
}

#[tokio::test]
async fn plain_http_redirects_to_https() {
    let a = echo("db").await;
    let gw = Gateway::start(config(vec![route("/db", &[&a])])).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let resp = plain
        .post(format!("http://127.0.0.1:{}/db/x?y=1", gw.http.port()))
        .send_ok()
        .await;
    assert_eq!(resp.status().as_u16(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://127.0.0.1:{}/db/x?y=1", gw.https.port()).as_str()
    );
    gw.stop().await;
}

#[tokio::test]
async fn plain_http_proxy_part_proxies_instead_of_redirecting() {
    let a = echo("db").await;
    let parts = tansu_gateway::Parts {
        plain_http_proxy: true,
        ..Default::default()
    };
    let gw = Gateway::start_with_parts(config(vec![route("/db", &[&a])]), parts).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let resp = plain
        .get(format!(
            "http://127.0.0.1:{}/t/acme/db/x?y=1",
            gw.http.port()
        ))
        .header("x-tansu-tenant", "spoofed")
        .header("x-forwarded-proto", "https")
        .send_ok()
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("ratelimit-remaining"));
    let e = echo_of(resp).await;
    assert_eq!(e.path, "/x");
    assert_eq!(e.query.as_deref(), Some("y=1"));
    assert_eq!(e.header("x-tansu-tenant"), Some("acme"));
    assert_eq!(e.header("x-forwarded-proto"), Some("http"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/t/acme/db"));
    // The HTTPS listener is unchanged.
    let e = echo_of(gw.client().get(gw.url("/db/z")).send_ok().await).await;
    assert_eq!(e.header("x-forwarded-proto"), Some("https"));
    gw.stop().await;
}

#[tokio::test]
async fn dev_mode_has_no_hsts() {
    let a = echo("db").await;
    let mut c = config(vec![route("/db", &[&a])]);
    c.dev_mode = true;
    let gw = Gateway::start(c).await;
    let resp = gw.client().get(gw.url("/db/x")).send_ok().await;
    assert!(resp.headers().get("strict-transport-security").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn health_aggregates_upstreams_readiness() {
    let a = echo("identity").await;
    let b = echo("db").await;
    let gw = Gateway::start(config(vec![route("/identity", &[&a]), route("/db", &[&b])])).await;
    let client = gw.client();
    let resp = client.get(gw.url("/health")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "ready");
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let names: Vec<_> = services
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"identity") && names.contains(&"db"));
    let body = v.to_string();
    assert!(!body.contains("127.0.0.1"), "no internal addresses: {body}");

    b.stop().await;
    let resp = client.get(gw.url("/health")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "unavailable");
    let db = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["route"] == "/db")
        .unwrap();
    assert_eq!(db["status"], "unavailable");
    gw.stop().await;
}

#[tokio::test]
async fn a_stopped_upstream_is_ejected_and_traffic_continues() {
    let a = echo("one").await;
    let b = echo("two").await;
    let mut c = config(vec![route("/db", &[&a, &b])]);
    // Passive ejection alone: the active probe would not notice within the test.
    c.upstream.health_interval_ms = 600_000;
    let gw = Gateway::start(c).await;
    let client = gw.client();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(
            echo_of(client.get(gw.url("/db/x")).send_ok().await)
                .await
                .instance,
        );
    }
    assert_eq!(seen.len(), 2, "round-robin reaches both instances");

    b.stop().await;
    for _ in 0..10 {
        let e = echo_of(client.get(gw.url("/db/x")).send_ok().await).await;
        assert_eq!(e.instance, "one");
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_active_probe_takes_an_unready_upstream_out_and_back() {
    let a = echo("one").await;
    let b = echo("two").await;
    let gw = Gateway::start(config(vec![route("/db", &[&a, &b])])).await;
    let client = gw.client();
    let b_addr = b.addr;
    b.stop().await;
    // Once the probe has seen `two` go, every request goes to `one` at the first try.
    eventually(
        "probe marks the instance down",
        Duration::from_secs(5),
        || {
            let client = client.clone();
            let url = gw.url("/health");
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .ok()
                    == Some(503)
            }
        },
    )
    .await;
    for _ in 0..6 {
        let e = echo_of(client.get(gw.url("/db/x")).send_ok().await).await;
        assert_eq!(e.instance, "one");
    }
    // The instance comes back on the same address: the probe puts it back in rotation.
    let listener = tokio::net::TcpListener::bind(b_addr).await.unwrap();
    let _b2 = tansu_shared::testing::TestServer::start_on(listener, echo_router("two"));
    eventually("instance back in rotation", Duration::from_secs(5), || {
        let client = client.clone();
        let url = gw.url("/db/x");
        async move {
            match client.get(&url).send().await {
                Ok(r) => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["instance"] == "two"),
                Err(_) => false,
            }
        }
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn upstream_failures_are_problems_with_the_request_id() {
    let a = echo("db").await;
    let down = echo("down").await;
    let mut c = config(vec![route("/db", &[&a]), route("/down", &[&down])]);
    c.limits.request_timeout_ms = 300;
    c.upstream.health_interval_ms = 600_000;
    let gw = Gateway::start(c).await;
    let client = gw.client();

    let v = problem_of(client.get(gw.url("/db/slow")).send_ok().await, 504).await;
    assert_eq!(v["type"], "urn:tansu:problem:upstream-timeout");

    down.stop().await;
    problem_of(client.get(gw.url("/down/x")).send_ok().await, 502).await;
    // Now ejected: answered at once, without trying the instance.
    problem_of(client.get(gw.url("/down/x")).send_ok().await, 503).await;
    gw.stop().await;
}

#[tokio::test]
async fn body_size_is_limited_per_route() {
    let a = echo("db").await;
    let b = echo("storage").await;
    let mut c = config(vec![route("/db", &[&a]), route("/storage", &[&b])]);
    c.route_settings = vec![tansu_gateway::RouteSettings {
        prefix: "/db".into(),
        max_body_bytes: Some(1024),
        verify_tokens: None,
    }];
    let gw = Gateway::start(c).await;
    let client = gw.client();
    let post = |path: &str, len: usize| client.post(gw.url(path)).body(vec![0u8; len]).send_ok();
    let e = echo_of(post("/db/x", 1024).await).await;
    assert_eq!(e.body_len, 1024);
    problem_of(post("/db/x", 2048).await, 413).await;
    // Without a Content-Length the stream is cut at the limit.
    let chunks: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> = (0..4)
        .map(|_| Ok(hyper::body::Frame::data(bytes::Bytes::from(vec![1u8; 600]))))
        .collect();
    let body = reqwest::Body::wrap(http_body_util::StreamBody::new(futures::stream::iter(
        chunks,
    )));
    problem_of(
        gw.http1_client()
            .post(gw.url("/db/x"))
            .body(body)
            .send_ok()
            .await,
        413,
    )
    .await;
    // Other routes keep the default limit.
    let e = echo_of(post("/storage/x", 4096).await).await;
    assert_eq!(e.body_len, 4096);
    gw.stop().await;
}

#[tokio::test]
async fn a_certificate_swap_is_picked_up_without_a_restart() {
    let a = echo("db").await;
    let gw = Gateway::start(config(vec![route("/db", &[&a])])).await;
    let old = gw.client();
    echo_of(old.get(gw.url("/db/x")).send_ok().await).await;

    let next = self_signed();
    // Key first, then certificate: in between the pair does not match and the old one stays.
    std::fs::write(gw.key_path(), &next.key_pem).unwrap();
    std::fs::write(gw.cert_path(), &next.cert_pem).unwrap();
    let new_pem = next.cert_pem.clone();
    let addr = gw.https;
    let url = gw.url("/db/x");
    let ok = |s: reqwest::StatusCode| s.is_success();
    eventually_answers(
        "the new certificate is served",
        Duration::from_secs(5),
        &url,
        ok,
        || client_for(&new_pem, addr, false),
    )
    .await;
    // A fresh client that trusts only the old certificate no longer connects.
    let stale = client_for(&gw.cert.cert_pem, gw.https, false);
    assert!(stale.get(gw.url("/db/x")).send().await.is_err());
    gw.stop().await;
}

fn echo_router(instance: &'static str) -> axum::Router {
    axum::Router::new()
        .fallback(move || async move { axum::Json(serde_json::json!({ "instance": instance })) })
        .merge(tansu_shared::health::Health::new(instance).router())
}

#[tokio::test]
async fn dot_segments_are_refused() {
    let a = echo("identity").await;
    let b = echo("db").await;
    let gw = Gateway::start(config(vec![route("/identity", &[&a]), route("/db", &[&b])])).await;
    // reqwest would normalise `..` itself: send the raw request.
    use tokio::io::AsyncWriteExt;
    for target in ["/identity/../db/x", "/identity/%2e%2e/db/x"] {
        let mut io = raw_tls(&gw).await.unwrap();
        io.write_all(
            format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let out = read_until_closed(&mut io, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 400"), "{target}: {text}");
        assert!(text.contains("application/problem+json"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_trusted_proxy_extends_the_forwarded_chain() {
    let a = echo("db").await;
    let mut c = config(vec![route("/db", &[&a])]);
    c.trusted_proxies = vec!["127.0.0.0/8".into()];
    let gw = Gateway::start(c).await;
    let e = echo_of(
        gw.client()
            .get(gw.url("/db/x"))
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "public.example")
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    assert_eq!(e.header("x-forwarded-host"), Some("public.example"));
    gw.stop().await;
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    // An upstream that records on which of its connections each proxied request came (health
    // probes, which may connect at any time, are not counted).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let used: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let seen = used.clone();
    let server = tokio::spawn(async move {
        let next = AtomicUsize::new(0);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let id = next.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    if req.uri().path() == "/x" {
                        seen.lock().unwrap().insert(id);
                    }
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    let gw = gateway_to_raw_upstream(addr).await;
    let client = gw.client();
    for _ in 0..30 {
        let resp = client.get(gw.url("/db/x")).send_ok().await;
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    let opened = used.lock().unwrap().len();
    assert!(
        opened <= 1,
        "{opened} upstream connections for 30 sequential requests"
    );
    gw.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_pooled_connection_the_service_closed_is_replaced() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that answers one request per connection and then closes it without saying
    // so (no `Connection: close`), as a service whose keep-alive timeout just ran out; it
    // reports each close.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let closed = closed_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                drop(tcp);
                let _ = closed.send(());
            });
        }
    });
    let gw = gateway_to_raw_upstream(addr).await;
    let client = gw.client();
    for i in 0..10 {
        let resp = client.get(gw.url("/db/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.text().await.unwrap(), "ok");
        // The service has closed the connection the gateway keeps for reuse.
        tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
            .await
            .expect("the upstream closes its connection")
            .unwrap();
    }
    gw.stop().await;
    server.abort();
}

/// A gateway routing `/db` to the upstream at `addr` (a hand-made server), probing its health
/// only at start.
async fn gateway_to_raw_upstream(addr: std::net::SocketAddr) -> Gateway {
    let mut c = config(vec![tansu_gateway::Route {
        prefix: "/db".into(),
        upstreams: vec![format!("http://{addr}")],
    }]);
    c.upstream.health_interval_ms = 600_000;
    Gateway::start(c).await
}
