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

use crate::TenantEntry;

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
            }))
        })
    }
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            Ok(is_valid_id(id).then(|| TenantInfo {
                id: id.to_owned(),
                slug: id.to_owned(),
                status: TenantStatus::Active,
            }))
        })
    }
}

type Entry = (Instant, Option<TenantInfo>);

/// A TTL cache in front of a directory (answers, including "no such tenant", are kept for
/// `ttl`; errors are not cached). Bounded: when full it is cleared.
pub struct CachedDirectory {
    inner: Arc<dyn TenantDirectory>,
    ttl: Duration,
    max_entries: usize,
    slugs: Mutex<HashMap<String, Entry>>,
    ids: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for CachedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedDirectory")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl CachedDirectory {
    pub fn new(inner: Arc<dyn TenantDirectory>, ttl: Duration, max_entries: usize) -> Self {
        Self {
            inner,
            ttl,
            max_entries,
            slugs: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, map: &Mutex<HashMap<String, Entry>>, key: &str) -> Option<Option<TenantInfo>> {
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn store(&self, map: &Mutex<HashMap<String, Entry>>, key: &str, value: Option<TenantInfo>) {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries {
            map.clear();
        }
        map.insert(key.to_owned(), (Instant::now(), value));
    }

    pub async fn by_slug(&self, slug: &str) -> Result<Option<TenantInfo>, String> {
        if let Some(v) = self.cached(&self.slugs, slug) {
            return Ok(v);
        }
        let v = self.inner.by_slug(slug).await?;
        self.store(&self.slugs, slug, v.clone());
        Ok(v)
    }

    pub async fn by_id(&self, id: &str) -> Result<Option<TenantInfo>, String> {
        if let Some(v) = self.cached(&self.ids, id) {
            return Ok(v);
        }
        let v = self.inner.by_id(id).await?;
        self.store(&self.ids, id, v.clone());
        Ok(v)
    }
}

/// The tenant slug in `host` when it is `{slug}.{base_domain}` (one label only).
pub fn from_host(host_name: &str, base_domain: &str) -> Option<String> {
    let base = base_domain.to_ascii_lowercase();
    let label = host_name.strip_suffix(&base)?.strip_suffix('.')?;
    (!label.contains('.') && is_valid_slug(label)).then(|| label.to_owned())
}

/// `/t/{slug}/rest` → `(slug, "/rest")`. `Some(Err(()))` for a `/t/` path without a valid slug.
pub fn from_path(path: &str) -> Option<Result<(String, String), ()>> {
    let rest = path.strip_prefix("/t/")?;
    let (slug, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if !is_valid_slug(slug) {
        return Some(Err(()));
    }
    Some(Ok((slug.to_owned(), tail.to_owned())))
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
        assert_eq!(
            from_path("/t/acme/db/x"),
            Some(Ok(("acme".into(), "/db/x".into())))
        );
        assert_eq!(from_path("/t/acme"), Some(Ok(("acme".into(), "/".into()))));
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
        }]));
        let c = CachedDirectory::new(dir, Duration::from_secs(5), 2);
        let t = c.by_slug("acme").await.unwrap().unwrap();
        assert_eq!(t.status, TenantStatus::Suspended);
        assert_eq!(c.by_id("id-acme").await.unwrap().unwrap().slug, "acme");
        assert_eq!(c.by_slug("nope").await.unwrap(), None);
        assert_eq!(c.by_slug("other").await.unwrap(), None);
    }
}
