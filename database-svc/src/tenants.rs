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

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Executor, Row};
use tansu_shared::db::pool_options;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Config;
use crate::store::{Migration, Pool, Store, migrate, now_ms, on_pool, rfc3339};

/// Prometheus gauge: tenant pools currently open in this process.
const OPEN_POOLS_GAUGE: &str = "tansu_database_open_tenant_pools";

const CATALOG_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tenants",
    sqlite: "CREATE TABLE tenants (
        id TEXT PRIMARY KEY, backend TEXT NOT NULL, location TEXT NOT NULL,
        status TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER,
        purge_after INTEGER)",
    postgres: "CREATE TABLE tenants (
        id TEXT PRIMARY KEY, backend TEXT NOT NULL, location TEXT NOT NULL,
        status TEXT NOT NULL, created_at BIGINT NOT NULL, deleted_at BIGINT,
        purge_after BIGINT)",
}];

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

/// What a provisioning call returns: how the tenant's database is reached, and (see
/// [`Credential`]) with what.
#[derive(Debug, Clone, Serialize)]
pub struct Descriptor {
    pub tenant: Uuid,
    pub backend: &'static str,
    pub status: String,
    /// SQLite: the file name under the data dir; PostgreSQL: the database name.
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<String>,
    /// The tenant's scoped credential. PostgreSQL: present only in the answer that created
    /// (or restored) the database and in a rotation's answer — the password is not stored
    /// anywhere but in PostgreSQL's own SCRAM verifier. SQLite: always (it holds no secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// A credential that reaches the tenant's own database and nothing else.
#[derive(Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// Log in as the tenant's own role; it may connect to its database only.
    Postgres {
        user: String,
        password: String,
        database: String,
        host: String,
        port: u16,
        /// `postgres://user:password@host:port/database`
        url: String,
    },
    /// Embedded SQLite has no database-level login: the tenant's app reaches its data only
    /// through the document API, with an access token from identity of `audience` and
    /// `scopes`, whose `tid` is `tenant`, sent with `X-Tansu-Tenant: tenant`. No secret here.
    DocumentApi {
        base_path: &'static str,
        audience: String,
        scopes: [&'static str; 2],
        tenant_header: &'static str,
        tenant: Uuid,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Postgres { user, .. } => f
                .debug_struct("Postgres")
                .field("user", user)
                .finish_non_exhaustive(),
            Credential::DocumentApi { tenant, .. } => f
                .debug_struct("DocumentApi")
                .field("tenant", tenant)
                .finish_non_exhaustive(),
        }
    }
}

/// 32 bytes from the operating system's CSPRNG, base64url: 43 characters of `[A-Za-z0-9_-]`,
/// safe inside a SQL string literal and a URL's userinfo as they are.
fn generate_password() -> Result<String, TenantError> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TenantError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
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

