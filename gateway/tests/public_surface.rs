//! The services' internal paths (`internal_paths`: `/metrics`, `/health/ready`, identity's
//! tenant directory and event ingest) are never forwarded, however the path is spelled, while
//! the services themselves still serve them on their own listeners.

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tansu_shared::testing::http::SendOk;

const PREFIXES: [&str; 4] = ["/identity", "/db", "/storage", "/dashboard"];

/// What the gateway answered to a request sent exactly as written (no client-side URL
/// normalisation: `reqwest` would resolve `/./` itself).
struct Raw {
    status: u16,
    content_type: String,
    body: String,
}

async fn raw(gw: &Gateway, method: &str, target: &str) -> Raw {
    let tls = raw_tls(gw).await.expect("TLS connection");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, "localhost")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("an answer");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Raw {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Every way of spelling `{prefix}/metrics` that some server reads as that path.
fn spellings(prefix: &str) -> Vec<String> {
    let upper = prefix.to_ascii_uppercase();
    [
        "{p}/metrics",
        "{p}/metrics/",
        "{p}//metrics",
        "{p}/%6Detrics",
        "{p}/%6detrics",
        "{p}/%256Detrics",
        "{p}/METRICS",
        "{p}/Metrics",
        "{p}/./metrics",
        "{p}/%2e/metrics",
        "{p}/x/../metrics",
        "{p}/x/%2E%2E/metrics",
        "{p}/x%2F..%2Fmetrics",
        "{p}/x%5C..%5Cmetrics",
        "{p}%2Fmetrics",
        "{p}/metrics;x=1",
        "{p}/metrics?x=1",
        "{p}/metrics/x",
        "/t/acme{p}/metrics",
        "/t/acme{p}//metrics/",
        "{P}/metrics",
        "{p}/health/ready",
        "{p}/health/ready/",
        "{p}/Health/%52eady",
    ]
    .iter()
    .map(|t| t.replace("{p}", prefix).replace("{P}", &upper))
    .collect()
}

#[tokio::test]
async fn internal_endpoints_are_not_public() {
    let upstreams = [
        echo("identity").await,
        echo("db").await,
        echo("storage").await,
        echo("dashboard").await,
    ];
    let routes = PREFIXES
        .iter()
        .zip(&upstreams)
        .map(|(p, u)| route(p, &[u]))
        .collect();
    let gw = Gateway::start(config(routes)).await;
    let http = reqwest::Client::new();

    // What an unrouted path answers: an internal one must not be told apart from it.
    let unrouted = raw(&gw, "GET", "/nowhere/metrics").await;
    assert_eq!(unrouted.status, 404);
    let unrouted: serde_json::Value = serde_json::from_str(&unrouted.body).unwrap();

    let mut checked = Vec::new();
    for (prefix, upstream) in PREFIXES.iter().zip(&upstreams) {
        // The service itself serves them (this is how Prometheus and the gateway reach it).
        for path in ["/metrics", "/health/ready"] {
            let direct = http.get(upstream.url(path)).send_ok().await;
            assert_eq!(direct.status(), 200, "{prefix}: upstream {path}");
        }
        let mut targets: Vec<(&str, String)> =
            spellings(prefix).into_iter().map(|t| ("GET", t)).collect();
        targets.push(("HEAD", format!("{prefix}/metrics")));
        targets.push(("POST", format!("{prefix}/metrics")));
        if *prefix == "/identity" {
            for t in [
                "/identity/admin/tenant-directory/acme",
                "/identity/admin/Tenant-Directory/acme",
                "/identity//admin/tenant-directory/acme/",
                "/t/acme/identity/admin/tenant-directory/acme",
            ] {
                targets.push(("GET", t.into()));
            }
            for t in [
                "/identity/admin/security-events/ingest",
                "/identity/admin/security-events/%69ngest",
            ] {
                targets.push(("POST", t.into()));
            }
        }
        for (method, target) in targets {
            let r = raw(&gw, method, &target).await;
            println!("{method} {target} -> {}", r.status);
            assert_eq!(r.status, 404, "{method} {target}: {}", r.body);
            assert_eq!(r.content_type, "application/problem+json", "{target}");
            if method != "HEAD" {
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(v["type"], unrouted["type"], "{target}");
                assert_eq!(v["detail"], unrouted["detail"], "{target}");
                assert!(!r.body.contains("instance"), "{target} reached the service");
            }
            checked.push(format!("{method} {target}"));
        }

        // Through the ordinary client (HTTP/2 by ALPN) alike.
        let resp = gw
            .client()
            .get(gw.url(&format!("{prefix}/metrics")))
            .send_ok()
            .await;
        problem_of(resp, 404).await;

        // The public paths around them still reach the service.
        for target in [
            format!("{prefix}/health/live"),
            format!("{prefix}/api/metrics"),
            format!("{prefix}/metricsx"),
            format!("{prefix}/health/readyz"),
            format!("/t/acme{prefix}/api/x"),
        ] {
            let r = raw(&gw, "GET", &target).await;
            assert_eq!(r.status, 200, "{target}: {}", r.body);
            checked.push(format!("GET {target} (public)"));
        }
    }
    println!(
        "checked {} requests:\n{}",
        checked.len(),
        checked.join("\n")
    );

    // The gateway's own health report stays public.
    let resp = gw.client().get(gw.url("/health")).send_ok().await;
    assert_eq!(resp.status(), 200);
    gw.stop().await;
}
