//! The repository layer: one [`Store`] over SQLite (embedded default, one WAL-mode file) or
//! PostgreSQL (production).
//!
//! Both dialects share the query text wherever SQL allows it: parameters are written `$1, $2…`
//! (sqlx binds SQLite's `$N` by number too), ids are UUIDv7 strings, times are UTC unix
//! milliseconds in `BIGINT`, list values are JSON text. Only the migrations differ (`BLOB` vs
//! `BYTEA`), kept side by side in `migrations/sqlite` and `migrations/postgres`. Queries are plain
//! functions (no `query!` macros), so the crate builds without a live database.
//!
//! Every method that queries is a span (`db <method>`, kind client, with `db.system` and
//! `db.operation.name`): a child of the request's span in traces. Spans carry no statement
//! values, so no secret or token reaches them.

pub mod account;
pub mod clients;
pub mod devices;
pub mod events;
pub mod federation;
pub mod grants;
pub mod invitations;
pub mod keys;
pub mod lease;
pub mod limits;
pub mod lockout;
pub mod mail;
pub mod mfa;
pub mod passkeys;
pub mod providers;
pub mod registration;
pub mod revocations;
pub mod roles;
pub mod sealed;
pub mod tenants;
pub mod users;
pub mod vault;
pub mod verifications;

use std::sync::Arc;

use sqlx::{PgPool, SqlitePool};
use tansu_shared::db::{self, DbError, Migrations, Pool, PoolSettings, PostgresSettings};

/// The schema, both dialects side by side.
static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/sqlite"),
    postgres: sqlx::migrate!("migrations/postgres"),
};

/// A database error, or a stored value that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Whether `e` is a [`StoreError`] saying the database is away for now (a caller generic over
/// its error answers 503 for it, not 500).
pub fn is_unavailable<E: 'static>(e: &E) -> bool {
    (e as &dyn std::any::Any)
        .downcast_ref::<StoreError>()
        .is_some_and(StoreError::is_unavailable)
}

impl StoreError {
    /// The database is away for now (see [`tansu_shared::db::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Db(e) if tansu_shared::db::is_unavailable(e))
    }

    /// A unique constraint was violated (duplicate key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a browser an account signed in from stays known without another sign-in (the
/// device cookie's lifetime, 400 days).
pub const DEVICE_MEMORY_MS: i64 = 400 * 86_400_000;

/// The identity service's database. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub enum Store {
    /// The pool and the process's turn to write (see [`Store::serial_write`]).
    Sqlite(SqlitePool, Arc<tokio::sync::Mutex<()>>),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of either dialect. The body is
/// duplicated per dialect, so the same query text and row decoding type-check for both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool, _) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The placeholders of `rows` rows of `width` parameters each, numbered from `$first`:
/// `($1, $2), ($3, $4)` for (1, 2, 2). For multi-row `INSERT … VALUES`.
pub(crate) fn placeholders(first: usize, width: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(rows * width * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..width {
            let sep = if col == 0 { "" } else { ", " };
            let _ = std::fmt::Write::write_fmt(
                &mut sql,
                format_args!("{sep}${}", first + row * width + col),
            );
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies the migrations; a
    /// PostgreSQL pool of the configuration's default size.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, crate::config::default_database_max_connections()).await
    }

    /// [`Store::connect`] with at most `max_connections` PostgreSQL connections (SQLite keeps
    /// 8: one writer at a time, readers in WAL mode). The settings are the workspace's
    /// ([`tansu_shared::db`]): WAL, `synchronous = NORMAL`, foreign keys, 10 s timeouts.
    pub async fn connect_with(url: &str, max_connections: u32) -> StoreResult<Self> {
        let settings = PoolSettings {
            postgres: PostgresSettings {
                max_connections,
                ..PostgresSettings::default()
            },
            ..PoolSettings::default()
        };
        let pool = match db::connect_and_migrate(url, &settings, &MIGRATIONS).await {
            Ok(pool) => pool,
            Err(DbError::Db(e)) => return Err(e.into()),
            Err(DbError::Migrate(e)) => return Err(e.into()),
            Err(e @ DbError::UnsupportedUrl) => return Err(StoreError::Corrupt(e.to_string())),
        };
        Ok(match pool {
            Pool::Sqlite(pool) => Store::Sqlite(pool, Arc::default()),
            Pool::Postgres(pool) => Store::Postgres(pool),
        })
    }

    /// On SQLite, this process's turn to write: write transactions queue here, in order,
    /// instead of meeting at SQLite's lock, whose busy handler sleeps in growing steps (up to
    /// 100 ms) between tries — hundreds of milliseconds of tail latency, and an idle lock,
    /// under concurrent refreshes. Taken before `begin`, held until the transaction ends; a
    /// transaction must not call another store method that takes it. `None` on PostgreSQL
    /// (row locks order its writers).
    pub(crate) async fn serial_write(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self {
            Store::Sqlite(_, turn) => Some(turn.lock().await),
            Store::Postgres(_) => None,
        }
    }

    /// A cheap round trip, for the readiness probe.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db ping", otel.kind = "client", db.system = self.dialect(), db.operation.name = "ping"))]
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Forgets state nobody can use any more: expired revocations, client assertions and
    /// invitations, and codes, sessions and refresh token families dead for a day (the slack keeps recent
    /// history for diagnosis). Failures are logged; returns how many rows went.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_expired", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_expired"))]
    pub async fn purge_expired(&self, now: i64) -> u64 {
        let day_ago = now - 86_400_000;
        let results = [
            ("token revocations", self.purge_revoked_tokens(now).await),
            ("client assertions", self.purge_client_assertions(now).await),
            ("authorization codes", self.purge_codes(day_ago).await),
            ("sessions", self.purge_sessions(day_ago).await),
            (
                "sign-in failure counters",
                self.purge_login_failures(day_ago, now).await,
            ),
            ("request limits", self.purge_request_limits(day_ago).await),
            (
                "known browsers",
                self.purge_devices(now - DEVICE_MEMORY_MS).await,
            ),
            ("pending sign-ins", self.purge_login_steps(now).await),
            (
                "sign-ins through providers",
                self.purge_federation_pending(now).await,
            ),
            (
                "passkey ceremonies",
                self.purge_passkey_ceremonies(now).await,
            ),
            ("invitations", self.purge_invitations(now).await),
            (
                "refresh token families",
                self.purge_refresh_state(day_ago).await,
            ),
        ];
        let mut total = 0;
        for (what, result) in results {
            match result {
                Ok(n) => total += n,
                Err(e) => tracing::warn!(error = %e, what, "purge failed"),
            }
        }
        if total > 0 {
            tracing::debug!(purged = total, "expired state removed");
        }
        total
    }

    pub fn dialect(&self) -> &'static str {
        match self {
            Store::Sqlite(..) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Now, as UTC unix milliseconds (the workspace's one clock).
pub use tansu_shared::clock::now_ms;

/// A fresh UUIDv7 as its canonical string.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_after_each_other() {
        assert_eq!(placeholders(1, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(9, 3, 1), "($9, $10, $11)");
        assert_eq!(placeholders(1, 3, 0), "");
    }
}
