//! The database kit of the services that keep one (identity, database-svc, storage-svc): one
//! [`Pool`] over either dialect, one way to connect to it ([`connect`], [`PoolSettings`]: WAL
//! SQLite or a sized PostgreSQL pool) and one migration layout ([`Migrations`]).
//!
//! **Both dialects, one query text.** `$n` placeholders work in SQLite too, so a service writes
//! a statement once and runs it through [`on_pool!`](crate::on_pool), which type-checks the body
//! once per dialect. Where the dialects really differ (how a writing transaction serialises,
//! JSON paths, `BLOB` vs `BYTEA` in the schema), the two spellings sit next to each other.
//!
//! **Migrations.** Every service keeps its schema as numbered files, side by side per dialect:
//! `migrations/sqlite/0001_<what>.sql` and `migrations/postgres/0001_<what>.sql` (a service
//! with several schemas, like database-svc's catalog and tenant databases, has one such pair
//! per schema under `migrations/<schema>/`). The two folders hold the same file names; a unit
//! test of this module fails when they drift.

mod migrations;
mod pool;

pub use migrations::{Migrations, migration_folders_drift};
pub use pool::{
    CHECK_AFTER_IDLE, DbError, Durability, PoolSettings, PostgresSettings, STARTUP_WAIT,
    SqliteSettings, connect, connect_and_migrate, is_unavailable, is_unreachable, pool_options,
    pool_options_checking_after, sqlite_options, while_unreachable,
};

use sqlx::{PgPool, SqlitePool};

/// Which SQL dialect a pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool of either dialect. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the concrete pool of a [`Pool`] (or `&Pool`). The body is
/// duplicated per dialect, so the same query text and row decoding type-check for both.
#[macro_export]
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub use crate::on_pool;

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A cheap round trip, for readiness probes.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (it takes the write lock up front, so two
/// writers never deadlock upgrading read locks, and a transaction that reads before it writes
/// is serialised), a plain `BEGIN` on PostgreSQL (row locks order its writers).
pub trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}
