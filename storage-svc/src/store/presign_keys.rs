//! Presigning keys: one sealed secret per tenant.

use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreResult, now_ms};

impl Store {
    pub async fn presign_key(&self, tenant: Uuid) -> StoreResult<Option<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("SELECT sealed FROM presign_keys WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_optional(pool)
                .await?
                .map(|r| r.get::<String, _>(0))
        }))
    }

    /// Stores a sealed key unless the tenant already has one (first writer wins).
    pub async fn insert_presign_key(&self, tenant: Uuid, sealed: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO presign_keys (tenant_id, sealed, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.to_string())
            .bind(sealed)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
