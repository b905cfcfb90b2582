//! SIGHUP reloads the certificate at once (its own test binary: the signal goes to the process).

mod common;

use std::time::Duration;

use common::*;

fn send_sighup_to_self() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    // Our own handler first, so the signal can never take the default action (exit), whenever
    // the gateway's handler is installed.
    let _hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let a = echo("db").await;
    let mut c = config(vec![route("/db", &[&a])]);
    c.tls_reload_interval_ms = 3_600_000; // polling out of the picture
    let gw = Gateway::start(c).await;

    let next = self_signed();
    std::fs::write(gw.key_path(), &next.key_pem).unwrap();
    std::fs::write(gw.cert_path(), &next.cert_pem).unwrap();
    let (pem, addr, url) = (next.cert_pem.clone(), gw.https, gw.url("/db/x"));
    // Signalled on every attempt, in case the first one came before the gateway's handler.
    let ok = |s: reqwest::StatusCode| s.is_success();
    eventually_answers(
        "the new certificate is served",
        Duration::from_secs(5),
        &url,
        ok,
        || {
            send_sighup_to_self();
            client_for(&pem, addr, false)
        },
    )
    .await;
    gw.stop().await;
}
