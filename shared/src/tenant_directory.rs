//! A tenant's status as identity's tenant directory knows it, for services that must refuse a
//! suspended or deleted tenant themselves.
//!
//! The gateway refuses a suspended tenant's requests when they arrive; two kinds of access
//! outlive that check and are re-checked by the service with this module:
//! - a presigned storage URL carries no token, and through the gateway's shared path it names
//!   no tenant the gateway could resolve: storage asks here when the URL is used;
//! - a change-feed stream lasts long after the gateway let its request through: database-svc
//!   asks here while the stream runs.
//!
//! Lookups are `GET {identity_url}admin/tenant-directory/{tenant}` with a client-credentials
//! token (scope `tenants.read`): `{"status": "active"|"suspended"}`, 404 for an unknown or
//! deleted tenant. Answers are cached for `cache_ms` (a suspension takes effect within it).
//! When identity cannot be reached, an answer up to `cache_ms + stale_ms` old is used, after
//! that the lookup fails and callers refuse (fail closed: 503) — the same freshness rules as
//! the gateway's own tenant cache.

// `Problem` is the answer services return by value (as every handler does).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument as _;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;
use uuid::Uuid;

use crate::Problem;
use crate::config::Secret;
use crate::token_source::{ClientCredentials, TokenSource};

/// The scope identity requires for its tenant directory.
pub const TENANTS_READ: &str = "tenants.read";

/// `[<service>.tenant_directory]`: where a service checks tenants' status. Off while
/// `identity_url` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantDirectoryConfig {
    /// identity's base URL as this service reaches it (its internal address), ending in '/';
    /// the token endpoint is `connect/token` below it.
    pub identity_url: String,
    /// A platform client allowed `tenants.read` (client credentials).
    pub client_id: String,
    pub client_secret: Secret,
    /// Read the secret from this file's first line instead (when `client_secret` is empty),
    /// at the first token request.
    pub client_secret_file: Option<std::path::PathBuf>,
    /// How long an answer is used without asking again.
    pub cache_ms: u64,
    /// How much longer an answer is used while identity cannot be reached.
    pub stale_ms: u64,
    /// Timeout of one lookup.
    pub timeout_ms: u64,
}

impl Default for TenantDirectoryConfig {
    fn default() -> Self {
        Self {
            identity_url: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: None,
            cache_ms: 5_000,
            stale_ms: 60_000,
            timeout_ms: 2_000,
        }
    }
}

impl TenantDirectoryConfig {
    /// Configuration errors, each naming its key under `prefix` (e.g. `tenant_directory`).
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut v = Vec::new();
        if self.identity_url.is_empty() {
            return v;
        }
        match Url::parse(&self.identity_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.path().ends_with('/') => {}
            _ => v.push(format!(
                "{prefix}.identity_url: an http(s) URL ending in '/'"
            )),
        }
        if self.client_id.is_empty() {
            v.push(format!(
                "{prefix}.client_id: required with {prefix}.identity_url"
            ));
        }
        if self.client_secret.is_empty() && self.client_secret_file.is_none() {
            v.push(format!(
                "{prefix}.client_secret or client_secret_file: required with {prefix}.identity_url"
            ));
        }
        if self.timeout_ms == 0 {
            v.push(format!("{prefix}.timeout_ms: must be positive"));
        }
        v
    }

    /// The directory client, or `None` when no directory is configured.
    pub fn start(&self) -> anyhow::Result<Option<TenantDirectory>> {
        if self.identity_url.is_empty() {
            return Ok(None);
        }
        let problems = self.validate("tenant_directory");
        anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
        let identity = Url::parse(&self.identity_url)?;
        crate::install_crypto_provider();
        let client = DirectoryClient::new(
            &identity,
            &self.client_id,
            &self.client_secret,
            self.client_secret_file.as_deref(),
            Duration::from_millis(self.timeout_ms),
        )?;
        Ok(Some(TenantDirectory {
            inner: Arc::new(Inner {
                client,
                cache: StatusCache::new(
                    Duration::from_millis(self.cache_ms),
                    Duration::from_millis(self.stale_ms),
                ),
            }),
        }))
    }
}

/// A tenant's status, as far as a service must act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
    /// Deleted, or never known to identity.
    Unknown,
}

impl TenantStatus {
    /// `Ok` for an active tenant; otherwise the problem a request of the tenant is answered
    /// with (the gateway's types: `tenant-suspended` 403, `unknown-tenant` 404).
    pub fn require_active(self) -> Result<(), Problem> {
        match self {
            TenantStatus::Active => Ok(()),
            TenantStatus::Suspended => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "tenant-suspended",
                "Tenant suspended",
            )),
            TenantStatus::Unknown => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "unknown-tenant",
                "Unknown tenant",
            )),
        }
    }
}

