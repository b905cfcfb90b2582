//! `/metrics` is served on the internal listener only, never through the public ones.

mod common;

use common::*;
use tansu_shared::testing::http::SendOk;

#[tokio::test]
async fn metrics_are_served_on_the_internal_listener_only() {
    let db = echo("db").await;
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal_addr = internal.local_addr().unwrap();
    let parts = tansu_gateway::Parts {
        internal_listener: Some(internal),
        ..Default::default()
    };
    let gw = Gateway::start_with_parts(config(vec![route("/db", &[&db])]), parts).await;
    let client = gw.client();
    for _ in 0..3 {
        let r = client.get(gw.url("/db/x")).send_ok().await;
        assert_eq!(r.status(), 200);
    }

    // Public HTTPS: `/metrics` is an ordinary unrouted path (404 problem), whatever the host.
    for url in [
        gw.url("/metrics"),
        gw.host_url("acme.tansu.test", "/metrics"),
    ] {
        let r = client.get(&url).send_ok().await;
        assert_eq!(r.status(), 404, "{url}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("gateway_requests_total"), "{body}");
    }
    // Public plain HTTP: a redirect to HTTPS, never the metrics.
    let r = client
        .get(format!("http://127.0.0.1:{}/metrics", gw.http.port()))
        .send_ok()
        .await;
    assert_eq!(r.status(), 308);
    assert!(!r.text().await.unwrap().contains("gateway_requests_total"));

    // Internal listener: the counters, including the requests above.
    let r = reqwest::get(format!("http://{internal_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let count = |class: &str| -> u64 {
        let prefix = format!("gateway_requests_total{{class=\"{class}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {class} line in {text}"))
            .parse()
            .unwrap()
    };
    assert!(count("2xx") >= 3, "{text}");
    assert!(count("4xx") >= 2, "{text}");
    assert!(
        text.contains("gateway_upstream_available{route=\"/db\",instance=\"0\"} 1"),
        "{text}"
    );
    // Nothing else is proxied there.
    let r = reqwest::get(format!("http://{internal_addr}/db/x"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}