struct Open {
    store: Store,
    last_used: Instant,
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
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
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
            Pool::Pg(
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
        migrate(&catalog, CATALOG_MIGRATIONS)
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

    fn pg_credential(&self, d: &Descriptor, password: String) -> Option<Credential> {
        let (Some(user), Some(host), Some(port)) = (d.role.clone(), d.host.clone(), d.port) else {
            return None;
        };
        // `user` and `database` are `<validated prefix><uuid hex>`, the password base64url:
        // nothing in the URL needs escaping. An IPv6 host goes in brackets.
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let url = format!(
            "postgres://{user}:{password}@{host_part}:{port}/{}",
            d.database
        );
        Some(Credential::Postgres {
            user,
            password,
            database: d.database.clone(),
            host,
            port,
            url,
        })
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

    /// The tenant's catalog entry.
    pub async fn record(&self, tenant: Uuid) -> Result<Option<Descriptor>, TenantError> {
        let row = on_pool!(&self.catalog, p => {
            sqlx::query(
                "SELECT backend, location, status, created_at, purge_after FROM tenants WHERE id = $1",
            )
            .bind(tenant.to_string())
            .fetch_optional(p)
            .await?
            .map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.try_get::<String, _>("backend")?,
                    r.try_get::<String, _>("location")?,
                    r.try_get::<String, _>("status")?,
                    r.try_get::<i64, _>("created_at")?,
                    r.try_get::<Option<i64>, _>("purge_after")?,
                ))
            })
            .transpose()?
        });
        Ok(row.map(|(backend, location, status, created, purge)| {
            let pg = backend == "postgres";
            let (host, port) = match (&self.backend, pg) {
                (Backend::Postgres { options, .. }, true) => (
                    Some(options.get_host().to_owned()),
                    Some(options.get_port()),
                ),
                _ => (None, None),
            };
            let credential = (!pg).then(|| Credential::DocumentApi {
                base_path: "/db/api",
                audience: self.config.audience.clone(),
                scopes: ["db.read", "db.write"],
                tenant_header: "X-Tansu-Tenant",
                tenant,
            });
            Descriptor {
                credential,
                tenant,
                backend: if pg { "postgres" } else { "sqlite" },
                status,
                role: pg.then(|| location.clone()),
                database: location,
                host,
                port,
                created_at: rfc3339(created),
                purge_after: purge.map(rfc3339),
            }
        }))
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

    /// Opens (or finds) the tenant's store; the caller holds the tenant's lock, so one
    /// tenant is opened and migrated once while others open in parallel.
    /// Only provisioning creates a SQLite file: a file that vanished from under an active
    /// tenant is an error to notice, not an empty database to serve.
    async fn open_locked(&self, tenant: Uuid, create: bool) -> Result<Store, TenantError> {
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
                Pool::Pg(
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

    /// How many tenant pools are open (tests and metrics).
    pub async fn open_count(&self) -> usize {
        self.open.lock().await.len()
    }

    async fn evict(&self, tenant: Uuid) {
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

/// Drops idle pools and purges expired tenants in the background while the service lives.
async fn reaper(tenants: Weak<Tenants>) {
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

/// `CREATE ROLE`, `CREATE DATABASE … OWNER`, `REVOKE CONNECT … FROM PUBLIC`; each step
/// skipped when already done, so a provisioning interrupted half-way completes on retry.
/// `name` is `<validated prefix><uuid hex>`: safe to quote as an identifier.
async fn create_pg_database(admin: &sqlx::PgPool, name: &str) -> Result<(), sqlx::Error> {
    let role: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await?;
    if role.is_none() {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE ROLE \"{name}\" NOLOGIN"
            )))
            .await?;
    }
    // The service works as the tenant's role (SET ROLE): it must be a member.
    if let Err(e) = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "GRANT \"{name}\" TO CURRENT_USER"
        )))
        .await
    {
        tracing::debug!(error = %e, "granting the tenant role to the service user");
    }
    let db: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await?;
    if db.is_none() {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{name}\" OWNER \"{name}\""
            )))
            .await?;
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC"
        )))
        .await?;
    // The owner has these already; granted explicitly so the intent reads in `\l`.
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "GRANT CONNECT, TEMPORARY ON DATABASE \"{name}\" TO \"{name}\""
        )))
        .await?;
    Ok(())
}

/// `Some(password)`: the role may log in with it (`LOGIN PASSWORD`); `None`: it may not
/// (`NOLOGIN PASSWORD NULL`) and its open sessions are terminated. `name` is
/// `<validated prefix><uuid hex>`, the password base64url: both safe to splice (a role's
/// password cannot be a bound parameter).
async fn set_pg_password(
    admin: &sqlx::PgPool,
    name: &str,
    password: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = match password {
        Some(p) => format!("ALTER ROLE \"{name}\" LOGIN PASSWORD '{p}'"),
        None => format!("ALTER ROLE \"{name}\" NOLOGIN PASSWORD NULL"),
    };
    admin.execute(sqlx::AssertSqlSafe(sql)).await?;
    if password.is_none() {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(name)
            .execute(admin)
            .await?;
    }
    Ok(())
}

async fn drop_pg_database(admin: &sqlx::PgPool, name: &str) -> Result<(), sqlx::Error> {
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS \"{name}\""
        )))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Unknown tenants have no store.
        assert!(matches!(
            tenants.store(Uuid::now_v7()).await,
            Err(TenantError::NotProvisioned)
        ));
    }
}
