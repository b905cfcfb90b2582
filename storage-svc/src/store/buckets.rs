//! Buckets: a tenant's named containers of objects, with their settings.

use uuid::Uuid;

use super::{
    BucketRow, Store, StoreError, StoreResult, is_fk_violation, is_unique_violation, now_ms,
};

impl Store {
    pub async fn create_bucket(&self, tenant: Uuid, name: &str, settings: &str) -> StoreResult<()> {
        let res = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO buckets (tenant_id, name, settings, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant.to_string())
            .bind(name)
            .bind(settings)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        });
        match res {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            other => Ok(other?),
        }
    }

    pub async fn list_buckets(&self, tenant: Uuid) -> StoreResult<Vec<BucketRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, BucketRow>(
                "SELECT name, settings, created_at FROM buckets WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant.to_string())
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn get_bucket(&self, tenant: Uuid, name: &str) -> StoreResult<BucketRow> {
        on_pool!(self, |pool| {
            sqlx::query_as::<_, BucketRow>(
                "SELECT name, settings, created_at FROM buckets WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant.to_string())
            .bind(name)
            .fetch_optional(pool)
            .await?
        })
        .ok_or(StoreError::NoSuchBucket)
    }

    pub async fn update_bucket(&self, tenant: Uuid, name: &str, settings: &str) -> StoreResult<()> {
        let n = on_pool!(self, |pool| {
            sqlx::query("UPDATE buckets SET settings = $3 WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.to_string())
                .bind(name)
                .bind(settings)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            Err(StoreError::NoSuchBucket)
        } else {
            Ok(())
        }
    }

    /// Deletes the bucket if it holds no object. A concurrent upload either commits first (and
    /// the delete fails as not empty, by the check or by the foreign key) or finds no bucket.
    pub async fn delete_bucket(&self, tenant: Uuid, name: &str) -> StoreResult<()> {
        let res = on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM buckets WHERE tenant_id = $1 AND name = $2 AND NOT EXISTS \
                 (SELECT 1 FROM objects WHERE tenant_id = $1 AND bucket = $2)",
            )
            .bind(tenant.to_string())
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        match res {
            Ok(1) => Ok(()),
            Ok(_) => {
                // Either absent or not empty: tell which.
                self.get_bucket(tenant, name).await?;
                Err(StoreError::NotEmpty)
            }
            Err(e) if is_fk_violation(&e) => Err(StoreError::NotEmpty),
            Err(e) => Err(e.into()),
        }
    }
}
