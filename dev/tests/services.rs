//! Every service, served on its own ephemeral port, answers the common endpoints the same way:
//! liveness, readiness, Prometheus metrics, and problem+json for unknown paths.

use axum::Router;
use tansu_shared::testing::TestServer;

async fn routers(data_dir: &std::path::Path) -> Vec<(&'static str, Router)> {
    vec![
        (
            "identity",
            tansu_identity::router(
                tansu_identity::AppState::new(tansu_identity::Config {
                    data_dir: data_dir.join("identity"),
                    dev_mode: true,
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
        ),
        (
            "database",
            tansu_database::router(
                tansu_database::AppState::new(tansu_database::Config {
                    data_dir: data_dir.join("database"),
                    ..Default::default()
                })
                .await
                .expect("database state"),
            ),
        ),
        (
            "storage",
            tansu_storage::router(
                tansu_storage::AppState::new(tansu_storage::Config {
                    data_dir: data_dir.join("storage"),
                    ..Default::default()
                })
                .await
                .unwrap(),
            ),
        ),
        (
            "dashboard",
            tansu_dashboard::router(
                tansu_dashboard::AppState::new(tansu_dashboard::Config::default()).unwrap(),
            ),
        ),
    ]
}

#[tokio::test]
async fn health_metrics_and_problem_404_on_every_service() {
    let http = reqwest::Client::new();
    let data_dir = tempfile::tempdir().unwrap();
    for (name, router) in routers(data_dir.path()).await {
        let server = TestServer::start(router).await;

        let live = http.get(server.url("/health/live")).send().await.unwrap();
        assert_eq!(live.status(), 200, "{name} live");

        let ready = http.get(server.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{name} ready");
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["service"], name);
        assert_eq!(body["status"], "ready");
        assert!(
            ready_request_id_is_set(&http, &server).await,
            "{name} sets X-Request-Id"
        );

        let missing = http.get(server.url("/no/such/path")).send().await.unwrap();
        assert_eq!(missing.status(), 404, "{name}");
        assert_eq!(
            missing.headers()["content-type"],
            "application/problem+json"
        );

        let metrics = http.get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains(&format!("service=\"{name}\"")) && text.contains("http_requests_total"),
            "{name} metrics: {text}"
        );
        server.stop().await;
    }
}

async fn ready_request_id_is_set(http: &reqwest::Client, server: &TestServer) -> bool {
    let generated = http.get(server.url("/health/live")).send().await.unwrap();
    let propagated = http
        .get(server.url("/health/live"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    generated.headers().contains_key("x-request-id")
        && propagated.headers()["x-request-id"] == "req-123"
}
