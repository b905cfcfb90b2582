//! Tenant databases: the catalog (the service's own database), provisioning, and the bounded
//! cache of open per-tenant pools.
//!
//! Isolation, and why it holds: a tenant's data lives in its own database (a SQLite file
//! named by the tenant's UUID, or a PostgreSQL database `<prefix><uuid>` owned by its own
//! role, with `CONNECT` revoked from `PUBLIC`). Handlers obtain a [`Store`] only through
//! [`Tenants::store`] with the tenant id the `Tenant` extractor proved (token `tid` ==
//! `X-Tansu-Tenant`); no request parameter can name another tenant's database.
//!
//! Thousands of tenants: pools are opened on first use and kept in an LRU bounded by
//! `max_open_tenants`; the least recently used is dropped when the bound is reached, and a
//! reaper drops pools idle longer than `tenant_idle_secs`. A dropped pool closes its
//! connections once the last in-flight request using it finishes.

mod descriptor;
mod lifecycle;
mod pools;
mod postgres;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tansu_shared::db::{self, pool_options};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Config;
use crate::store::{CATALOG_MIGRATIONS, Pool, migrate, on_pool};

pub use descriptor::{Credential, Descriptor};
pub use pools::RECHECK;
use pools::{Open, reaper, rechecker};

/// Prometheus gauge: tenant pools currently open in this process.
const OPEN_POOLS_GAUGE: &str = "tansu_database_open_tenant_pools";

/// Where tenant databases live.
enum Backend {
    Sqlite {
        dir: PathBuf,
    },
    Postgres {
        admin: sqlx::PgPool,
        options: Box<PgConnectOptions>,
        prefix: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant not provisioned")]
    NotProvisioned,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("catalog entry has an unexpected database name")]
    BadLocation,
    #[error("the system random generator failed")]
    Random,
}

/// Catalog locations are spliced into file paths and SQL identifiers: they are checked to be
/// what this service writes (`<uuid>.db`, `<prefix><uuid hex>`) before every use.
fn check_location(location: &str) -> Result<(), TenantError> {
    let ok = !location.is_empty()
        && location.len() <= 63
        && location.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
        && !location.contains("..");
    if ok {
        Ok(())
    } else {
        Err(TenantError::BadLocation)
    }
}

/// The tenant registry and pool cache.
pub struct Tenants {
    catalog: Pool,
    backend: Backend,
    config: Arc<Config>,
    open: tokio::sync::Mutex<HashMap<Uuid, Open>>,
    /// One lock per tenant being provisioned, deprovisioned, purged or opened.
    locks: std::sync::Mutex<HashMap<Uuid, Weak<tokio::sync::Mutex<()>>>>,
    notify: std::sync::Mutex<HashMap<Uuid, Arc<Notify>>>,
    /// Set when the service begins to shut down: long-lived streams end so the drain can.
    closing: tokio::sync::watch::Sender<bool>,
    /// How many deprovisions this process has made: a change stream that sees it move
    /// re-reads its tenant's status (rare, so the catalog is not asked per event).
    deprovisions: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants").finish_non_exhaustive()
    }
}

fn sqlite_options(path: &std::path::Path) -> SqliteConnectOptions {
    db::sqlite_options(
        SqliteConnectOptions::new().filename(path),
        &db::SqliteSettings::default(),
    )
}

/// Parses a PostgreSQL URL without ever echoing it (it may carry a password).
fn pg_options(url: &str, key: &str) -> anyhow::Result<PgConnectOptions> {
    PgConnectOptions::from_str(url)
        .map_err(|_| anyhow::anyhow!("{key} is not a valid PostgreSQL URL"))
}

