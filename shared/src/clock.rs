//! One clock and one RFC 3339 formatter for every service: times are UTC unix milliseconds in
//! stores and in memory, and RFC 3339 in JSON bodies (HTTP headers carry HTTP dates).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, as UTC unix milliseconds.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds as RFC 3339 in UTC, with the fraction when there is one
/// (`2023-11-14T22:13:20.123Z`); "" for a time outside RFC 3339's range.
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Unix milliseconds as RFC 3339 in whole seconds, UTC (`2023-11-14T22:13:20Z`).
pub fn rfc3339_seconds(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_seconds(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
        assert!(now_ms() > 1_700_000_000_000);
    }
}
