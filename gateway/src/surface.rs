//! The public surface: which paths of the routed services the gateway never forwards, and the
//! one path comparison every path rule uses (internal paths, strict and registration budgets).
//!
//! A service behind the gateway serves more than its public API: `/metrics` (Prometheus
//! scrapes it on the service's own listener), `/health/ready` (its checks' error texts), and
//! endpoints other services call on its internal address (identity's tenant directory and
//! security-event ingest). `Config::internal_paths` declares them once; the gateway answers
//! them 404 exactly like an unrouted path, so the answer does not tell a prober which paths
//! exist behind it.
//!
//! Rules are compared with the request path in its [`canonical`] form, because services and
//! frameworks differ in what they treat as the same path: percent-encoding (`/%6Detrics`),
//! doubled or trailing slashes, `.`/`..` segments, backslashes, `;` parameters and letter case.
//! Canonicalising errs on the side of matching a rule: a path any service might read as
//! `/identity/metrics` is treated as that path. Most paths are already canonical and are
//! compared in place, without an allocation.

use std::borrow::Cow;

use crate::Route;

/// How often percent-decoding is repeated (`%256D` → `%6D` → `m`): beyond what any server does.
const DECODE_ROUNDS: usize = 4;

/// `path` as the most lenient service would read it: percent-decoded (repeatedly), cut at a
/// decoded `?` or `#`, `\` read as `/`, each segment cut at `;`, empty and `.` segments dropped,
/// `..` resolved, no trailing `/`. Letter case is kept (comparisons ignore it).
pub fn canonical(path: &str) -> Cow<'_, str> {
    if is_canonical(path) {
        return Cow::Borrowed(path);
    }
    let mut bytes = Cow::Borrowed(path.as_bytes());
    for _ in 0..DECODE_ROUNDS {
        match percent_decode_once(&bytes) {
            Some(decoded) => bytes = Cow::Owned(decoded),
            None => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.split(['?', '#']).next().unwrap_or_default();
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split(['/', '\\']) {
        match segment.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if segments.is_empty() {
        return Cow::Borrowed("/");
    }
    let mut out = String::with_capacity(text.len() + 1);
    for s in segments {
        out.push('/');
        out.push_str(s);
    }
    Cow::Owned(out)
}

/// Whether `path` is its own canonical form (the common case: compared in place).
pub fn is_canonical(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !path.bytes().any(|c| matches!(c, b'%' | b'\\' | b';'))
        && rest
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// One round of percent-decoding; `None` when there was nothing to decode.
fn percent_decode_once(bytes: &[u8]) -> Option<Vec<u8>> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi << 4) | lo);
            changed = true;
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Whether `path` is `prefix` or lies below it (segment-wise, ASCII case ignored). Both are
/// expected canonical.
pub fn is_under(path: &str, prefix: &str) -> bool {
    let (p, pre) = (path.as_bytes(), prefix.as_bytes());
    p.len() >= pre.len()
        && p[..pre.len()].eq_ignore_ascii_case(pre)
        && (p.len() == pre.len() || p[pre.len()] == b'/' || pre == b"/")
}

/// A canonical path without its `/t/{tenant}` segments (the path the routes see).
pub fn without_tenant(path: &str) -> &str {
    let Some(rest) = path
        .strip_prefix("/t/")
        .or_else(|| path.strip_prefix("/T/"))
    else {
        return path;
    };
    match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    }
}

/// Whether a path rule (a strict or registration budget's path) is well-formed: canonical and
/// not the root.
pub fn is_valid_path_rule(rule: &str) -> bool {
    rule.len() > 1 && is_canonical(rule)
}

/// Whether an entry of `internal_paths` is well-formed: a path rule, or `*` followed by one
/// (that path on every route).
pub fn is_valid_internal_rule(rule: &str) -> bool {
    is_valid_path_rule(rule.strip_prefix('*').unwrap_or(rule))
}

/// The paths the gateway never forwards, as full public paths (`/identity/metrics`), from the
/// config's `internal_paths`: `*/metrics` is `/metrics` on every route, `/identity/x` that
/// path only.
#[derive(Debug, Clone, Default)]
pub struct InternalPaths(Vec<String>);

