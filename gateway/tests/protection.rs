//! Protection: header and connection limits, slow and idle clients, WebSocket-style upgrades.

mod common;

use std::time::Duration;

use common::*;
use tansu_shared::testing::http::SendOk;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn oversized_headers_are_refused() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.limits.max_header_bytes = 8192;
    let gw = Gateway::start(c).await;
    let resp = gw
        .http1_client()
        .get(gw.url("/db/x"))
        .header("x-big", "a".repeat(20_000))
        .send()
        .await;
    // hyper answers 431 (or closes the connection) before the request reaches a service.
    match resp {
        Ok(r) => assert_eq!(r.status().as_u16(), 431),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    // A normal request still works.
    echo_of(gw.client().get(gw.url("/db/x")).send_ok().await).await;
    gw.stop().await;
}

#[tokio::test]
async fn slow_and_idle_clients_are_disconnected() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.limits.header_read_timeout_ms = 300;
    c.limits.idle_timeout_ms = 500;
    let gw = Gateway::start(c).await;

    // Slowloris: half a request head, then nothing.
    let mut slow = raw_tls(&gw).await.unwrap();
    slow.write_all(b"GET /db/x HTTP/1.1\r\nHost: localhost\r\nX-A: ")
        .await
        .unwrap();
    slow.flush().await.unwrap();
    read_until_closed(&mut slow, Duration::from_secs(5)).await;

    // Idle: a TLS connection that never sends a request.
    let mut idle = raw_tls(&gw).await.unwrap();
    read_until_closed(&mut idle, Duration::from_secs(5)).await;

    // Keep-alive connection idle after a response.
    let mut kept = raw_tls(&gw).await.unwrap();
    kept.write_all(b"GET /db/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let out = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    gw.stop().await;
}

/// Reads one response with a `Content-Length` body (bounded by 5 s); returns its head.
async fn read_response<R: tokio::io::AsyncRead + Unpin>(io: &mut R) -> String {
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("a Content-Length");
                if out.len() >= end + 4 + length {
                    return head;
                }
            }
            let n = io.read(&mut buf).await.expect("reading the response");
            assert!(n > 0, "closed before the response ended");
            out.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a response in time")
}

/// A keep-alive connection waits for its next request for the idle timeout: the head timeout
/// starts at a head's first byte, not when the previous response ended.
#[tokio::test]
async fn keep_alive_connections_wait_for_the_idle_timeout() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.limits.header_read_timeout_ms = 200;
    c.limits.idle_timeout_ms = 10_000;
    let gw = Gateway::start(c).await;
    let mut kept = raw_tls(&gw).await.unwrap();
    for _ in 0..2 {
        kept.write_all(b"GET /db/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let head = read_response(&mut kept).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        // Idle for three head timeouts: what is measured here, not a synchronisation.
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // A head started and left unfinished is still cut at the head timeout.
    kept.write_all(b"GET /db/x HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    kept.flush().await.unwrap();
    read_until_closed(&mut kept, Duration::from_secs(5)).await;
    gw.stop().await;
}

#[tokio::test]
async fn concurrent_connections_are_capped() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.limits.max_connections = 1;
    // Whatever the harness left open is closed soon.
    c.limits.idle_timeout_ms = 1_000;
    let gw = Gateway::start(c).await;
    // The harness's readiness client may still hold the one slot: wait until we get it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut held = loop {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(500), raw_tls(&gw)).await {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no connection slot");
    };
    // A second client is not served while the first holds the only slot.
    let second = tokio::time::timeout(Duration::from_millis(500), raw_tls(&gw)).await;
    assert!(second.is_err(), "the second handshake waits");
    // Once the first leaves, the next client is served.
    held.shutdown().await.ok();
    drop(held);
    let url = gw.url("/db/x");
    eventually_answers(
        "slot released",
        Duration::from_secs(5),
        &url,
        |s| s == 200,
        || gw.client(),
    )
    .await;
    gw.stop().await;
}

/// An upstream that switches to an echo protocol on `Upgrade: echo` (as a WebSocket would).
async fn upgrade_upstream() -> tansu_shared::testing::TestServer {
    use axum::extract::Request;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    async fn handler(mut req: Request) -> axum::response::Response {
        if req
            .headers()
            .get(header::UPGRADE)
            .is_none_or(|v| v != "echo")
        {
            return (StatusCode::BAD_REQUEST, "upgrade required").into_response();
        }
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = hyper_util::rt::TokioIo::new(up);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [(header::UPGRADE, "echo"), (header::CONNECTION, "upgrade")],
        )
            .into_response()
    }
    tansu_shared::testing::TestServer::start(
        axum::Router::new()
            .fallback(handler)
            .merge(tansu_shared::health::Health::new("ws").router()),
    )
    .await
}

#[tokio::test]
async fn upgrades_pass_through() {
    let ws = upgrade_upstream().await;
    let gw = Gateway::start(config(vec![route("/ws", &[&ws])])).await;
    let mut io = raw_tls(&gw).await.unwrap();
    io.write_all(
        b"GET /ws/socket HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let read_head = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if io.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_head)
        .await
        .unwrap();
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    let echoed = tokio::time::timeout(Duration::from_secs(5), async {
        io.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.unwrap();
        buf
    })
    .await
    .unwrap();
    assert_eq!(&echoed, b"ping");
    gw.stop().await;
}
