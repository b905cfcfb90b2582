//! `tansu-storage` — tenant object storage behind scope-protected APIs (`storage.read`/
//! `storage.write`, audience `tansu.storage`).
//!
//! Buckets and objects per tenant with S3-grade semantics: streaming uploads and downloads,
//! `Range`, RFC 9110 conditional requests, content-hash `ETag`s, checksum verification, user
//! metadata, listings with prefix/delimiter/continuation, per-tenant quotas enforced atomically,
//! and presigned URLs. Blobs go through `object_store` (local file system by default, S3 by
//! configuration); metadata lives in the service's own SQLite or PostgreSQL database.
//!
//! Module map: [`api`] (routes, handlers, access), [`store`] (metadata, quotas), [`backend`]
//! (blobs, temp files, durability), [`admin`] (per-tenant quota overrides), [`conditional`] (RFC 9110 preconditions and ranges),
//! [`names`] (bucket and key rules), [`presign`] (URL signatures and sealed keys), [`content`]
//! (what browsers may do with an object: nosniff, sandbox, attachment).
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod backend;
pub mod conditional;
pub mod content;
/// The `storage_request` fuzz target's body (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod multipart;
pub mod names;
pub mod openapi;
pub mod presign;
pub mod store;

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

use crate::backend::Backend;
use crate::presign::PresignKeys;
use crate::store::{Quota, Store};

/// The `[storage]` section of the platform config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// The exact `iss` of accepted access tokens.
    pub issuer: String,
    /// The audience required in access tokens.
    pub audience: String,
    /// Where to read the issuer's metadata, when not `{issuer}.well-known/openid-configuration`
    /// (services reaching the issuer on an internal address).
    pub discovery_url: Option<url::Url>,
    /// Read keys from this JWKS directly (skips discovery).
    pub jwks_uri: Option<url::Url>,
    /// Data directory: `objects/` (local backend), `tmp/` (uploads in flight), `storage.db`,
    /// `master.key`.
    pub data_dir: PathBuf,
    /// Metadata database: `sqlite://…` or `postgres://…`; empty: `sqlite://<data_dir>/storage.db`.
    pub database_url: Secret,
    /// `local` (objects under `<data_dir>/objects/<tenant>/`) or `s3`.
    pub backend: String,
    pub s3: S3Config,
    /// Master key sealing the presigning keys (base64 of 32 bytes). Empty: read
    /// `master_key_file`, creating it (0600) with a random key when missing.
    pub master_key: Secret,
    /// Default `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Largest single object.
    pub max_object_bytes: u64,
    /// Default per-tenant quota: total bytes.
    pub quota_bytes: u64,
    /// Default per-tenant quota: number of objects.
    pub quota_objects: u64,
    /// Longest lifetime of a presigned URL.
    pub max_presign_secs: u64,
    /// An upload that sends nothing for this long is abandoned (408).
    pub upload_idle_timeout_secs: u64,
    /// Multipart uploads not completed within this time are aborted.
    pub multipart_expiry_secs: u64,
    /// The public path prefix of this service behind the gateway (for presigned URLs).
    pub public_prefix: String,
    /// Where this service's root is public when storage has an origin of its own
    /// (`https://files.example-usercontent.net`, optionally with a path): presigned URLs are
    /// built for it instead of `public_prefix`. Empty: objects are served from the platform's
    /// origin (behind the gateway).
    pub public_origin: String,
    /// Object types answered inline (`type/subtype`, exact); every other type is an attachment.
    /// Active types (HTML, SVG, XML, scripts) only with `public_origin`.
    pub inline_content_types: Vec<String>,
    /// `[storage.tenant_directory]`: identity's tenant directory, to refuse presigned URLs of
    /// suspended or deleted tenants when they are used (off while empty).
    pub tenant_directory: TenantDirectoryConfig,
    /// Redis carrying identity's pushed tenant changes (`tansu:changes`): a suspension expires
    /// the cached tenant status at once. Empty: the directory cache's time bound only.
    pub redis_url: Secret,
    /// `[storage.events]`: report access denials to identity (off while empty).
    pub events: tansu_shared::events::EventReporting,
    /// The platform tenant's id: quota administration tokens may carry it as `tid`. Empty:
    /// they must carry no `tid` at all (platform client-credentials tokens).
    pub platform_tenant: String,
    /// Serve the API's description as a page at `/openapi` (dev mode); `/openapi.json` is
    /// always served.
    pub api_docs: bool,
}