/// The answer when no status can be had: 503 (the lookup's error is logged, not echoed).
pub fn unavailable(error: &str) -> Problem {
    tracing::warn!(error, "tenant directory unavailable");
    Problem::service_unavailable("the tenant directory is unavailable")
}

/// identity's tenant directory behind a cache. Cheap to clone.
#[derive(Clone)]
pub struct TenantDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    client: DirectoryClient,
    cache: StatusCache,
}

impl std::fmt::Debug for TenantDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDirectory")
            .field("base", &self.inner.client.base.as_str())
            .finish_non_exhaustive()
    }
}

impl TenantDirectory {
    /// The tenant's status, from the cache or asked of identity. `Err`: identity cannot be
    /// reached and no usable answer is cached.
    pub async fn status(&self, tenant: Uuid) -> Result<TenantStatus, String> {
        self.inner
            .cache
            .lookup(tenant, || self.inner.fetch(tenant))
            .await
    }

    /// Makes the cached answer for `tenant` due (a change was pushed); it stays usable as a
    /// stale answer while identity cannot be asked.
    pub fn expire(&self, tenant: Uuid) {
        self.inner.cache.expire(Some(tenant));
    }

    /// Makes every cached answer due (changes may have been missed).
    pub fn expire_all(&self) {
        self.inner.cache.expire(None);
    }

    /// [`Self::status`] as a request's answer: `Ok` only for an active tenant.
    pub async fn require_active(&self, tenant: Uuid) -> Result<(), Problem> {
        self.status(tenant)
            .await
            .map_err(|e| unavailable(&e))?
            .require_active()
    }
}

impl Inner {
    async fn fetch(&self, tenant: Uuid) -> Result<TenantStatus, String> {
        Ok(match self.client.lookup(&tenant.to_string()).await? {
            Some(entry) if entry.active => TenantStatus::Active,
            // Anything but "active" is not active.
            Some(_) => TenantStatus::Suspended,
            None => TenantStatus::Unknown,
        })
    }
}

/// One answer of identity's tenant directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The tenant's id and slug, as identity answers them (absent from an older identity).
    pub id: Option<String>,
    pub slug: Option<String>,
    /// `status` was `"active"`; anything else is not active.
    pub active: bool,
    /// Browser origins the tenant allows to call its APIs (CORS at the gateway).
    pub allowed_origins: Vec<String>,
}

/// identity's tenant directory over HTTP, uncached: `GET {identity_url}admin/tenant-directory/
/// {reference}` (a tenant id or slug) with a client-credentials token (scope `tenants.read`).
/// A 401 refreshes the token once (identity may have restarted with new keys); any other
/// failure is an error, and the caller's cache decides what to serve. The services' status
/// cache ([`TenantDirectory`]) and the gateway's slug-and-id directory both ask through it.
pub struct DirectoryClient {
    base: Url,
    http: reqwest::Client,
    tokens: TokenSource,
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// The directory's answer on the wire, as identity serializes it and the clients read it
/// (`id` and `slug` may be absent from an older identity).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirectoryAnswer {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub slug: Option<String>,
    /// `active` or `suspended` (a deleted tenant is not in the directory).
    pub status: String,
    /// Browser origins (`https://app.example`) the tenant allows to call its APIs.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl DirectoryClient {
    /// A client of the directory below `identity` (its base URL, ending in '/'), with a token
    /// for `client_id` from `{identity}connect/token`: the secret, or when it is empty the
    /// first line of `secret_file`, read at the first token request.
    pub fn new(
        identity: &Url,
        client_id: &str,
        client_secret: &Secret,
        secret_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let creds = ClientCredentials {
            token_endpoint: identity.join("connect/token")?,
            client_id: client_id.to_owned(),
            client_secret: client_secret.clone(),
            scope: TENANTS_READ.into(),
        };
        let tokens = match secret_file {
            Some(file) if client_secret.is_empty() => {
                TokenSource::with_secret_file(creds, file.to_owned())
            }
            _ => TokenSource::new(creds),
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            base: identity.join("admin/tenant-directory/")?,
            http,
            tokens,
        })
    }

    /// The directory's answer for `reference` (one path segment: the caller checked it is an
    /// id or a slug); `Ok(None)` for an unknown or deleted tenant (404).
    pub async fn lookup(&self, reference: &str) -> Result<Option<DirectoryEntry>, String> {
        let url = self.base.join(reference).map_err(|e| e.to_string())?;
        for first in [true, false] {
            let token = self.tokens.token().await.map_err(|e| e.to_string())?;
            let (span, trace) = crate::telemetry::client_call("GET tenant directory");
            let resp = self
                .http
                .get(url.clone())
                .bearer_auth(&*token)
                .headers(trace)
                .send()
                .instrument(span)
                .await
                .map_err(|e| format!("tenant directory: {}", e.without_url()))?;
            match resp.status() {
                StatusCode::OK => {
                    let e: DirectoryAnswer = resp
                        .json()
                        .await
                        .map_err(|e| format!("tenant directory: {}", e.without_url()))?;
                    return Ok(Some(DirectoryEntry {
                        id: e.id,
                        slug: e.slug,
                        active: e.status == "active",
                        allowed_origins: e.allowed_origins,
                    }));
                }
                StatusCode::NOT_FOUND => return Ok(None),
                // identity may have restarted with new keys: one fresh token.
                StatusCode::UNAUTHORIZED if first => self.tokens.invalidate().await,
                s => return Err(format!("tenant directory answered {s}")),
            }
        }
        Err("tenant directory refused this service's token".into())
    }
}

