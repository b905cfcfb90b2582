//! Connection pools of the services that keep a database (identity, database-svc).
//!
//! sqlx's pools check every idle connection with a round trip before handing it out
//! (`test_before_acquire`, on by default): on PostgreSQL a `Sync` message and its
//! `ReadyForQuery`, on SQLite a message to the connection's worker thread and back. Under load a
//! connection went back to the pool microseconds earlier, so that check doubles the round trips
//! of every statement and finds nothing. [`pool_options`] checks only a connection that sat idle
//! for longer than [`CHECK_AFTER_IDLE`] (HikariCP's rule, its 500 ms bypass window widened to a
//! second): one that the server, a proxy or a firewall could have dropped in the meantime.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

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