/// An S3-compatible backend (AWS S3, MinIO, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Allow `http://` endpoints (local MinIO).
    pub allow_http: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7003".into(),
            issuer: "https://127.0.0.1:8443/identity/".into(),
            audience: "tansu.storage".into(),
            discovery_url: None,
            jwks_uri: None,
            data_dir: PathBuf::from(".tansu/storage"),
            database_url: Secret::default(),
            backend: "local".into(),
            s3: S3Config::default(),
            master_key: Secret::default(),
            master_key_file: None,
            max_object_bytes: 5 << 30,
            quota_bytes: 10 << 30,
            quota_objects: 100_000,
            max_presign_secs: 7 * 24 * 3600,
            upload_idle_timeout_secs: 60,
            multipart_expiry_secs: 7 * 24 * 3600,
            public_prefix: "/storage".into(),
            public_origin: String::new(),
            inline_content_types: content::default_inline_types(),
            tenant_directory: TenantDirectoryConfig::default(),
            redis_url: Secret::default(),
            events: Default::default(),
            platform_tenant: String::new(),
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
        if self.issuer.is_empty() {
            v.push("issuer: must be set".into());
        }
        if self.audience.is_empty() {
            v.push("audience: must be set".into());
        }
        let db = self.database_url.expose();
        if !(db.is_empty()
            || db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            v.push("database_url: must be sqlite:… or postgres://…".into());
        }
        match self.backend.as_str() {
            "local" => {}
            "s3" => {
                if self.s3.bucket.is_empty() {
                    v.push("s3.bucket: must be set for the s3 backend".into());
                }
            }
            _ => v.push("backend: must be \"local\" or \"s3\"".into()),
        }
        if self.max_object_bytes == 0 || self.max_object_bytes > i64::MAX as u64 {
            v.push("max_object_bytes: must be positive".into());
        }
        if self.quota_bytes > i64::MAX as u64 || self.quota_objects > i64::MAX as u64 {
            v.push("quota_bytes/quota_objects: too large".into());
        }
        if self.max_presign_secs == 0 {
            v.push("max_presign_secs: must be positive".into());
        }
        if !self.platform_tenant.is_empty() && uuid::Uuid::parse_str(&self.platform_tenant).is_err()
        {
            v.push("platform_tenant: must be a UUID".into());
        }
        if self.upload_idle_timeout_secs == 0 {
            v.push("upload_idle_timeout_secs: must be positive".into());
        }
        if !self.public_origin.is_empty() {
            match url::Url::parse(&self.public_origin) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none() => {}
                _ => v.push(
                    "public_origin: an http(s) URL without credentials, query or fragment".into(),
                ),
            }
        }
        for t in &self.inline_content_types {
            let t = t.to_ascii_lowercase();
            if !content::is_plain_media_type(&t) {
                v.push(format!(
                    "inline_content_types: {t:?} is not a type/subtype (no wildcards or parameters)"
                ));
            } else if content::is_active(&t) && self.public_origin.is_empty() {
                v.push(format!(
                    "inline_content_types: {t} is active content; it may be inline only from a public_origin of storage's own"
                ));
            }
        }
        v.extend(self.tenant_directory.validate("tenant_directory"));
        if let Err(e) = tansu_shared::changes::Publisher::new(self.redis_url.expose()) {
            v.push(format!("redis_url: {e}"));
        }
        v
    }
}

