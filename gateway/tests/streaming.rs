//! Bodies stream through the gateway: a 1 GiB upload and a 1 GiB download never sit in memory.
//!
//! Alone in its own test binary so the process's peak resident memory (VmHWM) measures this
//! test only; the client, the gateway and the upstream all run in it, so the bound holds for
//! the gateway a fortiori.

mod common;

// The allocator the `tansu-gateway` binary ships with (gateway/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::body::Body;
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use tansu_shared::testing::http::SendOk;

const CHUNK: usize = 1024 * 1024;
const CHUNKS: usize = 1024; // 1 GiB

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn stream_of_chunks() -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync {
    let chunk = Bytes::from(vec![0x5au8; CHUNK]);
    futures::stream::iter((0..CHUNKS).map(move |_| Ok(chunk.clone())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_streams_both_ways_in_bounded_memory() {
    let upstream = tansu_shared::testing::TestServer::start(
        axum::Router::new()
            .route(
                "/upload",
                axum::routing::post(|body: Body| async move {
                    let mut n = 0u64;
                    let mut s = body.into_data_stream();
                    while let Some(chunk) = s.next().await {
                        match chunk {
                            Ok(c) => n += c.len() as u64,
                            Err(_) => return Err(axum::http::StatusCode::BAD_REQUEST),
                        }
                    }
                    Ok(n.to_string())
                }),
            )
            .route(
                "/download",
                axum::routing::get(|| async { Body::from_stream(stream_of_chunks()) }),
            )
            .merge(tansu_shared::health::Health::new("storage").router()),
    )
    .await;
    let mut c = config(vec![route("/storage", &[&upstream])]);
    c.route_settings = vec![tansu_gateway::RouteSettings {
        prefix: "/storage".into(),
        max_body_bytes: Some(2 * 1024 * 1024 * 1024),
        verify_tokens: None,
    }];
    c.limits.request_timeout_ms = 120_000;
    let gw = Gateway::start(c).await;
    let client = client_for(&gw.cert.cert_pem, gw.https, false);
    let before = rss_kib("VmRSS:");

    let resp = client
        .post(gw.url("/storage/upload"))
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(
            stream_of_chunks().map(|r| r.map(hyper::body::Frame::data)),
        )))
        .send_ok()
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), (CHUNK * CHUNKS).to_string());

    let resp = client.get(gw.url("/storage/download")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    let mut n = 0usize;
    let mut resp = resp;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, CHUNK * CHUNKS);

    let peak = rss_kib("VmHWM:");
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "resident before {} MiB, peak {} MiB",
        before / 1024,
        peak / 1024
    );
    assert!(
        grown_mib < 64,
        "peak resident memory grew by {grown_mib} MiB"
    );
    gw.stop().await;
}
