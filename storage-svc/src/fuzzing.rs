//! The body of the `storage_request` fuzz target (`fuzz/`), also run by the test that replays
//! its corpus (`tests/properties.rs`): the first line of the input is an object key (and bucket
//! name), the rest request headers, one `name: value` a line. Nothing may panic, and:
//!
//! - an accepted key has no escape (no leading `/`, no `.`/`..` segment, no control character
//!   or backslash, 1 to 1024 bytes), an accepted bucket name is plain; the key's
//!   `Content-Disposition` is a valid header value, and an active type is never inline;
//! - a presigned URL's signature is valid for its own bucket and key, never for another split
//!   of the same bytes;
//! - a `Range` answer lies inside the object, and `If-Range` that does not match gives the
//!   whole object;
//! - preconditions answer 304 only for GET/HEAD of an existing object, and nothing but
//!   `Proceed` without a conditional header.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use uuid::Uuid;

use crate::conditional::{Conditions, Precondition, RangeOutcome, Validators, range};
use crate::content;
use crate::names::{MAX_KEY_BYTES, check_bucket, check_key};
use crate::presign;

/// The stored object's validators the headers are checked against.
pub fn validators() -> Validators {
    Validators {
        etag: "\"5d41402abc4b2a76b9719d911017c592\"".into(),
        last_modified_ms: 1_700_000_000_500,
    }
}

/// The `storage_request` target.
pub fn storage_request(data: &[u8]) {
    let (first, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in rest.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    if let Ok(key) = std::str::from_utf8(first) {
        key_and_bucket(key, &headers);
    }
    ranges(&headers);
    preconditions(&headers);
}

fn key_and_bucket(key: &str, headers: &HeaderMap) {
    if check_key(key).is_ok() {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
        assert!(!key.starts_with('/'));
        assert!(!key.split('/').any(|s| s == "." || s == ".."));
        assert!(!key.chars().any(|c| c.is_control() || c == '\\'));
        for kind in ["inline", "attachment"] {
            let value = content::disposition(kind, key);
            assert!(HeaderValue::from_str(&value).is_ok(), "{value}");
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("text/html");
        let mut answer = HeaderMap::new();
        let inline = content::default_inline_types();
        content::apply(&mut answer, content_type, true, key, &inline);
        let disposition = answer
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .expect("every object answer has a disposition");
        if content::is_active(&content::essence(content_type)) {
            assert!(disposition.starts_with("attachment"), "{content_type}");
        }
        presigned(key);
    }
    if check_bucket(key).is_ok() {
        assert!((3..=63).contains(&key.len()));
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        );
        assert!(!key.contains(".."));
    }
}

fn presigned(key: &str) {
    let secret = [7u8; 32];
    let tenant = Uuid::from_u128(0x0190f5c0_0000_7000_8000_00000000000a);
    let (bucket, expires) = ("photos", 1_900_000_000);
    let sig = presign::sign(&secret, "GET", tenant, bucket, key, expires);
    assert!(presign::verify(
        &secret, "GET", tenant, bucket, key, expires, &sig
    ));
    // The same bytes split differently between bucket and key sign differently.
    let moved = format!("{bucket}/{key}");
    if let Some((b, k)) = moved.split_at_checked(bucket.len() + 1) {
        assert!(!presign::verify(
            &secret, "GET", tenant, b, k, expires, &sig
        ));
    }
    assert!(!presign::verify(
        &secret, "PUT", tenant, bucket, key, expires, &sig
    ));
}

fn ranges(headers: &HeaderMap) {
    let current = validators();
    let if_range_mismatch = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim();
            v.starts_with("W/") || (v.starts_with('"') && v != current.etag)
        });
    for len in [0, 1, 10, 1000, u64::MAX] {
        match range(headers, len, &current) {
            RangeOutcome::Partial(r) => {
                assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
                assert!(!if_range_mismatch);
            }
            RangeOutcome::Unsatisfiable => assert!(!if_range_mismatch),
            RangeOutcome::Full => {}
        }
    }
}

fn preconditions(headers: &HeaderMap) {
    let c = Conditions::from_headers(headers);
    let conditional = [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
    ]
    .iter()
    .any(|h| headers.contains_key(h));
    let current = validators();
    for existing in [Some(&current), None] {
        for safe in [true, false] {
            let outcome = c.evaluate(existing, safe);
            if outcome == Precondition::NotModified {
                assert!(safe && existing.is_some());
            }
            if !conditional {
                assert_eq!(outcome, Precondition::Proceed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_and_its_headers() {
        storage_request(
            b"reports/2026/q1.pdf\nRange: bytes=0-99\nIf-Range: \"5d41402abc4b2a76b9719d911017c592\"\nIf-None-Match: W/\"x\", \"y\"\nContent-Type: application/pdf",
        );
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-99"));
        assert_eq!(
            range(&h, 1000, &validators()),
            RangeOutcome::Partial(0..100)
        );
    }
}
