//! A load benchmark (ignored by default): document get and insert through the service's HTTP
//! API at 32 concurrent connections, next to the same statements run directly with sqlx on
//! the same tenant database in the same run, so the results read as ratios.
//!
//! ```text
//! TANSU_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo test -p tansu-database --test bench -- --ignored --nocapture
//! ```
//!
//! The service path does more than the direct one per insert (token verification, tenant and
//! scope checks, collection check, version, change-outbox row in the same transaction).

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::json;
use sqlx::types::Json;

const T: uuid::Uuid = TENANT_A;
const CONNS: usize = 32;
const RUN: Duration = Duration::from_secs(4);
const DOCS: u64 = 1000;

/// Runs `op(i)` from `CONNS` workers for `RUN`; returns operations per second.
async fn load<F, Fut>(op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + RUN;
    let workers: Vec<_> = (0..CONNS)
        .map(|_| {
            let (op, done, counter) = (op.clone(), done.clone(), counter.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    assert!(op(i).await, "operation failed");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_get_and_insert() {
    let tweak = |c: &mut tansu_database::Config| {
        c.tenant_pool_size = 8;
    };
    let mut rows = Vec::new();
    for env in envs_with("database bench", tweak).await {
        let n = env.name;
        let d = env.provision(T).await;
        env.create_collection(T, "b").await;
        let docs: Vec<_> = (0..DOCS)
            .map(|i| json!({"id": format!("d{i}"), "data": {"n": i, "name": format!("doc {i}")}}))
            .collect();
        let resp = env
            .as_tenant(Method::POST, "/api/collections/b/bulk", T)
            .json(&json!({ "documents": docs }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);

        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNS)
            .build()
            .unwrap();
        let token = env.rw(T);
        let base = env.url("/api/collections/b");
        let get = {
            let (http, token, base) = (http.clone(), token.clone(), base.clone());
            load(move |i| {
                let r = http
                    .get(format!("{base}/documents/d{}", i % DOCS))
                    .bearer_auth(&token)
                    .header("x-tansu-tenant", T.to_string())
                    .send();
                async move { r.await.map(|r| r.status() == 200).unwrap_or(false) }
            })
            .await
        };
        let insert = {
            let (http, token, base) = (http.clone(), token.clone(), base.clone());
            load(move |i| {
                let r = http
                    .post(format!("{base}/documents"))
                    .bearer_auth(&token)
                    .header("x-tansu-tenant", T.to_string())
                    .json(&json!({"n": i, "name": "inserted"}))
                    .send();
                async move { r.await.map(|r| r.status() == 201).unwrap_or(false) }
            })
            .await
        };

        // The same statements directly with sqlx on the same database.
        let database = d["database"].as_str().unwrap().to_owned();
        let (direct_get, direct_insert) = match &env.store {
            Store::Sqlite(dir) => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join("tenants").join(&database))
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10));
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts)
                    .await
                    .unwrap();
                direct(pool).await
            }
            Store::Postgres { admin_url, .. } => {
                let mut url = url::Url::parse(admin_url).unwrap();
                url.set_path(&format!("/{database}"));
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(8)
                    .connect(url.as_str())
                    .await
                    .unwrap();
                direct(pool).await
            }
        };
        rows.push(format!(
            "| {n} | get | {get:.0} | {direct_get:.0} | {:.2} |\n| {n} | insert | {insert:.0} | {direct_insert:.0} | {:.2} |",
            get / direct_get,
            insert / direct_insert
        ));
        env.finish().await;
    }
    println!(
        "\n{CONNS} concurrent clients, {RUN:?} each\n\n| store | op | service req/s | direct sqlx ops/s | ratio |\n|---|---|---|---|---|\n{}",
        rows.join("\n")
    );
}

macro_rules! direct_impl {
    ($pool:ty) => {
        impl Direct for $pool {
            async fn run(self) -> (f64, f64) {
                let pool = self.clone();
                let get = load(move |i| {
                    let pool = pool.clone();
                    async move {
                        let row: Option<(Json<serde_json::Value>, i64)> = sqlx::query_as(
                            "SELECT body, version FROM documents WHERE collection = $1 AND id = $2",
                        )
                        .bind("b")
                        .bind(format!("d{}", i % DOCS))
                        .fetch_optional(&pool)
                        .await
                        .unwrap();
                        row.is_some()
                    }
                })
                .await;
                let pool = self.clone();
                let insert = load(move |i| {
                    let pool = pool.clone();
                    async move {
                        sqlx::query(
                            "INSERT INTO documents (collection, id, body, version, created_at, updated_at)
                             VALUES ($1, $2, $3, 1, 0, 0)",
                        )
                        .bind("b")
                        .bind(format!("direct-{i}"))
                        .bind(Json(json!({"n": i, "name": "inserted"})))
                        .execute(&pool)
                        .await
                        .is_ok()
                    }
                })
                .await;
                (get, insert)
            }
        }
    };
}

trait Direct {
    fn run(self) -> impl Future<Output = (f64, f64)> + Send;
}
direct_impl!(sqlx::SqlitePool);
direct_impl!(sqlx::PgPool);

async fn direct(pool: impl Direct) -> (f64, f64) {
    pool.run().await
}
