//! Blob intents: blobs that may exist unreferenced (being written, or replaced), so that a crash
//! leaks nothing: the start-up sweep deletes those no object or part points at.

use sqlx::Row;
use uuid::Uuid;

use super::{DELETE_INTENT, INSERT_INTENT, Store, StoreResult, now_ms};

impl Store {
    /// Records that blob `blob` of `tenant` is about to exist unreferenced.
    pub async fn add_intent(&self, tenant: Uuid, blob: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(INSERT_INTENT)
                .bind(tenant.to_string())
                .bind(blob)
                .bind(now_ms())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn remove_intent(&self, tenant: &str, blob: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(DELETE_INTENT)
                .bind(tenant)
                .bind(blob)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Blobs recorded as possibly unreferenced that no object points at: garbage to delete.
    /// Intents for blobs an object does point at are dropped here.
    pub async fn orphaned_blobs(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM blob_intents WHERE EXISTS (SELECT 1 FROM objects o \
                 WHERE o.tenant_id = blob_intents.tenant_id AND o.blob_id = blob_intents.blob_id) \
                 OR EXISTS (SELECT 1 FROM multipart_parts p \
                 WHERE p.tenant_id = blob_intents.tenant_id AND p.blob_id = blob_intents.blob_id)",
            )
            .execute(pool)
            .await?;
            sqlx::query("SELECT tenant_id, blob_id FROM blob_intents")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect()
        }))
    }
}
