//! Request ids and W3C trace context: every request reaches its service with an
//! `X-Request-Id` (the client's when well-formed) and a valid `traceparent` (the client's, or a
//! new trace), so every service's spans and logs join up.

use http::header::{HeaderMap, HeaderValue};

use crate::forwarding::{REQUEST_ID, TRACEPARENT, TRACESTATE};

/// The inbound request id when well-formed, otherwise a new UUIDv7.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
        })
        .cloned()
        .unwrap_or_else(tansu_shared::ids::uuid_v7_header)
}

/// A W3C trace context `traceparent` (version 00 layout; later versions may append fields).
pub fn is_valid_traceparent(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 55 || (b.len() > 55 && (b[0..2] == *b"00" || b[55] != b'-')) {
        return false;
    }
    let hex = |s: &[u8]| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let version = &b[0..2];
    let trace = &b[3..35];
    let parent = &b[36..52];
    b[2] == b'-'
        && b[35] == b'-'
        && b[52] == b'-'
        && hex(version)
        && version != b"ff"
        && hex(trace)
        && hex(parent)
        && hex(&b[53..55])
        && trace.iter().any(|c| *c != b'0')
        && parent.iter().any(|c| *c != b'0')
}

/// Keeps a valid `traceparent` (and its `tracestate`), replaces a missing or malformed one
/// with a new trace.
pub fn propagate_trace(headers: &mut HeaderMap) {
    let mut all = headers.get_all(&TRACEPARENT).iter();
    let valid = match (all.next(), all.next()) {
        (Some(one), None) => one.to_str().is_ok_and(is_valid_traceparent),
        _ => false,
    };
    if valid {
        return;
    }
    // Usually neither was sent: one pass over the names instead of two removals.
    if headers
        .keys()
        .any(|k| *k == TRACEPARENT || *k == TRACESTATE)
    {
        headers.remove(&TRACEPARENT);
        headers.remove(&TRACESTATE);
    }
    // Random ids (the thread's CSPRNG, no syscall); all-zero ids are invalid, and as likely
    // as guessing a key, but cost nothing to rule out.
    let mut trace = rand::random::<u128>();
    let mut parent = rand::random::<u64>();
    trace |= u128::from(trace == 0);
    parent |= u64::from(parent == 0);
    // `00-{trace:032x}-{parent:016x}-00`, written without the formatting machinery.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut value = *b"00-00000000000000000000000000000000-0000000000000000-00";
    for (i, b) in value[3..35].iter_mut().enumerate() {
        *b = HEX[usize::try_from((trace >> (124 - 4 * i)) & 0xf).unwrap_or(0)];
    }
    for (i, b) in value[36..52].iter_mut().enumerate() {
        *b = HEX[usize::try_from((parent >> (60 - 4 * i)) & 0xf).unwrap_or(0)];
    }
    if let Ok(v) = HeaderValue::from_bytes(&value) {
        headers.insert(TRACEPARENT.clone(), v);
    }
}

/// With span export on ([`tansu_shared::telemetry::exporting`]): the gateway's server span for
/// a routed request, a child of the client's `traceparent` (else the root of a new trace). Its
/// context replaces the forwarded `traceparent` ([`tansu_shared::telemetry::inject_context`]),
/// so the service's spans are its children. Without export, `None`: nothing but
/// [`propagate_trace`] runs on the request path.
pub fn server_span(
    inbound: &HeaderMap,
    method: &http::Method,
    route: &str,
    tenant: Option<&str>,
) -> Option<tracing::Span> {
    if !tansu_shared::telemetry::exporting() {
        return None;
    }
    let span = tracing::info_span!(
        "gateway",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        service = "gateway",
        http.route = route,
        tenant.id = tenant,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    tansu_shared::telemetry::continue_trace(&span, inbound);
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_validation() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_valid_traceparent(ok));
        assert!(!is_valid_traceparent(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid_traceparent("00-xyz"));
        assert!(!is_valid_traceparent(&format!("{ok}-extra")));
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static("garbage"));
        h.insert(&TRACESTATE, HeaderValue::from_static("a=b"));
        propagate_trace(&mut h);
        assert!(is_valid_traceparent(h[&TRACEPARENT].to_str().unwrap()));
        assert!(!h.contains_key(&TRACESTATE));
        let mut h = HeaderMap::new();
        h.insert(&TRACEPARENT, HeaderValue::from_static(ok));
        propagate_trace(&mut h);
        assert_eq!(h[&TRACEPARENT], ok);
    }

    #[test]
    fn request_ids() {
        let mut h = HeaderMap::new();
        h.insert(&REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(&REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        assert_ne!(request_id(&h), "bad id with spaces");
        // New ids are UUIDv7 with the current time, distinct from each other.
        let (a, b) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_ne!(a, b);
        let id = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(secs.abs_diff(now) < 60);
        // New trace ids differ per request.
        let (mut x, mut y) = (HeaderMap::new(), HeaderMap::new());
        propagate_trace(&mut x);
        propagate_trace(&mut y);
        assert!(is_valid_traceparent(x[&TRACEPARENT].to_str().unwrap()));
        assert_ne!(x[&TRACEPARENT], y[&TRACEPARENT]);
    }
}
