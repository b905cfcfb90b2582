//! `tansu-database` — tenant-scoped document databases behind scope-protected APIs
//! (`db.read`/`db.write`, audience `tansu.db`; provisioning with `db.provision`).
//!
//! Every tenant gets its own database — a SQLite file under `<data_dir>/tenants/` by default, a
//! PostgreSQL database on the configured server in production — so one tenant's data never
//! shares a database with another's. The service keeps its own catalog of tenants
//! (`database_url`, SQLite `<data_dir>/catalog.db` by default).
//!
//! Routes (behind the gateway these are under `/db`):
//!
//! | route | scope | what |
//! |---|---|---|
//! | `PUT /provision/{tenant}` | `db.provision` | create the tenant's database (idempotent; 201 new, 200 existing) |
//! | `GET /provision/{tenant}` | `db.provision` | its descriptor |
//! | `DELETE /provision/{tenant}` | `db.provision` | soft delete (202); purged after `retention_secs` |
//! | `POST /provision/purge` | `db.provision` | purge soft-deleted databases past retention now |
//! | `POST /provision/{tenant}/credential/rotate` | `db.provision` | a new password for the tenant's database login |
//! | `POST /provision/compact` | `db.provision` | apply the change-feed retention to open tenants now |
//! | `GET, POST /api/collections` | read / write | list / create (`{name, schema?}`) |
//! | `GET, DELETE /api/collections/{c}` | read / write | describe (with indexes) / drop |
//! | `GET, POST /api/collections/{c}/indexes`, `DELETE …/indexes/{name}` | read / write | indexes on JSON fields |
//! | `GET, POST /api/collections/{c}/documents` | read / write | list (`limit, cursor, sort, fields`) / create |
//! | `POST /api/collections/{c}/bulk` | write | insert many in one transaction |
//! | `POST /api/collections/{c}/query` | read | filter, sort, project, paginate ([`query`]) |
//! | `GET, PUT, PATCH, DELETE /api/collections/{c}/documents/{id}` | read / write | `ETag`, `If-Match`, `If-None-Match`; PATCH is JSON Merge Patch |
//! | `GET /api/changes?since=` | read | the change feed, in commit order |
//! | `GET /api/changes/stream?since=` | read | the same as server-sent events (ends at the token's `exp` and when the tenant stops being active: [`stream`]) |
//!
//! Document API requests carry the tenant in `X-Tansu-Tenant` (injected by the gateway) and a
//! token whose `tid` equals it; both are checked by `tansu_shared::auth::Tenant`.
#![forbid(unsafe_code)]
// `Problem` is the error every handler answers with; it is built once per failed request, so
// its size (a few words more than clippy likes) costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod api;
/// The API's OpenAPI 3.1 document (`/openapi.json`).
pub use api::openapi;
mod body;
/// The `db_query` fuzz target's body (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
mod ident;
pub mod query;
mod schema;
pub mod store;
mod stream;
pub mod tenants;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use serde::{Deserialize, Serialize};
use tansu_shared::auth::{Verifier, VerifierConfig};
use tansu_shared::config::{Secret, Validate};
use tansu_shared::health::Health;
use tansu_shared::tenant_directory::{TenantDirectory, TenantDirectoryConfig};
use tokio::net::TcpListener;

use crate::tenants::Tenants;

