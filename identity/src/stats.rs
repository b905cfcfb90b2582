//! Activity per hour for the dashboard's charts (read at `GET /admin/stats/activity`,
//! [`crate::admin::stats`]).
//!
//! Sign-ins and failed sign-ins are counted straight from the security-event log (`sign_in`
//! and `sign_in.locked` events; index `(tenant_id, type, at, outcome)`). Access tokens are not
//! events, so the token endpoint bumps an in-memory counter ([`TokenCounter::issued`]: one
//! short mutex hold, no I/O) that a background task flushes every few seconds as one upsert per
//! (tenant, hour) into `token_issuance`; a stats read flushes first, so it sees every token.
//!
//! Platform admins see all tenants (or one with `tenant=<id>`, `tenant=platform` for events and
//! tokens without a tenant); tenant admins see their own tenant only (another: 404). Failed
//! sign-ins whose account is unknown are recorded on the platform chain, so a tenant's chart
//! counts the failures attributed to it.

// `Problem` is the handlers' error type.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::Row;

use crate::events::{LOCKOUT, SIGN_IN};
use crate::store::{Store, StoreResult, now_ms, on_pool};

pub(crate) const HOUR_MS: i64 = 3_600_000;
/// How often pending token counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Tokens issued since the last flush, per tenant ('' = none) and hour.
#[derive(Debug, Default)]
pub struct TokenCounter {
    pending: Mutex<HashMap<String, HashMap<i64, i64>>>,
}

impl TokenCounter {
    /// Counts one issued access token (the token endpoint's hot path: no I/O, and an
    /// allocation only for the first token of a tenant since the last flush).
    pub fn issued(&self, tenant_id: Option<&str>) {
        let tenant = tenant_id.unwrap_or("");
        let hour = now_ms() / HOUR_MS;
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(tenant) {
            Some(hours) => *hours.entry(hour).or_default() += 1,
            None => {
                pending.insert(tenant.to_owned(), HashMap::from([(hour, 1)]));
            }
        }
    }

    fn take(&self) -> HashMap<String, HashMap<i64, i64>> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Writes the pending counts; what fails to be written is kept for the next flush.
    pub async fn flush(&self, store: &Store) -> StoreResult<()> {
        let batch = self.take();
        let mut failed: Option<crate::store::StoreError> = None;
        for (tenant, hours) in batch {
            for (hour, n) in hours {
                if failed.is_none()
                    && let Err(e) = store.add_tokens_issued(&tenant, hour, n).await
                {
                    failed = Some(e);
                }
                if failed.is_some() {
                    let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                    *pending
                        .entry(tenant.clone())
                        .or_default()
                        .entry(hour)
                        .or_default() += n;
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Flushes every [`FLUSH_EVERY`] until the handle is aborted.
    pub fn spawn_flusher(self: &std::sync::Arc<Self>, store: Store) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = me.flush(&store).await {
                    tracing::warn!(error = %e, "token statistics flush failed");
                }
            }
        })
    }
}

/// Per-hour counts of one hour bucket (the admin API's shape).
pub use tansu_shared::admin_api::Counts;

impl Store {
    /// Adds `n` tokens to a (tenant, hour) counter.
    pub async fn add_tokens_issued(&self, tenant_id: &str, hour: i64, n: i64) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO token_issuance (tenant_id, hour, issued) VALUES ($1, $2, $3) \
            ON CONFLICT (tenant_id, hour) DO UPDATE SET issued = token_issuance.issued + excluded.issued";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(tenant_id).bind(hour).bind(n).execute(pool).await?;
        });
        Ok(())
    }

    /// Counts per hour number (unix ms / 1 h) from `from_hour` on; `tenant_id` `None` = all.
    pub async fn activity(
        &self,
        tenant_id: Option<&str>,
        from_hour: i64,
    ) -> StoreResult<HashMap<i64, Counts>> {
        let tenant_clause = if tenant_id.is_some() {
            "AND tenant_id = $4"
        } else {
            ""
        };
        let events = format!(
            "SELECT at / {HOUR_MS} AS h, type, outcome, COUNT(*) AS n FROM security_events \
             WHERE type IN ($1, $2) AND at >= $3 {tenant_clause} GROUP BY at / {HOUR_MS}, type, outcome"
        );
        let tokens_clause = if tenant_id.is_some() {
            "AND tenant_id = $2"
        } else {
            ""
        };
        let tokens = format!(
            "SELECT hour AS h, CAST(SUM(issued) AS BIGINT) AS n FROM token_issuance \
             WHERE hour >= $1 {tokens_clause} GROUP BY hour"
        );
        let tenant = tenant_id.unwrap_or("");
        let mut out: HashMap<i64, Counts> = HashMap::new();
        on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(events))
                .bind(SIGN_IN)
                .bind(LOCKOUT)
                .bind(from_hour * HOUR_MS);
            if tenant_id.is_some() {
                q = q.bind(tenant);
            }
            let rows = q.fetch_all(pool).await?;
            for r in rows {
                let (h, kind, outcome, n): (i64, String, String, i64) =
                    (r.try_get("h")?, r.try_get("type")?, r.try_get("outcome")?, r.try_get("n")?);
                let c = out.entry(h).or_default();
                match (kind.as_str(), outcome.as_str()) {
                    (SIGN_IN, "success") => c.sign_ins += n,
                    // The lock engaging follows failures already counted.
                    (LOCKOUT, "engaged") => {}
                    _ => c.failures += n,
                }
            }
            let mut q = sqlx::query(sqlx::AssertSqlSafe(tokens)).bind(from_hour);
            if tenant_id.is_some() {
                q = q.bind(tenant);
            }
            for r in q.fetch_all(pool).await? {
                out.entry(r.try_get("h")?).or_default().tokens += r.try_get::<i64, _>("n")?;
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_coalesce_per_tenant_and_hour() {
        let c = TokenCounter::default();
        c.issued(Some("t1"));
        c.issued(Some("t1"));
        c.issued(None);
        let taken = c.take();
        let sum = |t: &str| taken.get(t).map_or(0, |h| h.values().sum::<i64>());
        assert_eq!(sum("t1"), 2);
        assert_eq!(sum(""), 1);
        assert!(c.take().is_empty());
    }
}
