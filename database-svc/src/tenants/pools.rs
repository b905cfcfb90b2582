//! The bounded cache of open per-tenant pools: opened (and migrated) on first use, the least
//! recently used dropped at the bound, idle ones reaped; the background reaper also purges.

use std::sync::Weak;
use std::time::{Duration, Instant};

use sqlx::Executor;
use tansu_shared::db::pool_options;
use uuid::Uuid;

use super::{Backend, OPEN_POOLS_GAUGE, TenantError, Tenants, check_location, sqlite_options};
use crate::store::{Pool, Store, now_ms};

pub(super) struct Open {
    pub(super) store: Store,
    pub(super) last_used: Instant,
}

/// How often the catalog is read again for every open pool, in the background (requests never
/// wait for it): the bound within which a deprovision at another replica stops this one's
/// answers (a change pushed over Redis, when configured, ends them at once).
pub const RECHECK: Duration = Duration::from_secs(2);

impl Tenants {
    /// The tenant's store, opened on first use. Not provisioned (or deprovisioned) → error.
    pub async fn store(&self, tenant: Uuid) -> Result<Store, TenantError> {
        if let Some(s) = self.cached(tenant).await {
            return Ok(s);
        }
        let _serial = self.lock(tenant).await;
        self.open_locked(tenant, false).await
    }

    async fn cached(&self, tenant: Uuid) -> Option<Store> {
        let mut open = self.open.lock().await;
        let o = open.get_mut(&tenant)?;
        o.last_used = Instant::now();
        Some(o.store.clone())
    }

    /// Reads the catalog for every open pool and closes those whose tenant is no longer active
    /// (deprovisioned at another replica). A catalog that cannot be read changes nothing: the
    /// pools' own queries answer for the database's state meanwhile.
    pub(super) async fn recheck_open(&self) {
        let tenants: Vec<Uuid> = self.open.lock().await.keys().copied().collect();
        let active = match self.active_among(&tenants).await {
            Ok(active) => active,
            Err(e) => {
                tracing::debug!(error = %e, "the catalog could not be read again");
                return;
            }
        };
        for tenant in tenants.into_iter().filter(|t| !active.contains(t)) {
            tracing::info!(%tenant, "tenant database deprovisioned elsewhere; its pool closed");
            self.deprovisioned_elsewhere(tenant).await;
        }
    }

    /// Opens (or finds) the tenant's store; the caller holds the tenant's lock, so one
    /// tenant is opened and migrated once while others open in parallel.
    /// Only provisioning creates a SQLite file: a file that vanished from under an active
    /// tenant is an error to notice, not an empty database to serve.
    pub(super) async fn open_locked(
        &self,
        tenant: Uuid,
        create: bool,
    ) -> Result<Store, TenantError> {
        if let Some(s) = self.cached(tenant).await {
            return Ok(s);
        }
        let record = self.record(tenant).await?;
        let Some(record) = record.filter(|r| r.status == "active") else {
            return Err(TenantError::NotProvisioned);
        };
        check_location(&record.database)?;
        let size = self.config.tenant_pool_size.max(1);
        let idle = Duration::from_secs(self.config.tenant_idle_secs.max(1));
        let pool = match &self.backend {
            Backend::Sqlite { dir } => Pool::Sqlite(
                pool_options::<sqlx::Sqlite>(size)
                    .min_connections(0)
                    .idle_timeout(idle)
                    .connect_lazy_with(
                        sqlite_options(&dir.join(&record.database)).create_if_missing(create),
                    ),
            ),
            Backend::Postgres { options, .. } => {
                let role = record.database.clone();
                Pool::Postgres(
                    pool_options::<sqlx::Postgres>(size)
                        .min_connections(0)
                        .idle_timeout(idle)
                        .acquire_timeout(Duration::from_secs(10))
                        .after_connect(move |conn, _| {
                            // Work as the tenant's role: objects are owned by it, and nothing
                            // reachable from this connection belongs to anyone else.
                            let set_role = format!("SET ROLE \"{role}\"");
                            Box::pin(async move {
                                conn.execute(sqlx::AssertSqlSafe(set_role))
                                    .await
                                    .map(|_| ())
                            })
                        })
                        .connect_lazy_with((**options).clone().database(&record.database)),
                )
            }
        };
        let store = Store::new(pool);
        store.migrate().await?;
        // Tenants that are rarely open get their feed compacted when they are.
        if let Err(e) = self.compact(&store).await {
            tracing::warn!(%tenant, error = %e, "compacting the change feed failed");
        }
        let mut open = self.open.lock().await;
        if open.len() >= self.config.max_open_tenants.max(1)
            && let Some(lru) = open
                .iter()
                .min_by_key(|(_, o)| o.last_used)
                .map(|(id, _)| *id)
        {
            open.remove(&lru);
        }
        open.insert(
            tenant,
            Open {
                store: store.clone(),
                last_used: Instant::now(),
            },
        );
        metrics::gauge!(OPEN_POOLS_GAUGE).set(open.len() as f64);
        Ok(store)
    }