impl InternalPaths {
    pub fn new(routes: &[Route], rules: &[String]) -> Self {
        let mut paths = Vec::new();
        for rule in rules {
            match rule.strip_prefix('*') {
                Some(below) => {
                    paths.extend(routes.iter().map(|r| format!("{}{below}", r.prefix)));
                }
                None => paths.push(rule.clone()),
            }
        }
        paths.sort();
        paths.dedup();
        Self(paths)
    }

    /// Whether a canonical path without its tenant segments is internal.
    pub fn contains(&self, path: &str) -> bool {
        self.0.iter().any(|p| is_under(path, p))
    }

    pub fn paths(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (raw, want) in [
            ("/identity/metrics", "/identity/metrics"),
            ("/", "/"),
            ("/identity//metrics", "/identity/metrics"),
            ("/identity/metrics/", "/identity/metrics"),
            ("/identity/./metrics", "/identity/metrics"),
            ("/identity/x/../metrics", "/identity/metrics"),
            ("/identity/%6Detrics", "/identity/metrics"),
            ("/identity/%256Detrics", "/identity/metrics"),
            ("/identity%2Fmetrics", "/identity/metrics"),
            ("/identity/%2e/metrics", "/identity/metrics"),
            ("/identity\\metrics", "/identity/metrics"),
            ("/identity/metrics;jsessionid=1", "/identity/metrics"),
            ("/identity/metrics%3Fx=1", "/identity/metrics"),
            ("/identity/metrics%23top", "/identity/metrics"),
            ("/../../identity/metrics", "/identity/metrics"),
            ("//", "/"),
            ("*", "/*"),
            ("", "/"),
            ("/a/%zz/%", "/a/%zz/%"),
            ("/a/%ff", "/a/\u{fffd}"),
            ("/Identity/METRICS", "/Identity/METRICS"),
        ] {
            assert_eq!(canonical(raw), want, "{raw:?}");
        }
        assert!(matches!(canonical("/db/api/x"), Cow::Borrowed(_)));
        assert!(matches!(canonical("/Db/Api/X.txt"), Cow::Borrowed(_)));
    }

    #[test]
    fn segment_prefixes_ignore_case() {
        assert!(is_under("/identity/metrics", "/identity/metrics"));
        assert!(is_under("/IDENTITY/Metrics/x", "/identity/metrics"));
        assert!(!is_under("/identity/metrics-x", "/identity/metrics"));
        assert!(!is_under("/identity/metric", "/identity/metrics"));
        assert!(is_under("/anything", "/"));
        assert_eq!(
            without_tenant("/t/acme/identity/metrics"),
            "/identity/metrics"
        );
        assert_eq!(without_tenant("/T/acme"), "/");
        assert_eq!(without_tenant("/identity/t/x"), "/identity/t/x");
    }

    #[test]
    fn internal_paths_expand_over_routes() {
        let route = |p: &str| Route {
            prefix: p.into(),
            upstreams: vec![],
        };
        let internal = InternalPaths::new(
            &[route("/identity"), route("/db")],
            &[
                "*/metrics".into(),
                "/identity/admin/tenant-directory".into(),
            ],
        );
        assert_eq!(
            internal.paths(),
            [
                "/db/metrics",
                "/identity/admin/tenant-directory",
                "/identity/metrics"
            ]
        );
        for denied in [
            "/db/metrics",
            "/identity/metrics",
            "/IDENTITY/Metrics",
            "/identity/admin/tenant-directory/acme",
        ] {
            assert!(internal.contains(denied), "{denied}");
        }
        for public in ["/db/api/metrics", "/identity/metricsx", "/storage/metrics"] {
            assert!(!internal.contains(public), "{public}");
        }
        assert!(is_valid_internal_rule("*/metrics") && is_valid_internal_rule("/identity/x"));
        assert!(!is_valid_path_rule("*/metrics"));
        for bad in [
            "/", "*", "", "/a/", "/a//b", "/a/%6D", "metrics", "*/a/../b", "**/a",
        ] {
            assert!(!is_valid_internal_rule(bad), "{bad:?}");
        }
    }
}
