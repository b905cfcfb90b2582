//! Graceful shutdown of a service binary, as an orchestrator stops it: after SIGTERM a request
//! in flight still gets its answer and the process then exits on its own; new connections are
//! refused from the signal on; a request that outlives `TANSU_DRAIN_SECS` does not keep the
//! process alive. The gateway binary is the subject: its requests can be held open by an
//! upstream this test controls (every service binary shares the same `service_main`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tansu_shared::testing::processes::{Replica, bin_dir, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const SUITE: &str = "graceful shutdown of a service binary";

/// An upstream that answers its health probes at once and hands every other request's
/// connection to the test, which answers it when it chooses.
async fn held_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with(b"GET /health") {
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
                let _ = tx.send(conn);
            });
        }
    });
    (addr, rx)
}

fn gateway(dir: &Path, upstream: SocketAddr, drain_secs: u64) -> Replica {
    let cert = tansu_dev::tls::ensure_dev_certificate(&dir.join("tls")).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = format!(
        r#"
[gateway]
listen_https = "{addr}"
listen_http = ""
listen_internal = ""
tls_cert = "{cert}"
tls_key = "{key}"
dev_mode = true
routes = [{{ prefix = "/held", upstreams = ["http://{upstream}"] }}]
"#,
        cert = cert.cert_path.display(),
        key = cert.key_path.display(),
    );
    let path = dir.join(format!("gateway-{drain_secs}.toml"));
    std::fs::write(&path, config).unwrap();
    Replica::new(
        "gateway",
        &format!("gateway-drain-{drain_secs}"),
        addr,
        path,
        vec![("TANSU_DRAIN_SECS".into(), drain_secs.to_string())],
        dir,
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Starts `gw`, then a request through it that the upstream holds; returns the request.
async fn held_request(
    gw: &mut Replica,
    held: &mut mpsc::UnboundedReceiver<TcpStream>,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    TcpStream,
) {
    let http = client();
    gw.start();
    let base = format!("https://{}", gw.addr);
    gw.wait_ready(&http, &format!("{base}/health"), Duration::from_secs(30))
        .await;
    let request = tokio::spawn(http.get(format!("{base}/held/slow")).send());
    let conn = tokio::time::timeout(Duration::from_secs(20), held.recv())
        .await
        .expect("the request reaches the upstream")
        .unwrap();
    (request, conn)
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_within_the_bound() {
    if !bin_dir().join("tansu-gateway").exists() {
        let _: Option<()> = tansu_shared::testing::skip_or_fail(
            SUITE,
            "the service binaries are not built (cargo build --workspace --bins)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (upstream, mut held) = held_upstream().await;

    // A request in flight at SIGTERM gets its answer; then the process exits by itself.
    let mut gw = gateway(dir.path(), upstream, 30);
    let (request, mut conn) = held_request(&mut gw, &mut held).await;
    let signalled = Instant::now();
    gw.terminate();
    // From the signal on, new connections are refused (the signal is asynchronous: wait for it).
    let refused_by = Instant::now() + Duration::from_secs(20);
    let connects = || tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(gw.addr));
    while !matches!(connects().await, Ok(Err(_))) {
        assert!(
            Instant::now() < refused_by,
            "still accepting after SIGTERM:\n{}",
            gw.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "shutdown: new connections refused {:?} after SIGTERM",
        signalled.elapsed()
    );
    conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ndrained")
        .await
        .unwrap();
    let answer = request
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the in-flight request is answered: {e}\n{}", gw.log_tail()));
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "drained");
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("still running after its drain:\n{}", gw.log_tail()));
    assert!(status.success(), "{status}:\n{}", gw.log_tail());
    println!("shutdown: the request in flight at SIGTERM was answered, then the gateway exited");

    // A request that outlives the drain bound (1 s) does not keep the process alive.
    let mut gw = gateway(dir.path(), upstream, 1);
    let (request, _conn) = held_request(&mut gw, &mut held).await;
    let signalled = Instant::now();
    gw.terminate();
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("still running 20 s after SIGTERM:\n{}", gw.log_tail()));
    let took = signalled.elapsed();
    assert!(status.success(), "{status}:\n{}", gw.log_tail());
    assert!(
        took >= Duration::from_secs(1),
        "stopped before the drain bound: {took:?}"
    );
    let cut = request.await.unwrap();
    assert!(
        cut.is_err() || cut.as_ref().is_ok_and(|r| r.status().is_server_error()),
        "the held request was cut: {cut:?}"
    );
    println!(
        "shutdown: with TANSU_DRAIN_SECS=1 the gateway stopped {took:?} after SIGTERM, request in flight"
    );
}
