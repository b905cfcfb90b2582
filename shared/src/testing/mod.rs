//! In-process test support: run routers on ephemeral ports and the skip-or-require convention.
//!
//! Suites that need an external part (PostgreSQL, Chromium) call [`postgres_url`] or
//! [`chromium`]. Locally, when the part is missing, these print why the suite is skipped and
//! return `None`. With `TANSU_REQUIRE_ALL=1` (CI) they panic instead, so a suite can never
//! silently skip where it must run.

pub mod browser;
pub mod directory;
pub mod dpop;
pub mod http;
pub mod issuer;
pub mod matrix;
pub mod processes;
pub mod rp;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A router served on `127.0.0.1:<ephemeral>` until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        Self::start_on(listener, router)
    }

    /// Serves on a listener the caller bound (to know the address before building the router).
    pub fn start_on(listener: tokio::net::TcpListener, router: Router) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = crate::server::serve(listener, router, async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port>{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting, drains, and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `TANSU_REQUIRE_ALL=1`: suites that would skip must fail instead.
pub fn require_all() -> bool {
    std::env::var("TANSU_REQUIRE_ALL").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Skips (prints the reason, returns `None`) or, under `TANSU_REQUIRE_ALL=1`, panics.
pub fn skip_or_fail<T>(suite: &str, reason: &str) -> Option<T> {
    if require_all() {
        panic!("{suite}: {reason} (TANSU_REQUIRE_ALL=1 forbids skipping)");
    }
    eprintln!("SKIPPED {suite}: {reason}");
    None
}

/// The PostgreSQL server URL for store-backed suites (`TANSU_TEST_DATABASE_URL`).
pub fn postgres_url(suite: &str) -> Option<String> {
    match std::env::var("TANSU_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => skip_or_fail(suite, "TANSU_TEST_DATABASE_URL is not set"),
    }
}

/// A fresh, uniquely named PostgreSQL database for one test (`tansu_t_<uuid>`), created on the
/// server `TANSU_TEST_DATABASE_URL` points at. Call [`TestDatabase::drop_db`] at the end; CI
/// removes leftovers of failed runs (`.ci/run`).
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// `None` (skipped) when no PostgreSQL is configured, unless `TANSU_REQUIRE_ALL=1`.
    pub async fn create(suite: &str) -> Option<TestDatabase> {
        use sqlx::Connection;
        let admin_url = postgres_url(suite)?;
        let name = format!("tansu_t_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{suite}: cannot connect to {admin_url}: {e}"));
        // The name is generated here from a UUID: nothing external reaches the statement.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{suite}: CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(&admin_url).expect("TANSU_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            url: url.to_string(),
            name,
            admin_url,
        })
    }

    /// Drops the database (terminating leftover connections).
    pub async fn drop_db(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
    }
}

/// Debian's Chromium for browser suites (`TANSU_CHROMIUM` overrides the path).
pub fn chromium(suite: &str) -> Option<PathBuf> {
    let path = std::env::var_os("TANSU_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        Some(path)
    } else {
        skip_or_fail(suite, &format!("{} does not exist", path.display()))
    }
}

/// The flags every browser suite starts Chromium with (no network beyond loopback).
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The committed inputs of a fuzz target (`fuzz/corpus/<target>/`), by file name: the seeds and
/// every input fuzzing found a fault with. The tests replay them through the target's body
/// (`fuzzing` modules), so a fault once found stays fixed without a nightly compiler.
pub fn fuzz_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, data)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    inputs
}