    /// Applies the change-feed retention (`change_retention_secs`, `change_retention_count`)
    /// to one tenant's store.
    async fn compact(&self, store: &Store) -> Result<u64, crate::store::StoreError> {
        let c = &self.config;
        let before = (c.change_retention_secs > 0).then(|| {
            now_ms().saturating_sub(
                i64::try_from(c.change_retention_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            )
        });
        let keep = (c.change_retention_count > 0)
            .then(|| i64::try_from(c.change_retention_count).unwrap_or(i64::MAX));
        if before.is_none() && keep.is_none() {
            return Ok(0);
        }
        store.compact_changes(before, keep).await
    }

    /// Compacts the change feed of every open tenant now. Returns how many changes went.
    pub async fn compact_open(&self) -> u64 {
        let stores: Vec<(Uuid, Store)> = self
            .open
            .lock()
            .await
            .iter()
            .map(|(id, o)| (*id, o.store.clone()))
            .collect();
        let mut removed = 0;
        for (tenant, store) in stores {
            match self.compact(&store).await {
                Ok(n) => removed += n,
                Err(e) => tracing::warn!(%tenant, error = %e, "compacting the change feed failed"),
            }
        }
        removed
    }

    /// How many tenant pools are open (tests and metrics).
    pub async fn open_count(&self) -> usize {
        self.open.lock().await.len()
    }

    pub(crate) async fn evict(&self, tenant: Uuid) {
        let removed = {
            let mut open = self.open.lock().await;
            let removed = open.remove(&tenant);
            metrics::gauge!(OPEN_POOLS_GAUGE).set(open.len() as f64);
            removed
        };
        if let Some(o) = removed {
            o.store.pool().close().await;
        }
    }

    /// Drops the pools unused for `idle` or longer.
    async fn reap_idle(&self, idle: Duration) {
        let mut open = self.open.lock().await;
        open.retain(|_, o| o.last_used.elapsed() < idle);
        metrics::gauge!(OPEN_POOLS_GAUGE).set(open.len() as f64);
    }
}

/// Reads the catalog again for the open pools every [`RECHECK`] while the service lives.
pub(super) async fn rechecker(tenants: Weak<Tenants>) {
    loop {
        tokio::time::sleep(RECHECK).await;
        let Some(t) = tenants.upgrade() else { return };
        t.recheck_open().await;
    }
}

/// Drops idle pools and purges expired tenants in the background while the service lives.
pub(super) async fn reaper(tenants: Weak<Tenants>) {
    let mut last_purge = Instant::now();
    loop {
        let (tick, purge_every) = match tenants.upgrade() {
            Some(t) => (
                Duration::from_secs((t.config.tenant_idle_secs / 2).clamp(1, 30)),
                Duration::from_secs(t.config.purge_interval_secs.max(1)),
            ),
            None => return,
        };
        tokio::time::sleep(tick).await;
        let Some(t) = tenants.upgrade() else { return };
        t.reap_idle(Duration::from_secs(t.config.tenant_idle_secs.max(1)))
            .await;
        if last_purge.elapsed() >= purge_every {
            last_purge = Instant::now();
            if let Err(e) = t.purge_expired().await {
                tracing::warn!(error = %e, "purging expired tenants failed");
            }
            t.compact_open().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Config;
    use crate::tenants::TenantError;

    #[tokio::test]
    async fn pools_are_bounded_and_closed_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config {
            data_dir: dir.path().to_owned(),
            max_open_tenants: 3,
            ..Default::default()
        });
        let tenants = Tenants::open(config).await.unwrap();
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
        for t in &ids {
            tenants.provision(*t).await.unwrap();
            tenants.store(*t).await.unwrap().ping().await.unwrap();
            assert!(tenants.open_count().await <= 3);
        }
        // An evicted tenant reopens on demand.
        tenants.store(ids[0]).await.unwrap().ping().await.unwrap();
        // Pools idle for the threshold are dropped (the reaper calls this on a timer).
        tenants.reap_idle(Duration::from_secs(3600)).await;
        assert_eq!(tenants.open_count().await, 3, "recently used pools stay");
        tenants.reap_idle(Duration::ZERO).await;
        assert_eq!(tenants.open_count().await, 0);
        // A tenant file that vanished is an error, not a new empty database.
        let gone = ids[5];
        tenants.evict(gone).await;
        let file = dir.path().join("tenants").join(format!("{gone}.db"));
        std::fs::remove_file(&file).unwrap();
        assert!(tenants.store(gone).await.is_err());
        assert!(!file.exists());
        // Deprovisioned at another replica sharing the catalog: the next recheck closes the
        // pool here, and the tenant has no store any more.
        let elsewhere = Tenants::open(tenants.config.clone()).await.unwrap();
        let t = ids[1];
        tenants.store(t).await.unwrap().ping().await.unwrap();
        elsewhere.deprovision(t).await.unwrap();
        tenants.store(t).await.unwrap();
        let before = tenants.open_count().await;
        tenants.recheck_open().await;
        assert_eq!(tenants.open_count().await, before - 1);
        assert!(matches!(
            tenants.store(t).await,
            Err(TenantError::NotProvisioned)
        ));
        // Unknown tenants have no store.
        assert!(matches!(
            tenants.store(Uuid::now_v7()).await,
            Err(TenantError::NotProvisioned)
        ));
    }
}