impl Config {
    pub fn effective_database_url(&self) -> String {
        let url = self.database_url.expose();
        if url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("storage.db").display())
        } else {
            url.to_owned()
        }
    }
}

/// Shared state of the service's handlers.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub verifier: Verifier,
    pub store: Store,
    pub backend: Arc<Backend>,
    pub presign_keys: Arc<PresignKeys>,
    /// Reports access denials to identity, when configured.
    pub events: Option<tansu_shared::events::EventReporter>,
    /// Tenants' status, when configured: presigned URLs of inactive tenants are refused.
    pub directory: Option<TenantDirectory>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.verifier.clone()
    }
}

impl AppState {
    /// Opens the data directory, the metadata database (migrated) and the blob backend.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        use anyhow::Context;
        let problems = config.validate();
        anyhow::ensure!(
            problems.is_empty(),
            "storage configuration is invalid: {}",
            problems.join("; ")
        );
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let store = Store::connect(&config.effective_database_url())
            .await
            .context("opening the metadata database")?;
        store.clear_reservations().await?;
        let backend = match config.backend.as_str() {
            "s3" => {
                let s3 = &config.s3;
                // A SHA-256 checksum with every upload (and part): the S3 server refuses
                // bytes corrupted on the way.
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_allow_http(s3.allow_http)
                    .with_checksum_algorithm(object_store::aws::Checksum::SHA256);
                if !s3.endpoint.is_empty() {
                    b = b.with_endpoint(&s3.endpoint);
                }
                if !s3.region.is_empty() {
                    b = b.with_region(&s3.region);
                }
                if !s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(s3.secret_access_key.expose());
                }
                let store = b.build().context("configuring the S3 backend")?;
                Backend::with_store(Arc::new(store), None, &config.data_dir)?
            }
            _ => Backend::local(&config.data_dir)?,
        };
        // Blobs a crash left unreferenced (placed but never committed, or replaced but never
        // removed) are garbage now.
        let orphans = store.orphaned_blobs().await?;
        if !orphans.is_empty() {
            tracing::info!(count = orphans.len(), "removing orphaned blobs");
        }
        for (tenant, blob) in orphans {
            let path = object_store::path::Path::from(format!("{tenant}/{blob}"));
            if backend.delete(&path).await {
                store.remove_intent(&tenant, &blob).await?;
            }
        }
        let key_file = config
            .master_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("master.key"));
        let master = presign::load_master_key(config.master_key.expose(), &key_file)
            .context("loading the master key")?;
        let presign_keys = PresignKeys::new(&master)?;
        let mut vc = VerifierConfig::new(config.issuer.clone(), config.audience.clone());
        vc.discovery_url = config.discovery_url.clone();
        vc.jwks_uri = config.jwks_uri.clone();
        // A DPoP proof used at one replica is refused at the others (with `redis_url`).
        let dpop = tansu_shared::auth::DpopState {
            replay: tansu_shared::auth::dpop::ReplayCache::shared(config.redis_url.expose())
                .map_err(|e| anyhow::anyhow!("storage.redis_url: {e}"))?,
            nonces: None,
        };
        let verifier = Verifier::with_dpop(vc, dpop)
            .await
            .map_err(|e| anyhow::anyhow!("token verifier: {e}"))?;
        let events = config.events.start("storage")?;
        let directory = config.tenant_directory.start()?;
        if directory.is_none() {
            tracing::warn!(
                "no tenant_directory configured: presigned URLs keep working for suspended or deleted tenants until they expire"
            );
        }
        Ok(AppState {
            config: Arc::new(config),
            verifier,
            store,
            backend: Arc::new(backend),
            presign_keys: Arc::new(presign_keys),
            events,
            directory,
        })
    }

    /// The configured default quota; a tenant's override (see [`admin`]) takes precedence
    /// inside the store's quota checks.
    pub fn quota(&self) -> Quota {
        Quota {
            bytes: self.config.quota_bytes as i64,
            objects: self.config.quota_objects as i64,
        }
    }
}

