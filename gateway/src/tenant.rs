//! Tenant resolution.
//!
//! Order (first source wins): the subdomain of `{tenant}.{base_domain}`, the path prefix
//! `/t/{tenant}/…` (stripped before routing), then the bearer token's `tid`. A token is read
//! even when an earlier source named the tenant, because a token for tenant A must never be
//! carried into tenant B's host or path: that disagreement is answered 403 by the gateway
//! itself. Without a token check configured on the route the token is only decoded (the
//! service verifies it); with one, it is verified first.
//!
//! The resolved tenant goes to the service in `X-Tansu-Tenant`; an inbound copy is always
//! removed first, so a client can never choose the header's value.
//!
//! Slug → id and status come from a [`TenantDirectory`], cached for a few seconds
//! ([`CachedDirectory`]) so a suspension takes effect quickly without a lookup per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::future::BoxFuture;
use tansu_shared::tenant_directory::DirectoryClient;

use crate::{TenantDirectoryConfig, TenantEntry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    pub id: String,
    pub slug: String,
    pub status: TenantStatus,
    /// Browser origins allowed to call the tenant's APIs (serialized origins, lowercase).
    pub allowed_origins: Vec<String>,
}

/// Where tenants are looked up. `Ok(None)`: no such tenant; `Err`: the directory is unreachable.
pub trait TenantDirectory: Send + Sync {
    fn by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>>;
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>>;
}

