//! Connecting: the pool policy, SQLite's settings and PostgreSQL's sizing.
//!
//! sqlx's pools check every idle connection with a round trip before handing it out
//! (`test_before_acquire`, on by default): on PostgreSQL a `Sync` message and its
//! `ReadyForQuery`, on SQLite a message to the connection's worker thread and back. Under load a
//! connection went back to the pool microseconds earlier, so that check doubles the round trips
//! of every statement and finds nothing. [`pool_options`] checks only a connection that sat idle
//! for longer than [`CHECK_AFTER_IDLE`] (HikariCP's rule, its 500 ms bypass window widened to a
//! second): one that the server, a proxy or a firewall could have dropped in the meantime.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Database};

use super::{Migrations, Pool};

/// A connection idle for this long or longer is checked with a round trip before it is used.
pub const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool options with at most `max` connections, each checked before use only when it was idle
/// for [`CHECK_AFTER_IDLE`] or longer; one that fails the check is discarded and the caller gets
/// another (an open idle one or a new one).
pub fn pool_options<DB: Database>(max: u32) -> PoolOptions<DB> {
    pool_options_checking_after(max, CHECK_AFTER_IDLE)
}

/// [`pool_options`] with another idle threshold (`Duration::ZERO`: check every time).
pub fn pool_options_checking_after<DB: Database>(max: u32, idle: Duration) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max)
        .test_before_acquire(false)
        .before_acquire(move |conn: &mut DB::Connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= idle {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// How much a committed SQLite transaction survives. Both use the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit survives a crash of the process, and the database
    /// stays consistent through a power cut (the last commits may be lost). identity and
    /// database-svc: what they keep can be asked for again.
    Normal,
    /// `synchronous = FULL`: a commit survives a power cut too. storage-svc: an object row must
    /// survive like the fsynced blob it points at.
    Full,
}

/// How a service's pool is sized and how long it waits, per dialect.
#[derive(Debug, Clone, Default)]
pub struct PoolSettings {
    pub sqlite: SqliteSettings,
    pub postgres: PostgresSettings,
}

/// An embedded SQLite file: one writer at a time, readers in parallel (WAL).
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub max_connections: u32,
    /// How long a caller waits for a connection before it fails.
    pub acquire_timeout: Duration,
    /// How long a statement waits for another connection's lock.
    pub busy_timeout: Duration,
    pub durability: Durability,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
            durability: Durability::Normal,
        }
    }
}

/// A PostgreSQL server.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// At most this many connections (at least 2 are kept possible).
    pub max_connections: u32,
    /// How long a caller waits for a connection before it fails.
    pub acquire_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database_url must start with sqlite: or postgres:")]
    UnsupportedUrl,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The SQLite settings every service uses: the file is created when missing, write-ahead log,
/// foreign keys enforced, `settings`' durability and busy timeout.
pub fn sqlite_options(
    options: SqliteConnectOptions,
    settings: &SqliteSettings,
) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match settings.durability {
            Durability::Normal => SqliteSynchronous::Normal,
            Durability::Full => SqliteSynchronous::Full,
        })
        .foreign_keys(true)
        .busy_timeout(settings.busy_timeout)
}

/// Connects to `url` (`sqlite:…` or `postgres://…`, `postgresql://…`) with `settings`. The URL is
/// never echoed in an error: it may carry a password.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Pool, DbError> {
    if url.starts_with("sqlite:") {
        let sqlite = &settings.sqlite;
        let options = sqlite_options(SqliteConnectOptions::from_str(url)?, sqlite);
        let pool = pool_options::<sqlx::Sqlite>(sqlite.max_connections.max(1))
            .acquire_timeout(sqlite.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Pool::Sqlite(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(url)?;
        let postgres = &settings.postgres;
        let pool = while_unreachable(STARTUP_WAIT, || {
            pool_options::<sqlx::Postgres>(postgres.max_connections.max(2))
                .acquire_timeout(postgres.acquire_timeout)
                .connect_with(options.clone())
        })
        .await?;
        Ok(Pool::Postgres(pool))
    } else {
        Err(DbError::UnsupportedUrl)
    }
}

/// How long a service waits at start for a PostgreSQL server that is not reachable yet (one
/// started next to it, in any order: a compose stack).
pub const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// Whether `e` says the server cannot be reached (yet): refused, unknown host, timed out, or
/// still starting (SQLSTATE 57P03). Worth waiting for at start; anything else is not.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => d.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

/// Whether `e` says the database is away for now — unreachable, restarting or failing over
/// (SQLSTATE class 08, 57P01–57P03), out of connections (53300), or the connection was cut —
/// so that a request answers 503 with `Retry-After` instead of 500. The pool reconnects by
/// itself once the server is back.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for another reason than [`is_unreachable`], or
/// `wait` has passed; waits 250 ms, doubling up to 4 s, between attempts (bounded: a service
/// whose database never comes up stops with the last error instead of spinning).
pub async fn while_unreachable<T, F, Fut>(wait: Duration, mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    let mut delay = Duration::from_millis(250);
    loop {
        match attempt().await {
            Err(e) if is_unreachable(&e) && tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis(), "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
            other => return other,
        }
    }
}

/// [`connect`], then apply the service's migrations for the pool's dialect.
pub async fn connect_and_migrate(
    url: &str,
    settings: &PoolSettings,
    migrations: &Migrations,
) -> Result<Pool, DbError> {
    let pool = connect(url, settings).await?;
    migrations.run(&pool).await?;
    Ok(pool)
}