/// The paths of the service's API routes (health and metrics aside), for the authorization
/// matrix tests: they enumerate the routes from the router itself.
pub fn route_paths() -> Vec<&'static str> {
    api::routes().paths().to_vec()
}

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let store = state.store.clone();
    let health = Health::new("storage").check("database", move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let events = state.events.clone();
    let mut api = api::routes()
        .into_router()
        .route("/openapi.json", axum::routing::get(openapi::json))
        .route("/openapi", axum::routing::get(openapi::page))
        .with_state(state);
    if let Some(reporter) = events {
        api = api.layer(axum::middleware::from_fn_with_state(
            reporter,
            tansu_shared::events::report_denials,
        ));
    }
    let routes = Router::new()
        .merge(api)
        .merge(health.router())
        .fallback(tansu_shared::problem::not_found_fallback);
    tansu_shared::server::with_common_layers("storage", routes)
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
    tracing::info!(addr = %listener.local_addr()?, "storage listening");
    let state = AppState::new(config).await?;
    // Abandoned multipart uploads are aborted at start-up and then hourly, until shutdown.
    let sweeper = tokio::spawn({
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                every.tick().await;
                match multipart::abort_expired(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "aborted expired multipart uploads"),
                    Err(e) => tracing::warn!(error = %e, "could not sweep multipart uploads"),
                }
            }
        }
    });
    let changes = (!state.config.redis_url.is_empty()).then(|| {
        let (url, directory) = (
            state.config.redis_url.expose().to_owned(),
            state.directory.clone(),
        );
        tokio::spawn(async move {
            tansu_shared::changes::follow_tenants(&url, directory, |_| {}, std::future::pending())
                .await;
        })
    });
    let served = tansu_shared::server::serve(listener, router(state), shutdown).await;
    sweeper.abort();
    if let Some(c) = changes {
        c.abort();
    }
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_key() {
        assert!(Config::default().validate().is_empty());
        let c = Config {
            backend: "s3".into(),
            ..Default::default()
        };
        assert_eq!(c.validate(), ["s3.bucket: must be set for the s3 backend"]);
        let c = Config {
            backend: "ftp".into(),
            database_url: Secret::new("mysql://x"),
            ..Default::default()
        };
        assert_eq!(c.validate().len(), 2);
        // Active content inline only from an origin of storage's own; types are exact.
        let c = Config {
            inline_content_types: vec!["image/svg+xml".into(), "image/*".into()],
            ..Default::default()
        };
        let v = c.validate();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().all(|p| p.starts_with("inline_content_types:")));
        let c = Config {
            inline_content_types: vec!["image/svg+xml".into()],
            public_origin: "https://files.example-usercontent.net".into(),
            ..Default::default()
        };
        assert!(c.validate().is_empty());
        for bad in [
            "files.example.net",
            "ftp://x",
            "https://u:p@x",
            "https://x/?q",
            "https://x/#f",
        ] {
            let c = Config {
                public_origin: bad.into(),
                ..Default::default()
            };
            assert_eq!(c.validate().len(), 1, "{bad}");
        }
        // Secrets stay out of Debug output.
        let c = Config {
            database_url: Secret::new("postgres://u:hunter2@127.0.0.1/db"),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn s3_backend_is_built_from_configuration() {
        let dir = std::env::temp_dir().join(format!("tansu-storage-s3-{}", uuid::Uuid::now_v7()));
        let state = AppState::new(Config {
            data_dir: dir.clone(),
            backend: "s3".into(),
            s3: S3Config {
                endpoint: "http://127.0.0.1:9".into(),
                bucket: "tansu".into(),
                region: "us-east-1".into(),
                access_key_id: "minio".into(),
                secret_access_key: Secret::new("minio-secret"),
                allow_http: true,
            },
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(!format!("{state:?}").contains("minio-secret"));
        drop(state);
        let _ = std::fs::remove_dir_all(dir);
    }
}