/// Answers by tenant: fresh for `ttl`, usable `stale` longer while lookups fail. Bounded:
/// cleared when full.
struct StatusCache {
    ttl: Duration,
    stale: Duration,
    entries: Mutex<HashMap<Uuid, (Instant, TenantStatus)>>,
}

const MAX_ENTRIES: usize = 100_000;

impl StatusCache {
    fn new(ttl: Duration, stale: Duration) -> Self {
        Self {
            ttl,
            stale,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the answer for `tenant` (`None`: every answer) due now, keeping it for the stale
    /// window.
    fn expire(&self, tenant: Option<Uuid>) {
        let due = Instant::now().checked_sub(self.ttl);
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (id, (at, _)) in map.iter_mut() {
            if tenant.is_none_or(|t| t == *id) {
                *at = due.unwrap_or(*at).min(*at);
            }
        }
    }

    async fn lookup<F>(
        &self,
        tenant: Uuid,
        fetch: impl FnOnce() -> F,
    ) -> Result<TenantStatus, String>
    where
        F: Future<Output = Result<TenantStatus, String>>,
    {
        let cached = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&tenant)
            .copied();
        if let Some((at, s)) = cached
            && at.elapsed() < self.ttl
        {
            return Ok(s);
        }
        match fetch().await {
            Ok(s) => {
                let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
                map.insert(tenant, (Instant::now(), s));
                Ok(s)
            }
            Err(e) => match cached {
                Some((at, s)) if at.elapsed() < self.ttl.saturating_add(self.stale) => {
                    tracing::debug!(error = %e, "tenant directory unreachable; using a cached answer");
                    Ok(s)
                }
                _ => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answers_are_fresh_for_the_ttl_and_usable_stale_only_while_lookups_fail() {
        let cache = StatusCache::new(Duration::from_secs(5), Duration::from_secs(60));
        let t = Uuid::now_v7();
        let ok = |s| move || async move { Ok(s) };
        let fail = || async { Err::<TenantStatus, _>("down".to_owned()) };
        assert_eq!(
            cache.lookup(t, ok(TenantStatus::Active)).await,
            Ok(TenantStatus::Active)
        );
        // Fresh: not asked again.
        let not_asked = || async { panic!("asked while fresh") };
        assert_eq!(cache.lookup(t, not_asked).await, Ok(TenantStatus::Active));
        // Past the TTL a new answer replaces it at once.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(
            cache.lookup(t, ok(TenantStatus::Suspended)).await,
            Ok(TenantStatus::Suspended)
        );
        // Identity down: the last answer holds for the stale window, then the error shows.
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(cache.lookup(t, fail).await, Ok(TenantStatus::Suspended));
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(cache.lookup(t, fail).await.is_err());
        assert!(cache.lookup(Uuid::now_v7(), fail).await.is_err());
    }

    #[test]
    fn only_active_passes() {
        assert!(TenantStatus::Active.require_active().is_ok());
        assert_eq!(
            TenantStatus::Suspended
                .require_active()
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            TenantStatus::Unknown.require_active().unwrap_err().status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn validation_names_the_keys_and_never_echoes_the_secret() {
        assert!(TenantDirectoryConfig::default().validate("x").is_empty());
        let c = TenantDirectoryConfig {
            identity_url: "ftp://identity".into(),
            ..Default::default()
        };
        let v = c.validate("storage.tenant_directory").join("\n");
        for key in ["identity_url", "client_id", "client_secret"] {
            assert!(v.contains(key), "{v}");
        }
        let c = TenantDirectoryConfig {
            identity_url: "http://127.0.0.1:7001/".into(),
            client_id: "svc".into(),
            client_secret: Secret::new("hunter2"),
            ..Default::default()
        };
        assert!(c.validate("x").is_empty());
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
