//! Identifiers made on the request path without a system call.
//!
//! `Uuid::now_v7` and `Uuid::new_v4` ask the kernel (`getrandom`) for every id, and `now_v7`
//! also takes a process-wide lock for its ordering counter. Request ids, trace ids and token
//! ids need uniqueness, not ordering within a millisecond, so they take their random bits from
//! the thread's CSPRNG (`rand::rng()`: ChaCha seeded from the OS and reseeded periodically).
//! Database row ids keep `Uuid::now_v7` (ordered within the process).

use axum::http::{HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

/// A UUIDv7 (RFC 9562): the Unix time in milliseconds and 74 random bits.
pub fn uuid_v7() -> Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random::<[u8; 10]>()).into_uuid()
}

/// [`uuid_v7`] as a header value (hyphenated, lower case).
pub fn uuid_v7_header() -> HeaderValue {
    let mut buf = Uuid::encode_buffer();
    let s = uuid_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("-"))
}

/// Request ids for tower-http's `SetRequestIdLayer`: a new [`uuid_v7`] per request without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(uuid_v7_header()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_7_with_the_current_time_and_distinct_random_bits() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let a = uuid_v7();
        let b = uuid_v7();
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        let millis = u128::from(secs) * 1000 + u128::from(nanos / 1_000_000);
        assert!(
            millis >= before && millis <= before + 1000,
            "{millis} vs {before}"
        );
        assert_ne!(a, b);
        let header = uuid_v7_header();
        let parsed = Uuid::parse_str(header.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(header.len(), 36);
    }
}
