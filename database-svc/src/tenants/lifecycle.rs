//! A tenant database's life: provisioned (or restored), its credential rotated, deprovisioned
//! (soft), purged after its retention.

use sqlx::Row;
use uuid::Uuid;

use super::descriptor::generate_password;
use super::postgres::{create_pg_database, drop_pg_database, set_pg_password};
use super::{Backend, Descriptor, TenantError, Tenants, check_location};
use crate::store::{now_ms, on_pool};

impl Tenants {
    /// Creates the tenant's database if needed (idempotent; a soft-deleted tenant within its
    /// retention is restored with its data) and returns its descriptor.
    pub async fn provision(&self, tenant: Uuid) -> Result<(Descriptor, bool), TenantError> {
        let _serial = self.lock(tenant).await;
        let existing = self.record(tenant).await?;
        if let Some(d) = &existing
            && d.status == "active"
        {
            return Ok((d.clone(), false));
        }
        let (backend, location, password) = match &self.backend {
            Backend::Sqlite { .. } => ("sqlite", format!("{tenant}.db"), None),
            Backend::Postgres { admin, prefix, .. } => {
                let name = Self::db_name(prefix, tenant);
                create_pg_database(admin, &name).await?;
                // A new password whenever the database is created or restored (a previous
                // one, if any, was never handed out or belongs to a deleted tenant).
                let password = generate_password()?;
                set_pg_password(admin, &name, Some(&password)).await?;
                ("postgres", name, Some(password))
            }
        };
        let now = now_ms();
        on_pool!(&self.catalog, p => {
            sqlx::query(
                "INSERT INTO tenants (id, backend, location, status, created_at)
                 VALUES ($1, $2, $3, 'active', $4)
                 ON CONFLICT (id) DO UPDATE SET status = 'active', deleted_at = NULL,
                     purge_after = NULL, backend = $2, location = $3",
            )
            .bind(tenant.to_string())
            .bind(backend)
            .bind(&location)
            .bind(now)
            .execute(p)
            .await?;
        });
        // Open (creating the SQLite file) and migrate now, so the first request is fast and a
        // broken database shows up here rather than later.
        self.open_locked(tenant, true).await?;
        let mut d = self
            .record(tenant)
            .await?
            .ok_or(TenantError::NotProvisioned)?;
        if let Some(password) = password {
            d.credential = self.pg_credential(&d, password);
        }
        tracing::info!(%tenant, backend, "tenant database provisioned");
        Ok((d, existing.is_none()))
    }

    /// Replaces the tenant's database password and returns the new credential (the old one
    /// stops working for new connections at once). SQLite: the same secret-free credential.
    pub async fn rotate_credential(&self, tenant: Uuid) -> Result<Descriptor, TenantError> {
        let _serial = self.lock(tenant).await;
        let mut d = self
            .record(tenant)
            .await?
            .filter(|d| d.status == "active")
            .ok_or(TenantError::NotProvisioned)?;
        if let Backend::Postgres { admin, .. } = &self.backend {
            check_location(&d.database)?;
            let password = generate_password()?;
            set_pg_password(admin, &d.database, Some(&password)).await?;
            d.credential = self.pg_credential(&d, password);
            tracing::info!(%tenant, "tenant database credential rotated");
        }
        Ok(d)
    }

    /// Soft delete: the tenant's API stops answering at once; the data stays until
    /// `retention_secs` have passed and a purge runs.
    pub async fn deprovision(&self, tenant: Uuid) -> Result<Descriptor, TenantError> {
        let _serial = self.lock(tenant).await;
        let now = now_ms();
        let purge_after = now.saturating_add(
            i64::try_from(self.config.retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        );
        let n = on_pool!(&self.catalog, p => {
            sqlx::query(
                "UPDATE tenants SET status = 'deleted', deleted_at = $2, purge_after = $3
                 WHERE id = $1 AND status = 'active'",
            )
            .bind(tenant.to_string())
            .bind(now)
            .bind(purge_after)
            .execute(p)
            .await?
            .rows_affected()
        });
        self.evict(tenant).await;
        // After the catalog says so and the pool is gone: a stream reading the counter before
        // it moves sees the change; one reading it after finds the tenant closed.
        self.deprovisions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify(tenant);
        let d = self
            .record(tenant)
            .await?
            .ok_or(TenantError::NotProvisioned)?;
        if let Backend::Postgres { admin, .. } = &self.backend
            && d.backend == "postgres"
            && d.status == "deleted"
        {
            // The tenant's own logins end with its API: no new sessions, open ones closed.
            check_location(&d.database)?;
            set_pg_password(admin, &d.database, None).await?;
        }
        if n == 0 && d.status != "deleted" {
            return Err(TenantError::NotProvisioned);
        }
        tracing::info!(%tenant, "tenant database deprovisioned (soft)");
        Ok(d)
    }

    /// Drops every soft-deleted tenant database past its retention. Returns how many.
    pub async fn purge_expired(&self) -> Result<usize, TenantError> {
        let now = now_ms();
        let due: Vec<(String, String)> = on_pool!(&self.catalog, p => {
            sqlx::query(
                "SELECT id, location FROM tenants WHERE status = 'deleted' AND purge_after <= $1",
            )
            .bind(now)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("location")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let mut purged = 0;
        for (id, location) in &due {
            let Ok(t) = Uuid::parse_str(id) else { continue };
            check_location(location)?;
            let _serial = self.lock(t).await;
            // Reprovisioned (or purged by another run) while we waited?
            if self.record(t).await?.is_none_or(|d| d.status != "deleted") {
                continue;
            }
            self.evict(t).await;
            match &self.backend {
                Backend::Sqlite { dir } => {
                    // location is `<uuid>.db`, written by us.
                    for suffix in ["", "-wal", "-shm"] {
                        let path = dir.join(format!("{location}{suffix}"));
                        match tokio::fs::remove_file(&path).await {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                Backend::Postgres { admin, .. } => drop_pg_database(admin, location).await?,
            }
            on_pool!(&self.catalog, p => {
                sqlx::query("DELETE FROM tenants WHERE id = $1 AND status = 'deleted'")
                    .bind(id)
                    .execute(p)
                    .await?;
            });
            tracing::info!(tenant = %id, "tenant database purged");
            purged += 1;
        }
        Ok(purged)
    }
}
