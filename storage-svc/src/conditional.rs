//! Conditional requests and ranges, per RFC 9110 §13 and §14.
//!
//! Evaluation order is §13.2.2's: If-Match, else If-Unmodified-Since; then If-None-Match, else
//! If-Modified-Since (GET/HEAD only); then Range (GET only, subject to If-Range). Dates have
//! one-second resolution on the wire, so last-modified times are compared in whole seconds.
//! Unparseable dates and malformed ranges are ignored, as the RFC requires.

use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, header};

/// What a request's preconditions are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// The quoted strong entity tag (`"<sha256 hex>"`).
    pub etag: String,
    pub last_modified_ms: i64,
}

impl Validators {
    pub fn last_modified_secs(&self) -> i64 {
        self.last_modified_ms.div_euclid(1000)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Proceed,
    /// 304 (only for GET and HEAD).
    NotModified,
    /// 412.
    Failed,
}

/// The conditional headers of a request, parsed once.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    if_match: Option<Vec<String>>,
    if_none_match: Option<Vec<String>>,
    if_modified_since: Option<i64>,
    if_unmodified_since: Option<i64>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<&'a str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(","))
    }
}

fn parse_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// An HTTP-date (IMF-fixdate) for a time in unix milliseconds.
pub fn http_date(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `*` or a list of entity tags (kept with their `W/` prefix).
fn parse_etags(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn opaque(tag: &str) -> (bool, &str) {
    match tag.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    }
}

fn strong_match(list: &[String], current: &str) -> bool {
    list.iter().any(|t| {
        t == "*" || {
            let (weak, o) = opaque(t);
            !weak && o == current
        }
    })
}

fn weak_match(list: &[String], current: &str) -> bool {
    list.iter().any(|t| t == "*" || opaque(t).1 == current)
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_match: header_str(headers, header::IF_MATCH).map(|s| parse_etags(&s)),
            if_none_match: header_str(headers, header::IF_NONE_MATCH).map(|s| parse_etags(&s)),
            if_modified_since: header_str(headers, header::IF_MODIFIED_SINCE)
                .and_then(|s| parse_date(&s)),
            if_unmodified_since: header_str(headers, header::IF_UNMODIFIED_SINCE)
                .and_then(|s| parse_date(&s)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// Evaluates the preconditions against the current representation (`None`: there is none).
    /// `safe` is true for GET and HEAD.
    pub fn evaluate(&self, current: Option<&Validators>, safe: bool) -> Precondition {
        // Step 1 and 2: If-Match, else If-Unmodified-Since.
        if let Some(list) = &self.if_match {
            match current {
                Some(v) if strong_match(list, &v.etag) => {}
                _ => return Precondition::Failed,
            }
        } else if let (Some(since), Some(v)) = (self.if_unmodified_since, current)
            && v.last_modified_secs() > since
        {
            return Precondition::Failed;
        }
        // Step 3 and 4: If-None-Match, else If-Modified-Since (GET/HEAD).
        if let Some(list) = &self.if_none_match {
            if let Some(v) = current
                && weak_match(list, &v.etag)
            {
                return if safe {
                    Precondition::NotModified
                } else {
                    Precondition::Failed
                };
            }
        } else if safe
            && let (Some(since), Some(v)) = (self.if_modified_since, current)
            && v.last_modified_secs() <= since
        {
            return Precondition::NotModified;
        }
        Precondition::Proceed
    }
}

/// The outcome of a `Range` header against a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No (usable) range: send everything with 200.
    Full,
    /// 206 with this byte range (end exclusive).
    Partial(Range<u64>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Interprets `Range` (single byte ranges; a multi-range request is answered in full, which
/// RFC 9110 §14.2 allows) under `If-Range`.
pub fn range(headers: &HeaderMap, len: u64, current: &Validators) -> RangeOutcome {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeOutcome::Full;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let if_range = if_range.trim();
        let matches = if if_range.starts_with('"') {
            if_range == current.etag
        } else if if_range.starts_with("W/") {
            false
        } else {
            parse_date(if_range) == Some(current.last_modified_secs())
        };
        if !matches {
            return RangeOutcome::Full;
        }
    }
    let value = value.trim();
    let Some((unit, spec)) = value.split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (first, last) = (first.trim(), last.trim());
    match (digits(first), digits(last)) {
        (true, _) => {
            let Ok(start) = first.parse::<u64>() else {
                return RangeOutcome::Full;
            };
            let end_incl = if last.is_empty() {
                u64::MAX
            } else if digits(last) {
                match last.parse::<u64>() {
                    Ok(e) if e >= start => e,
                    Ok(_) => return RangeOutcome::Full,
                    Err(_) => u64::MAX,
                }
            } else {
                return RangeOutcome::Full;
            };
            if start >= len {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Partial(start..end_incl.min(len - 1) + 1)
        }
        (false, true) if first.is_empty() => {
            let n = last.parse::<u64>().unwrap_or(u64::MAX);
            if n == 0 || len == 0 {
                return RangeOutcome::Unsatisfiable;
            }
            RangeOutcome::Partial(len.saturating_sub(n)..len)
        }
        _ => RangeOutcome::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn v() -> Validators {
        Validators {
            etag: "\"abc\"".into(),
            last_modified_ms: 1_000_500,
        }
    }

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, val) in pairs {
            m.append(*k, HeaderValue::from_str(val).unwrap());
        }
        m
    }

    #[test]
    fn preconditions_follow_rfc9110_order() {
        let c = Conditions::from_headers(&h(&[("if-match", "\"x\", \"abc\"")]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::Proceed);
        let c = Conditions::from_headers(&h(&[("if-match", "W/\"abc\"")]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::Failed);
        let c = Conditions::from_headers(&h(&[("if-match", "*")]));
        assert_eq!(c.evaluate(None, false), Precondition::Failed);
        let c = Conditions::from_headers(&h(&[("if-none-match", "W/\"abc\"")]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::NotModified);
        assert_eq!(c.evaluate(Some(&v()), false), Precondition::Failed);
        let c = Conditions::from_headers(&h(&[("if-none-match", "*")]));
        assert_eq!(c.evaluate(None, false), Precondition::Proceed);
        let date = http_date(1_000_000);
        let c = Conditions::from_headers(&h(&[("if-modified-since", &date)]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::NotModified);
        assert_eq!(c.evaluate(Some(&v()), false), Precondition::Proceed);
        // If-None-Match takes precedence over If-Modified-Since.
        let c = Conditions::from_headers(&h(&[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &date),
        ]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::Proceed);
        let earlier = http_date(999_000);
        let c = Conditions::from_headers(&h(&[("if-unmodified-since", &earlier)]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::Failed);
        let c = Conditions::from_headers(&h(&[("if-unmodified-since", "garbage")]));
        assert_eq!(c.evaluate(Some(&v()), true), Precondition::Proceed);
    }

    #[test]
    fn ranges() {
        let r = |s: &str, len| range(&h(&[("range", s)]), len, &v());
        assert_eq!(r("bytes=0-9", 100), RangeOutcome::Partial(0..10));
        assert_eq!(r("bytes=90-200", 100), RangeOutcome::Partial(90..100));
        assert_eq!(r("bytes=10-", 100), RangeOutcome::Partial(10..100));
        assert_eq!(r("bytes=-30", 100), RangeOutcome::Partial(70..100));
        assert_eq!(r("bytes=-300", 100), RangeOutcome::Partial(0..100));
        assert_eq!(r("bytes=100-", 100), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=-0", 100), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=5-1", 100), RangeOutcome::Full);
        assert_eq!(r("bytes=0-1,5-6", 100), RangeOutcome::Full);
        assert_eq!(r("items=0-1", 100), RangeOutcome::Full);
        assert_eq!(r("bytes=x-1", 100), RangeOutcome::Full);
        let stale = range(
            &h(&[("range", "bytes=0-1"), ("if-range", "\"old\"")]),
            100,
            &v(),
        );
        assert_eq!(stale, RangeOutcome::Full);
        let fresh = range(
            &h(&[("range", "bytes=0-1"), ("if-range", "\"abc\"")]),
            100,
            &v(),
        );
        assert_eq!(fresh, RangeOutcome::Partial(0..2));
    }
}