/// `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63 characters: a DNS label.
pub fn is_valid_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Tenant ids (UUIDs, or slugs in the open directory): `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The config-backed directory.
#[derive(Debug, Default)]
pub struct StaticDirectory {
    by_slug: HashMap<String, TenantInfo>,
    by_id: HashMap<String, TenantInfo>,
}

impl StaticDirectory {
    pub fn new(entries: &[TenantEntry]) -> Self {
        let mut d = Self::default();
        for e in entries {
            let info = TenantInfo {
                id: e.id.clone(),
                slug: e.slug.clone(),
                status: if e.suspended {
                    TenantStatus::Suspended
                } else {
                    TenantStatus::Active
                },
                allowed_origins: e.allowed_origins.clone(),
            };
            d.by_slug.insert(e.slug.clone(), info.clone());
            d.by_id.insert(e.id.clone(), info);
        }
        d
    }
}

impl TenantDirectory for StaticDirectory {
    fn by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move { Ok(self.by_slug.get(slug).cloned()) })
    }
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move { Ok(self.by_id.get(id).cloned()) })
    }
}

/// Development directory: every well-formed slug is an active tenant whose id is the slug.
#[derive(Debug, Default)]
pub struct OpenDirectory;

impl TenantDirectory for OpenDirectory {
    fn by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            Ok(is_valid_slug(slug).then(|| TenantInfo {
                id: slug.to_owned(),
                slug: slug.to_owned(),
                status: TenantStatus::Active,
                allowed_origins: Vec::new(),
            }))
        })
    }
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            Ok(is_valid_id(id).then(|| TenantInfo {
                id: id.to_owned(),
                slug: id.to_owned(),
                status: TenantStatus::Active,
                allowed_origins: Vec::new(),
            }))
        })
    }
}

type Entry = (Instant, Option<Arc<TenantInfo>>);
type Cache = Mutex<HashMap<String, Entry>>;

/// A TTL cache in front of a directory. Answers, including "no such tenant", are fresh for
/// `ttl` (so a suspension takes effect within it). Errors are not cached: when the directory
/// cannot be reached, an answer up to `ttl + stale` old is served instead (identity restarting
/// must not take every tenant down), and only after that the error (503) is. Bounded: when
/// full it is cleared.
pub struct CachedDirectory {
    inner: Arc<dyn TenantDirectory>,
    ttl: Duration,
    stale: Duration,
    max_entries: usize,
    slugs: Cache,
    ids: Cache,
}

impl std::fmt::Debug for CachedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDirectory")
            .field("ttl", &self.ttl)
            .field("stale", &self.stale)
            .finish()
    }
}

impl CachedDirectory {
    pub fn new(
        inner: Arc<dyn TenantDirectory>,
        ttl: Duration,
        stale: Duration,
        max_entries: usize,
    ) -> Self {
        Self {
            inner,
            ttl,
            stale,
            max_entries,
            slugs: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn cached(map: &Cache, key: &str) -> Option<Entry> {
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).cloned()
    }

    fn store(&self, map: &Cache, key: &str, value: Option<Arc<TenantInfo>>) {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries {
            map.clear();
        }
        map.insert(key.to_owned(), (Instant::now(), value));
    }

    async fn lookup<'a>(
        &'a self,
        map: &Cache,
        key: &str,
        fetch: impl FnOnce() -> BoxFuture<'a, Result<Option<TenantInfo>, String>>,
    ) -> Result<Option<Arc<TenantInfo>>, String> {
        let cached = Self::cached(map, key);
        if let Some((at, v)) = &cached
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        match fetch().await {
            Ok(v) => {
                let v = v.map(Arc::new);
                self.store(map, key, v.clone());
                Ok(v)
            }
            Err(e) => match cached {
                Some((at, v)) if at.elapsed() < self.ttl.saturating_add(self.stale) => {
                    tracing::debug!(error = %e, "tenant directory unreachable; serving a cached answer");
                    Ok(v)
                }
                _ => Err(e),
            },
        }
    }

    /// The tenant with this slug; the directory is asked only when no fresh answer is cached.
    pub async fn by_slug(&self, slug: &str) -> Result<Option<Arc<TenantInfo>>, String> {
        self.lookup(&self.slugs, slug, || self.inner.by_slug(slug))
            .await
    }

    /// The tenant with this id (see [`Self::by_slug`]).
    pub async fn by_id(&self, id: &str) -> Result<Option<Arc<TenantInfo>>, String> {
        self.lookup(&self.ids, id, || self.inner.by_id(id)).await
    }

    /// Makes the cached answers about tenant `id` (or `slug`) due: the next request asks the
    /// directory, and while it cannot be reached the answer is still served within the stale
    /// bound. Called when identity pushes a change of that tenant.
    pub fn expire(&self, id: &str, slug: &str) {
        let due = |at: &mut Instant| *at = at.checked_sub(self.ttl).unwrap_or(*at);
        for map in [&self.slugs, &self.ids] {
            let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (key, (at, v)) in map.iter_mut() {
                let about = key == id
                    || key == slug
                    || v.as_ref().is_some_and(|t| t.id == id || t.slug == slug);
                if about {
                    due(at);
                }
            }
        }
    }

    /// Makes every cached answer due (changes may have been missed).
    pub fn expire_all(&self) {
        for map in [&self.slugs, &self.ids] {
            let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (at, _) in map.values_mut() {
                *at = at.checked_sub(self.ttl).unwrap_or(*at);
            }
        }
    }

    /// Makes every cached answer `by` older (tests of the freshness bounds).
    #[cfg(test)]
    fn age(&self, by: Duration) {
        for map in [&self.slugs, &self.ids] {
            let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
            for (at, _) in map.values_mut() {
                *at = at.checked_sub(by).unwrap_or(*at);
            }
        }
    }
}

/// identity's tenant directory over HTTP: `GET {identity_url}admin/tenant-directory/{ref}`
/// (a tenant id or slug) with a client-credentials token (scope `tenants.read`), answering
/// `{"id", "slug", "status"}` or 404 — through the workspace's one directory client
/// ([`DirectoryClient`]: a 401 refreshes the token once; any other failure is an error, and the
/// [`CachedDirectory`] decides what to serve).
#[derive(Debug)]
pub struct HttpDirectory {
    client: DirectoryClient,
}

/// The scope identity requires for its tenant directory.
pub use tansu_shared::tenant_directory::TENANTS_READ;

impl HttpDirectory {
    pub fn new(config: &TenantDirectoryConfig) -> anyhow::Result<Self> {
        let identity = url::Url::parse(&config.identity_url)
            .map_err(|e| anyhow::anyhow!("tenant_directory.identity_url: {e}"))?;
        let client = DirectoryClient::new(
            &identity,
            &config.client_id,
            &config.client_secret,
            config.client_secret_file.as_deref(),
            Duration::from_millis(config.timeout_ms),
        )?;
        Ok(Self { client })
    }

    /// `reference` is a valid slug or id (checked by the caller), so it is one path segment.
    async fn lookup(&self, reference: &str) -> Result<Option<TenantInfo>, String> {
        let Some(entry) = self.client.lookup(reference).await? else {
            return Ok(None);
        };
        let (Some(id), Some(slug)) = (entry.id, entry.slug) else {
            return Err("tenant directory: an answer without the tenant's id and slug".into());
        };
        let status = if entry.active {
            TenantStatus::Active
        } else {
            TenantStatus::Suspended
        };
        Ok(Some(TenantInfo {
            id,
            slug,
            status,
            allowed_origins: entry.allowed_origins,
        }))
    }
}

impl TenantDirectory for HttpDirectory {
    fn by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            if !is_valid_slug(slug) {
                return Ok(None);
            }
            // identity resolves ids and slugs alike (slugs are never UUIDs, so unambiguous):
            // `/t/{tenant}/…` may name the tenant by either, as the open directory allowed.
            Ok(self
                .lookup(slug)
                .await?
                .filter(|t| t.slug == slug || t.id == slug))
        })
    }
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            if !is_valid_id(id) {
                return Ok(None);
            }
            Ok(self.lookup(id).await?.filter(|t| t.id == id))
        })
    }
}

/// The tenant slug in `host` when it is `{slug}.{base_domain}` (one label only).
pub fn from_host(host_name: &str, base_domain: &str) -> Option<String> {
    let base = base_domain.to_ascii_lowercase();
    let label = host_name.strip_suffix(&base)?.strip_suffix('.')?;
    (!label.contains('.') && is_valid_slug(label)).then(|| label.to_owned())
}

/// `/t/{slug}/rest` → `(slug, "/rest")`. `Some(Err(()))` for a `/t/` path without a valid slug.
pub fn from_path(path: &str) -> Option<Result<(&str, &str), ()>> {
    let rest = path.strip_prefix("/t/")?;
    let (slug, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if !is_valid_slug(slug) {
        return Some(Err(()));
    }
    Some(Ok((slug, tail)))
}

/// The `tid` claim of a compact JWT, decoded without verification (the service verifies).
/// `None` for anything that is not a JWT with a string `tid`.
pub fn unverified_tid(token: &str) -> Option<String> {
    if token.len() > 8 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Tid {
        tid: Option<String>,
    }
    serde_json::from_slice::<Tid>(&bytes).ok()?.tid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_valid_slug("acme"));
        assert!(is_valid_slug("a-1"));
        assert!(!is_valid_slug("-a"));
        assert!(!is_valid_slug("Acme"));
        assert!(!is_valid_slug(""));
        assert!(!is_valid_slug("a.b"));
    }

    #[test]
    fn hosts_and_paths() {
        assert_eq!(
            from_host("acme.tansu.test", "tansu.test").as_deref(),
            Some("acme")
        );
        assert_eq!(from_host("tansu.test", "tansu.test"), None);
        assert_eq!(from_host("a.b.tansu.test", "tansu.test"), None);
        assert_eq!(from_host("acmetansu.test", "tansu.test"), None);
        assert_eq!(from_path("/t/acme/db/x"), Some(Ok(("acme", "/db/x"))));
        assert_eq!(from_path("/t/acme"), Some(Ok(("acme", "/"))));
        assert_eq!(from_path("/t/ACME/x"), Some(Err(())));
        assert_eq!(from_path("/db/x"), None);
    }

    #[test]
    fn tid_decoding() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!("{}.{}.sig", b64("{}"), b64(r#"{"tid":"t-1","sub":"x"}"#));
        assert_eq!(unverified_tid(&token).as_deref(), Some("t-1"));
        assert_eq!(unverified_tid("a.b"), None);
        assert_eq!(unverified_tid("a.!!.c"), None);
        let no_tid = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"x"}"#));
        assert_eq!(unverified_tid(&no_tid), None);
    }

    #[tokio::test]
    async fn cache_and_static_directory() {
        let dir = Arc::new(StaticDirectory::new(&[TenantEntry {
            slug: "acme".into(),
            id: "id-acme".into(),
            suspended: true,
            allowed_origins: Vec::new(),
        }]));
        let c = CachedDirectory::new(dir, Duration::from_secs(5), Duration::ZERO, 2);
        let t = c.by_slug("acme").await.unwrap().unwrap();
        assert_eq!(t.status, TenantStatus::Suspended);
        assert_eq!(c.by_id("id-acme").await.unwrap().unwrap().slug, "acme");
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
        assert_eq!(c.by_slug("other").await.unwrap(), None);
    }

    /// A directory whose answer and reachability the test switches.
    #[derive(Default)]
    struct Switchable {
        down: std::sync::atomic::AtomicBool,
        suspended: std::sync::atomic::AtomicBool,
    }

    impl TenantDirectory for Switchable {
        fn by_slug<'a>(
            &'a self,
            slug: &'a str,
        ) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
            use std::sync::atomic::Ordering::Relaxed;
            Box::pin(async move {
                if self.down.load(Relaxed) {
                    return Err("unreachable".into());
                }
                let status = if self.suspended.load(Relaxed) {
                    TenantStatus::Suspended
                } else {
                    TenantStatus::Active
                };
                Ok((slug == "acme").then(|| TenantInfo {
                    id: "id-acme".into(),
                    slug: slug.into(),
                    status,
                    allowed_origins: Vec::new(),
                }))
            })
        }
        fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
            self.by_slug(id)
        }
    }

    #[tokio::test]
    async fn cache_bounds_freshness_and_serves_stale_answers_for_a_bounded_time() {
        use std::sync::atomic::Ordering::Relaxed;
        let dir = Arc::new(Switchable::default());
        let (ttl, stale) = (Duration::from_secs(2), Duration::from_secs(30));
        let c = CachedDirectory::new(dir.clone(), ttl, stale, 100);
        let status = |t: Option<Arc<TenantInfo>>| t.map(|t| t.status);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Active)
        );
        // A suspension shows once the cached answer is older than the TTL, not before.
        dir.suspended.store(true, Relaxed);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Active)
        );
        c.age(ttl);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Suspended)
        );
        // Unknown tenants are cached too.
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
        // The directory goes down: the last answers stay served within the stale bound…
        dir.down.store(true, Relaxed);
        c.age(ttl + stale / 2);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Suspended)
        );
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
        // …and are errors (503 at the gateway) after it; never-seen tenants are errors at once.
        c.age(stale);
        assert!(c.by_slug("acme").await.is_err());
        assert!(c.by_slug("globex").await.is_err());
        // Back up: fresh answers again.
        dir.down.store(false, Relaxed);
        dir.suspended.store(false, Relaxed);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Active)
        );
    }

    #[tokio::test]
    async fn a_pushed_change_expires_that_tenant_only_and_keeps_the_stale_fallback() {
        use std::sync::atomic::Ordering::Relaxed;
        let dir = Arc::new(Switchable::default());
        let c = CachedDirectory::new(
            dir.clone(),
            Duration::from_secs(60),
            Duration::from_secs(60),
            100,
        );
        let status = |t: Option<Arc<TenantInfo>>| t.map(|t| t.status);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Active)
        );
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
        dir.suspended.store(true, Relaxed);
        // A change of another tenant leaves acme's answer cached.
        c.expire("id-other", "other");
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Active)
        );
        // acme's change (named by id: the cached slug entry is matched by its value) shows at once.
        c.expire("id-acme", "renamed");
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Suspended)
        );
        // Expired answers are still served while the directory is down (within the stale bound).
        c.expire_all();
        dir.down.store(true, Relaxed);
        assert_eq!(
            status(c.by_slug("acme").await.unwrap()),
            Some(TenantStatus::Suspended)
        );
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
    }
}
