//! The browsers an account has signed in from (`known_devices`): the SHA-256 of each one's
//! device cookie, never the cookie.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// What a sign-in's browser is to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The account has signed in from this browser before.
    Known,
    /// A browser the account has not used, and the account has used others.
    New,
    /// The account's first browser (nothing to compare with).
    First,
}

impl Store {
    /// Remembers that `user_id` signed in from the browser whose device cookie hashes to
    /// `device_hash`, and says what that browser was to the account until now.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db remember_device", otel.kind = "client", db.system = self.dialect(), db.operation.name = "remember_device"))]
    pub async fn remember_device(
        &self,
        user_id: &str,
        device_hash: &[u8],
        now: i64,
    ) -> StoreResult<Device> {
        const SEEN: &str = "SELECT COUNT(*) AS devices, \
            COALESCE(SUM(CASE WHEN device_hash = $2 THEN 1 ELSE 0 END), 0) AS this_one \
            FROM known_devices WHERE user_id = $1";
        const UPSERT: &str = "INSERT INTO known_devices (user_id, device_hash, first_seen, \
            last_seen) VALUES ($1, $2, $3, $3) ON CONFLICT (user_id, device_hash) \
            DO UPDATE SET last_seen = $3";
        on_pool!(self, pool => {
            let row = sqlx::query(SEEN).bind(user_id).bind(device_hash).fetch_one(pool).await?;
            let devices: i64 = row.try_get("devices")?;
            let this_one: i64 = row.try_get("this_one")?;
            sqlx::query(UPSERT).bind(user_id).bind(device_hash).bind(now).execute(pool).await?;
            Ok(match (devices, this_one) {
                (_, n) if n > 0 => Device::Known,
                (0, _) => Device::First,
                _ => Device::New,
            })
        })
    }

    /// Forgets browsers not seen since `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_devices", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_devices"))]
    pub async fn purge_devices(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM known_devices WHERE last_seen < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }
}