/// The `[database]` section of the platform config.
///
/// Everything has a development default; the dev stack should set `issuer` (and
/// `discovery_url`/`jwks_uri` to reach identity on its internal address) and `data_dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// The exact `iss` of accepted tokens (ends with '/').
    pub issuer: String,
    /// The audience tokens must carry.
    pub audience: String,
    /// Where to read the issuer metadata when not `{issuer}.well-known/openid-configuration`
    /// (the issuer on an internal address). Empty: derived from `issuer`.
    pub discovery_url: String,
    /// Read keys from here and skip discovery. Empty: from discovery.
    pub jwks_uri: String,
    /// The platform tenant's id: provisioning tokens may carry it as `tid`. Empty: provisioning
    /// tokens must carry no `tid` at all (platform client-credentials tokens).
    pub platform_tenant: String,
    /// The catalog and, by default, the tenants' SQLite files.
    pub data_dir: PathBuf,
    /// The service's own catalog database: empty = SQLite `<data_dir>/catalog.db`,
    /// `sqlite:<path>` or `postgres://…`.
    pub database_url: Secret,
    /// A PostgreSQL server for the tenants' databases (one database per tenant, created
    /// with this URL's user, which needs CREATEDB and CREATEROLE). Empty: SQLite files under
    /// `<data_dir>/tenants/`.
    pub postgres_url: Secret,
    /// Tenant databases and roles on PostgreSQL are named `<prefix><tenant uuid hex>`.
    pub tenant_db_prefix: String,
    /// At most this many tenant pools open at once (least recently used closed first).
    pub max_open_tenants: usize,
    /// Connections per tenant pool.
    pub tenant_pool_size: u32,
    /// A tenant pool unused this long is closed.
    pub tenant_idle_secs: u64,
    /// How long a deprovisioned tenant's data is kept before it may be purged.
    pub retention_secs: u64,
    /// How often expired tenants are purged (and open tenants' change feeds compacted) in the
    /// background.
    pub purge_interval_secs: u64,
    /// Changes older than this are removed from a tenant's change feed (0: kept for ever).
    pub change_retention_secs: u64,
    /// At most this many of the newest changes are kept per tenant (0: no limit).
    pub change_retention_count: u64,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Documents larger than this (serialised) are refused with 413.
    pub max_document_bytes: usize,
    /// JSON nested deeper than this is refused with 400.
    pub max_depth: usize,
    /// Documents per bulk insert.
    pub max_bulk: usize,
    /// Documents per page and changes per feed request.
    pub max_page: u32,
    /// Serve the API's description as a page at `/openapi` (dev mode); `/openapi.json` is
    /// always served.
    pub api_docs: bool,
    /// `[database.events]`: report access denials to identity (off while empty).
    pub events: tansu_shared::events::EventReporting,
    /// `[database.tenant_directory]`: identity's tenant directory, to end change streams of
    /// suspended or deleted tenants (off while empty).
    pub tenant_directory: TenantDirectoryConfig,
    /// Redis carrying the platform's pushed changes (`tansu:changes`): a deprovision here closes
    /// the tenant's pool at every other replica at once, and identity's tenant changes expire
    /// the cached tenant status. Empty: other replicas notice a deprovision within
    /// `tenants::RECHECK` (2 s).
    pub redis_url: Secret,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7002".into(),
            issuer: "https://127.0.0.1:8443/identity/".into(),
            audience: "tansu.db".into(),
            events: Default::default(),
            tenant_directory: TenantDirectoryConfig::default(),
            redis_url: Secret::default(),
            discovery_url: String::new(),
            jwks_uri: String::new(),
            platform_tenant: String::new(),
            data_dir: PathBuf::from(".tansu/database"),
            database_url: Secret::default(),
            postgres_url: Secret::default(),
            tenant_db_prefix: "tansu_tenant_".into(),
            max_open_tenants: 256,
            tenant_pool_size: 4,
            tenant_idle_secs: 300,
            retention_secs: 7 * 24 * 3600,
            purge_interval_secs: 3600,
            change_retention_secs: 7 * 24 * 3600,
            change_retention_count: 0,
            max_body_bytes: 8 * 1024 * 1024,
            max_document_bytes: 1024 * 1024,
            max_depth: 32,
            max_bulk: 1000,
            max_page: 1000,
            api_docs: false,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Err(e) = self.listen.parse::<std::net::SocketAddr>() {
            v.push(format!("listen: {e}"));
        }
        if !self.issuer.ends_with('/') {
            v.push("issuer: must end with '/'".into());
        }
        for (key, value) in [
            ("discovery_url", &self.discovery_url),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if !value.is_empty() && url::Url::parse(value).is_err() {
                v.push(format!("{key}: not a URL"));
            }
        }
        if !self.platform_tenant.is_empty() && uuid::Uuid::parse_str(&self.platform_tenant).is_err()
        {
            v.push("platform_tenant: must be a UUID".into());
        }
        let p = &self.tenant_db_prefix;
        if p.is_empty()
            || p.len() > 30
            || !p.as_bytes()[0].is_ascii_lowercase()
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            v.push("tenant_db_prefix: must match ^[a-z][a-z0-9_]{0,29}$".into());
        }
        let db = self.database_url.expose();
        if !(db.is_empty()
            || db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            v.push("database_url: must be empty, sqlite:<path> or a postgres:// URL".into());
        }
        let pg = self.postgres_url.expose();
        if !(pg.is_empty() || pg.starts_with("postgres://") || pg.starts_with("postgresql://")) {
            v.push("postgres_url: must be a postgres:// URL".into());
        }
        if self.max_open_tenants == 0 {
            v.push("max_open_tenants: must be at least 1".into());
        }
        if self.tenant_pool_size == 0 {
            v.push("tenant_pool_size: must be at least 1".into());
        }
        if self.max_page == 0 || self.max_bulk == 0 || self.max_depth == 0 {
            v.push("max_page, max_bulk and max_depth must be at least 1".into());
        }
        v.extend(self.tenant_directory.validate("tenant_directory"));
        if let Err(e) = tansu_shared::changes::Publisher::new(self.redis_url.expose()) {
            v.push(format!("redis_url: {e}"));
        }
        v
    }
}

/// Shared state of the service's handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub verifier: Verifier,
    pub tenants: Arc<Tenants>,
    /// Reports access denials to identity, when configured.
    pub events: Option<tansu_shared::events::EventReporter>,
    /// Tenants' status, when configured: change streams of inactive tenants end.
    pub directory: Option<TenantDirectory>,
    /// Pushes deprovisions to the other replicas (`redis_url`; does nothing without it).
    pub changes: Arc<tansu_shared::changes::Publisher>,
    schemas: Arc<schema::SchemaCache>,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.verifier.clone()
    }
}

