//! Requests counted per key in fixed windows (`request_limits`), apart from the failed
//! sign-ins of [`super::lockout`]: a request limit never locks a sign-in, and a successful
//! sign-in never resets a request limit.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// The requests of a key in its current window, this one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub requests: i64,
    /// When the window ends (unix ms): the count starts again after it.
    pub window_end: i64,
}

impl Store {
    /// Counts one request for `key` in a window of `window_ms` (a window starts at a key's
    /// first request after the previous one ended).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db count_request", otel.kind = "client", db.system = self.dialect(), db.operation.name = "count_request"))]
    pub async fn count_request(
        &self,
        key: &str,
        now: i64,
        window_ms: i64,
    ) -> StoreResult<WindowCount> {
        const SQL: &str = "INSERT INTO request_limits (key, window_start, requests) \
            VALUES ($1, $2, 1) ON CONFLICT (key) DO UPDATE SET \
            requests = CASE WHEN request_limits.window_start <= $3 THEN 1 \
                ELSE request_limits.requests + 1 END, \
            window_start = CASE WHEN request_limits.window_start <= $3 THEN $2 \
                ELSE request_limits.window_start END \
            RETURNING requests, window_start";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL)
                .bind(key)
                .bind(now)
                .bind(now.saturating_sub(window_ms))
                .fetch_one(pool)
                .await?;
            let start: i64 = row.try_get("window_start")?;
            Ok(WindowCount {
                requests: row.try_get("requests")?,
                window_end: start.saturating_add(window_ms),
            })
        })
    }

    /// Deletes the counters whose window started before `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_request_limits", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_request_limits"))]
    pub async fn purge_request_limits(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM request_limits WHERE window_start < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }
}
