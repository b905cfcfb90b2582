//! The whole platform in one process, through the TLS gateway, as `tansu up` runs it.

use std::time::Duration;

use tansu_dev::{Stack, StackOptions};

fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn started(dir: &std::path::Path) -> Stack {
    let mut stack = Stack::start(StackOptions::for_tests(dir)).await.unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    stack
}

#[tokio::test]
async fn gateway_health_reports_every_service_ready_and_restart_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let stack = started(dir.path()).await;
    let http = client_trusting(&stack.certificate_pem);
    let base = format!("https://{}", stack.gateway);

    let resp = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    for service in ["identity", "database", "storage", "dashboard"] {
        assert!(
            body.contains(service),
            "{service} missing from /health: {body}"
        );
    }

    // Each route reaches its service (prefix stripped by the gateway). Readiness details stay
    // internal (`tests/public_surface.rs`); liveness is public.
    for prefix in ["identity", "db", "storage", "dashboard"] {
        let resp = http
            .get(format!("{base}/{prefix}/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/{prefix}/health/live");
    }

    let first_cert = stack.certificate_pem.clone();
    stack.shutdown().await.unwrap();

    // A second start on the same data dir reuses the certificate (and every store in it).
    let stack = started(dir.path()).await;
    assert_eq!(stack.certificate_pem, first_cert);
    let http = client_trusting(&stack.certificate_pem);
    let resp = http
        .get(format!("https://{}/health", stack.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    stack.shutdown().await.unwrap();
}

#[tokio::test]
async fn chromium_reaches_the_gateway_over_tls() {
    let Some(browser) = tansu_shared::testing::chromium("stack_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stack = started(dir.path()).await;
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(browser)
        .args(tansu_shared::testing::CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--ignore-certificate-errors")
        .arg("--dump-dom")
        .arg(format!("https://{}/health", stack.gateway))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("chromium finished within 60 s")
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("identity") && dom.contains("ready"),
        "DOM: {dom}"
    );
    stack.shutdown().await.unwrap();
}
