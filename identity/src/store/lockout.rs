//! Failed sign-in counters and temporary locks.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// See [`Store::login_gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginGate {
    pub locked_until: Option<i64>,
    /// The account key has counted failures (a successful sign-in deletes them).
    pub failures_pending: bool,
}

/// The lock state of the account key `$1` and the IP key `$2` at `$3` (one row, columns
/// `until` and `pending`, read by `login_gate!`).
pub(super) const GATE_SQL: &str = "SELECT \
    MAX(CASE WHEN locked_until > $3 THEN locked_until END) AS until, \
    MAX(CASE WHEN key = $1 AND locked_until = 0 THEN 1 ELSE 0 END) AS pending \
    FROM login_failures WHERE key = $1 OR key = $2";

/// A [`LoginGate`] from a row with the columns of [`GATE_SQL`] (either backend's row).
macro_rules! login_gate {
    ($r:expr) => {
        LoginGate {
            locked_until: $r.try_get::<Option<i64>, _>("until")?,
            failures_pending: $r.try_get::<Option<i32>, _>("pending")?.unwrap_or(0) != 0,
        }
    };
}
pub(super) use login_gate;

impl Store {
    /// The latest `locked_until` among `keys` that is still in the future.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db locked_until", otel.kind = "client", db.system = self.dialect(), db.operation.name = "locked_until"))]
    pub async fn locked_until(&self, keys: &[&str], now: i64) -> StoreResult<Option<i64>> {
        let k1 = keys.first().copied().unwrap_or("");
        let k2 = keys.get(1).copied().unwrap_or(k1);
        Ok(self.login_gate(k1, k2, now).await?.locked_until)
    }

    /// What a sign-in must know before hashing, in one read: the latest live lock on the
    /// account key or the IP key, and whether the account key has failures a success clears.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db login_gate", otel.kind = "client", db.system = self.dialect(), db.operation.name = "login_gate"))]
    pub async fn login_gate(
        &self,
        account_key: &str,
        ip_key: &str,
        now: i64,
    ) -> StoreResult<LoginGate> {
        on_pool!(self, pool => {
            let row = sqlx::query(GATE_SQL).bind(account_key).bind(ip_key).bind(now).fetch_one(pool).await?;
            Ok(login_gate!(row))
        })
    }

    /// Counts one failure for `key`; when the count reaches `threshold`, the key is locked
    /// until `now + lock_ms` and its count restarts. Returns the failures counted so far
    /// (before a lock resets them).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db record_login_failure", otel.kind = "client", db.system = self.dialect(), db.operation.name = "record_login_failure"))]
    pub async fn record_login_failure(
        &self,
        key: &str,
        now: i64,
        threshold: i64,
        lock_ms: i64,
    ) -> StoreResult<i64> {
        const UPSERT: &str = "INSERT INTO login_failures (key, failures, locked_until, updated_at) \
            VALUES ($1, 1, 0, $2) ON CONFLICT (key) DO UPDATE SET \
            failures = CASE WHEN login_failures.locked_until > 0 AND login_failures.locked_until <= $2 \
                THEN 1 ELSE login_failures.failures + 1 END, \
            locked_until = CASE WHEN login_failures.locked_until <= $2 THEN 0 \
                ELSE login_failures.locked_until END, \
            updated_at = $2 \
            RETURNING failures";
        const LOCK: &str = "UPDATE login_failures SET failures = 0, locked_until = $2 \
            WHERE key = $1 AND failures >= $3";
        on_pool!(self, pool => {
            let row = sqlx::query(UPSERT).bind(key).bind(now).fetch_one(pool).await?;
            let failures: i64 = row.try_get("failures")?;
            if failures >= threshold {
                sqlx::query(LOCK).bind(key).bind(now + lock_ms).bind(threshold).execute(pool).await?;
            }
            Ok(failures)
        })
    }

    /// Forgets a key's failures (a successful sign-in).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db clear_login_failures", otel.kind = "client", db.system = self.dialect(), db.operation.name = "clear_login_failures"))]
    pub async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        const SQL: &str = "DELETE FROM login_failures WHERE key = $1 AND locked_until = 0";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(key).execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes counters untouched since `before` that hold no live lock.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_login_failures", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_login_failures"))]
    pub async fn purge_login_failures(&self, before: i64, now: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM login_failures WHERE updated_at < $1 AND locked_until <= $2";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).bind(now).execute(pool).await?.rows_affected()))
    }
}
