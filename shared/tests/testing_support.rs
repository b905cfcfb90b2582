//! The test-support conventions themselves: a fresh PostgreSQL database per test (skipped
//! locally without `TANSU_TEST_DATABASE_URL`, required in CI), and the Chromium guard.

use sqlx::Connection;
use tansu_shared::testing::{TestDatabase, chromium};

#[tokio::test]
async fn postgres_test_database_is_fresh_and_dropped() {
    let Some(db) = TestDatabase::create("postgres_test_database").await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(name.starts_with("tansu_t_"), "{name}");
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a fresh database has no tables");
    conn.close().await.unwrap();
    let url = db.url.clone();
    db.drop_db().await;
    assert!(sqlx::PgConnection::connect(&url).await.is_err(), "dropped");
}

#[tokio::test]
async fn chromium_renders_a_local_page() {
    let Some(browser) = chromium("chromium_smoke") else {
        return;
    };
    let server = tansu_shared::testing::TestServer::start(axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<html><body><p id=x>tansu-ok</p><script>document.getElementById('x').textContent += '-js';</script></body></html>")
        }),
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/");
    let out = tokio::process::Command::new(browser)
        .args(tansu_shared::testing::CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", dir.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("chromium finished within 60 s")
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("tansu-ok-js"),
        "DOM: {dom}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
