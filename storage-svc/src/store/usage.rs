//! Usage and quotas: reservations for uploads in flight, the counters, per-tenant overrides.

use uuid::Uuid;

use super::{
    ENSURE_USAGE_ROW, Quota, QuotaOverride, Reserved, Store, StoreError, StoreResult, Usage,
};

impl Store {
    /// Sets aside room for an upload, or fails when the quota (counting every other upload in
    /// flight) has no room left. One conditional UPDATE: atomic in both databases.
    pub async fn reserve(&self, tenant: Uuid, want: Reserved, quota: Quota) -> StoreResult<()> {
        let t = tenant.to_string();
        let n = on_pool!(self, |pool| {
            sqlx::query(ENSURE_USAGE_ROW).bind(&t).execute(pool).await?;
            sqlx::query(
                "UPDATE tenant_usage SET reserved_bytes = reserved_bytes + $2, \
                 reserved_objects = reserved_objects + $3 WHERE tenant_id = $1 \
                 AND bytes + reserved_bytes + $2 <= COALESCE(quota_bytes, $4) \
                 AND objects + reserved_objects + $3 <= COALESCE(quota_objects, $5)",
            )
            .bind(&t)
            .bind(want.bytes)
            .bind(want.objects)
            .bind(quota.bytes)
            .bind(quota.objects)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            Err(StoreError::QuotaExceeded)
        } else {
            Ok(())
        }
    }

    pub async fn release(&self, tenant: Uuid, r: Reserved) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tenant_usage SET reserved_bytes = reserved_bytes - $2, \
                 reserved_objects = reserved_objects - $3 WHERE tenant_id = $1",
            )
            .bind(tenant.to_string())
            .bind(r.bytes)
            .bind(r.objects)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn usage(&self, tenant: Uuid) -> StoreResult<Usage> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, Usage>(
                "SELECT bytes, objects, reserved_bytes, reserved_objects, quota_bytes, \
                 quota_objects FROM tenant_usage WHERE tenant_id = $1",
            )
            .bind(tenant.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_default())
    }

    /// Sets (or, with both limits `None`, clears) a tenant's quota override. Takes effect for
    /// the next reservation or commit: uploads already reserved may still commit only if they
    /// fit, because the commit re-checks against the limit in force then.
    pub async fn set_quota(&self, tenant: Uuid, q: QuotaOverride) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO tenant_usage (tenant_id, quota_bytes, quota_objects) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET quota_bytes = excluded.quota_bytes, \
                 quota_objects = excluded.quota_objects",
            )
            .bind(tenant.to_string())
            .bind(q.bytes)
            .bind(q.objects)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