impl AppState {
    /// Opens the catalog and the token verifier (an unreachable issuer is not an error: keys
    /// are fetched when first needed).
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        // Validated here too, not only by `load_section`: the tenant database prefix is spliced
        // into identifiers, so no code path may start with an unchecked one.
        let problems = config.validate();
        if !problems.is_empty() {
            anyhow::bail!("database configuration is invalid: {}", problems.join("; "));
        }
        let config = Arc::new(config);
        let mut vc = VerifierConfig::new(config.issuer.clone(), config.audience.clone());
        if !config.discovery_url.is_empty() {
            vc.discovery_url = Some(url::Url::parse(&config.discovery_url)?);
        }
        if !config.jwks_uri.is_empty() {
            vc.jwks_uri = Some(url::Url::parse(&config.jwks_uri)?);
        }
        // A DPoP proof used at one replica is refused at the others (with `redis_url`).
        let dpop = tansu_shared::auth::DpopState {
            replay: tansu_shared::auth::dpop::ReplayCache::shared(config.redis_url.expose())
                .map_err(|e| anyhow::anyhow!("database.redis_url: {e}"))?,
            nonces: None,
        };
        let verifier = Verifier::with_dpop(vc, dpop)
            .await
            .map_err(anyhow::Error::msg)?;
        let tenants = Tenants::open(config.clone()).await?;
        let events = config.events.start("database")?;
        let directory = config.tenant_directory.start()?;
        if directory.is_none() {
            tracing::warn!(
                "no tenant_directory configured: change streams of suspended tenants end only at their tokens' expiry"
            );
        }
        let changes = Arc::new(
            tansu_shared::changes::Publisher::new(config.redis_url.expose())
                .map_err(anyhow::Error::msg)?,
        );
        Ok(AppState {
            config,
            verifier,
            tenants,
            events,
            directory,
            changes,
            schemas: Arc::default(),
        })
    }
}

/// The paths of the service's API routes (health and metrics aside), for the authorization
/// matrix tests: they enumerate the routes from the router itself.
pub fn route_paths() -> Vec<&'static str> {
    api::routes().paths().to_vec()
}

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let tenants = state.tenants.clone();
    let health = Health::new("database").check("catalog", move || {
        let t = tenants.clone();
        async move { t.ping().await.map_err(|e| format!("catalog: {e}")) }
    });
    let events = state.events.clone();
    let mut api = api::routes()
        .into_router()
        .route("/openapi.json", axum::routing::get(api::openapi::json))
        .route("/openapi", axum::routing::get(api::openapi::page))
        .with_state(state);
    if let Some(reporter) = events {
        api = api.layer(axum::middleware::from_fn_with_state(
            reporter,
            tansu_shared::events::report_denials,
        ));
    }
    let routes = api
        .merge(health.router())
        .fallback(tansu_shared::problem::not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed);
    tansu_shared::server::with_common_layers("database", routes)
}

async fn method_not_allowed() -> tansu_shared::Problem {
    tansu_shared::Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    )
}

/// Serves on `config.listen` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tansu_shared::server::bind(&config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (the dev stack and tests bind first).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    tracing::info!(addr = %listener.local_addr()?, "database listening");
    let changes = (!state.config.redis_url.is_empty()).then(|| {
        let url = state.config.redis_url.expose().to_owned();
        let (directory, tenants) = (state.directory.clone(), state.tenants.clone());
        tokio::spawn(async move {
            let on_database = move |tenant| {
                let tenants = tenants.clone();
                tokio::spawn(async move { tenants.deprovisioned_elsewhere(tenant).await });
            };
            tansu_shared::changes::follow_tenants(
                &url,
                directory,
                on_database,
                std::future::pending(),
            )
            .await;
        })
    });
    let tenants = state.tenants.clone();
    let closing = tenants.clone();
    let shutdown = async move {
        shutdown.await;
        closing.begin_shutdown();
    };
    let served = tansu_shared::server::serve(listener, router(state), shutdown).await;
    if let Some(c) = changes {
        c.abort();
    }
    served?;
    tenants.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_key_and_never_echoes_secrets() {
        assert!(Config::default().validate().is_empty());
        let c = Config {
            issuer: "https://no-slash".into(),
            tenant_db_prefix: "Bad-Prefix".into(),
            database_url: Secret::new("mysql://user:hunter2@db/x"),
            postgres_url: Secret::new("http://user:hunter2@db/x"),
            ..Default::default()
        };
        let problems = c.validate().join("\n");
        for key in ["issuer", "tenant_db_prefix", "database_url", "postgres_url"] {
            assert!(problems.contains(key), "{problems}");
        }
        assert!(!problems.contains("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let printed = tansu_shared::config::to_redacted_toml("database", &c);
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