impl Tenants {
    /// Opens the catalog (migrating it) and the tenant backend; starts the reaper and purger.
    pub async fn open(config: Arc<Config>) -> anyhow::Result<Arc<Tenants>> {
        let db_url = config.database_url.expose();
        let catalog = if db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") {
            let opts = pg_options(db_url, "database_url")?;
            Pool::Postgres(
                pool_options::<sqlx::Postgres>(4)
                    .min_connections(0)
                    .idle_timeout(Duration::from_secs(60))
                    .connect_lazy_with(opts),
            )
        } else {
            let path = if db_url.is_empty() {
                std::fs::create_dir_all(&config.data_dir)
                    .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
                config.data_dir.join("catalog.db")
            } else {
                PathBuf::from(
                    db_url
                        .trim_start_matches("sqlite://")
                        .trim_start_matches("sqlite:"),
                )
            };
            Pool::Sqlite(pool_options::<sqlx::Sqlite>(4).connect_lazy_with(sqlite_options(&path)))
        };
        if catalog.dialect() == db::Dialect::Postgres {
            // Started next to its server (a compose stack): wait for it, bounded.
            db::while_unreachable(db::STARTUP_WAIT, || catalog.ping())
                .await
                .context("reaching the catalog database")?;
        }
        migrate(&catalog, &CATALOG_MIGRATIONS)
            .await
            .context("migrating the catalog database")?;

        let pg_url = config.postgres_url.expose();
        let backend = if pg_url.is_empty() {
            let dir = config.data_dir.join("tenants");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            Backend::Sqlite { dir }
        } else {
            let options = pg_options(pg_url, "postgres_url")?;
            // The admin connection sends `… PASSWORD '…'`: its statements are never logged.
            let admin = pool_options::<sqlx::Postgres>(2)
                .min_connections(0)
                .idle_timeout(Duration::from_secs(60))
                .connect_lazy_with(options.clone().disable_statement_logging());
            Backend::Postgres {
                admin,
                options: Box::new(options),
                prefix: config.tenant_db_prefix.clone(),
            }
        };
        let tenants = Arc::new(Tenants {
            catalog,
            backend,
            config: config.clone(),
            open: tokio::sync::Mutex::new(HashMap::new()),
            locks: std::sync::Mutex::new(HashMap::new()),
            notify: std::sync::Mutex::new(HashMap::new()),
            closing: tokio::sync::watch::Sender::new(false),
            deprovisions: std::sync::atomic::AtomicU64::new(0),
        });
        tokio::spawn(reaper(Arc::downgrade(&tenants)));
        tokio::spawn(rechecker(Arc::downgrade(&tenants)));
        Ok(tenants)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalog answers (readiness).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(&self.catalog, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    /// Serialises lifecycle changes of one tenant (different tenants proceed in parallel).
    async fn lock(&self, tenant: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(&tenant).and_then(Weak::upgrade) {
                Some(m) => m,
                None => {
                    let m = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(tenant, Arc::downgrade(&m));
                    m
                }
            }
        };
        m.lock_owned().await
    }

    fn db_name(prefix: &str, tenant: Uuid) -> String {
        format!("{prefix}{}", tenant.simple())
    }

    /// How many tenants this process has deprovisioned (see [`Tenants::is_active`]).
    pub fn deprovisions(&self) -> u64 {
        self.deprovisions.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the tenant is provisioned and not deleted, as the catalog says now.
    pub async fn is_active(&self, tenant: Uuid) -> Result<bool, TenantError> {
        Ok(self
            .record(tenant)
            .await?
            .is_some_and(|d| d.status == "active"))
    }

    /// Another replica deprovisioned the tenant (pushed over Redis): its open pool goes and its
    /// change streams here check the catalog and end.
    pub async fn deprovisioned_elsewhere(&self, tenant: Uuid) {
        self.evict(tenant).await;
        self.deprovisions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.notify(tenant);
    }

    /// Ends change streams (the first step of a graceful shutdown).
    pub fn begin_shutdown(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Tenants::begin_shutdown`] was called.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Closes every pool (on shutdown).
    pub async fn close(&self) {
        let open: Vec<Open> = self.open.lock().await.drain().map(|(_, o)| o).collect();
        for o in open {
            o.store.pool().close().await;
        }
        if let Backend::Postgres { admin, .. } = &self.backend {
            admin.close().await;
        }
        self.catalog.close().await;
    }

    /// Wakes change-feed streams of `tenant` after a commit.
    pub fn notify(&self, tenant: Uuid) {
        if let Some(n) = self
            .notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
        {
            n.notify_waiters();
        }
    }

    pub fn notifier(&self, tenant: Uuid) -> Arc<Notify> {
        let mut map = self.notify.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, n| Arc::strong_count(n) > 1);
        map.entry(tenant).or_default().clone()
    }
}
