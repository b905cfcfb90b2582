//! Properties of storage-svc's request parsing over generated inputs: object keys and bucket
//! names are refused or safe, and `Range` never yields bytes outside the object. The
//! `storage_request` fuzz target's committed inputs replay here too.

use axum::http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use tansu_storage::conditional::{RangeOutcome, Validators, range};
use tansu_storage::names::{check_bucket, check_key};

fn validators() -> Validators {
    Validators {
        etag: "\"e\"".into(),
        last_modified_ms: 1_700_000_000_000,
    }
}

proptest! {
    #[test]
    fn an_accepted_key_has_no_escape(key in "\\PC{0,80}|([a-z.]{0,3}/){0,4}[a-z.]{0,3}") {
        if check_key(&key).is_ok() {
            prop_assert!(!key.starts_with('/'));
            prop_assert!(!key.split('/').any(|s| s == "." || s == ".."));
            prop_assert!(!key.chars().any(|c| c.is_control() || c == '\\'));
            prop_assert!(!key.is_empty() && key.len() <= 1024);
        }
    }

    #[test]
    fn an_accepted_bucket_name_is_plain(name in "\\PC{0,70}|[a-z0-9.-]{1,70}") {
        if check_bucket(&name).is_ok() {
            prop_assert!((3..=63).contains(&name.len()));
            prop_assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()
                || b == b'-' || b == b'.'));
        }
    }

    #[test]
    fn a_range_stays_inside_the_object(
        spec in "bytes=[0-9]{0,21}-[0-9]{0,21}|bytes=-[0-9]{0,21}|\\PC{0,40}",
        len in 0u64..=u64::MAX,
        if_range in proptest::option::of("\"e\"|\"f\"|W/\"e\"|\\PC{0,30}"),
    ) {
        let mut headers = HeaderMap::new();
        let Ok(value) = HeaderValue::from_str(&spec) else { return Ok(()) };
        headers.insert(header::RANGE, value);
        if let Some(v) = if_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::IF_RANGE, v);
        }
        match range(&headers, len, &validators()) {
            RangeOutcome::Partial(r) => {
                prop_assert!(r.start < r.end, "{spec} on {len}: {r:?}");
                prop_assert!(r.end <= len, "{spec} on {len}: {r:?}");
            }
            RangeOutcome::Full | RangeOutcome::Unsatisfiable => {}
        }
    }

    #[test]
    fn small_objects_answer_exactly_the_bytes_asked(
        len in 1u64..10_000, a in 0u64..12_000, b in 0u64..12_000
    ) {
        let (first, last) = (a.min(b), a.max(b));
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(&format!("bytes={first}-{last}")).unwrap());
        let got = range(&headers, len, &validators());
        if first >= len {
            prop_assert_eq!(got, RangeOutcome::Unsatisfiable);
        } else {
            prop_assert_eq!(got, RangeOutcome::Partial(first..(last + 1).min(len)));
        }
    }
}

/// The `storage_request` fuzz target's committed inputs replay without a fault.
#[test]
fn the_storage_request_fuzz_corpus_replays() {
    for (name, data) in tansu_shared::testing::fuzz_corpus("storage_request") {
        eprintln!("{name}");
        tansu_storage::fuzzing::storage_request(&data);
    }
}
