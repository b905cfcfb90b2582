//! Database leases: a named lock with an expiry, so at most one replica sharing the database
//! does a job (key rotation) at a time, and a crashed holder cannot block the others forever.
//!
//! Acquisition is one atomic statement on both dialects: insert the lease row, or take over an
//! existing one only when it has expired. Whoever's statement changed a row holds the lease.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

impl Store {
    /// Tries to take lease `name` for `holder` until `expires_at` (unix ms). `true` when taken.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db try_acquire_lease", otel.kind = "client", db.system = self.dialect(), db.operation.name = "try_acquire_lease"))]
    pub async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4";
        let affected = on_pool!(self, pool => sqlx::query(SQL)
            .bind(name)
            .bind(holder)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(affected == 1)
    }

    /// Extends lease `name` to `expires_at` if `holder` still holds it; `false` when it was lost
    /// (it expired and another replica took it).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db renew_lease", otel.kind = "client", db.system = self.dialect(), db.operation.name = "renew_lease"))]
    pub async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2";
        let affected = on_pool!(self, pool => sqlx::query(SQL)
            .bind(name)
            .bind(holder)
            .bind(expires_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(affected == 1)
    }

    /// Gives lease `name` up if `holder` still holds it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db release_lease", otel.kind = "client", db.system = self.dialect(), db.operation.name = "release_lease"))]
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        const SQL: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(name).bind(holder).execute(pool).await?;
        });
        Ok(())
    }

    /// The current holder of lease `name`, if any row exists (for tests and diagnostics).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db lease_holder", otel.kind = "client", db.system = self.dialect(), db.operation.name = "lease_holder"))]
    pub async fn lease_holder(&self, name: &str) -> StoreResult<Option<(String, i64)>> {
        const SQL: &str = "SELECT holder, expires_at FROM leases WHERE name = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(name).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some((r.try_get("holder")?, r.try_get("expires_at")?)),
                None => None,
            })
        })
    }
}
