//! The pool policy of `tansu_shared::db` against a real PostgreSQL (`TANSU_TEST_DATABASE_URL`):
//! a connection whose server end went away while it sat idle is checked and replaced, so the
//! caller never sees it.

use std::time::Duration;

use sqlx::{PgPool, Postgres};
use tansu_shared::db::pool_options_checking_after;
use tansu_shared::testing::postgres_url;

/// The backend process id of the pool's one connection.
async fn backend(pool: &PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
}

/// Ends the backend `pid` from a connection outside the pool.
async fn terminate(admin: &PgPool, pid: i32) {
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .expect("pg_terminate_backend");
    assert!(ended, "backend {pid} did not end");
}

#[tokio::test]
async fn an_idle_connection_whose_backend_ended_is_replaced() {
    let Some(url) = postgres_url("db_pool") else {
        return;
    };
    let admin = PgPool::connect(&url).await.expect("admin pool");

    // Checked on every acquire: the dead connection is noticed and replaced.
    let checked = pool_options_checking_after::<Postgres>(1, Duration::ZERO)
        .connect(&url)
        .await
        .expect("pool");
    let first = backend(&checked).await.expect("first query");
    terminate(&admin, first).await;
    let second = backend(&checked)
        .await
        .expect("the check replaced the dead connection");
    assert_ne!(first, second, "a new backend serves the pool");

    // sqlx's own check (a round trip on every acquire) is off; only the idle rule applies.
    assert!(!tansu_shared::db::pool_options::<Postgres>(1).get_test_before_acquire());
}
