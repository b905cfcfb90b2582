//! Where a request came from ([`crate::events::Meta`]: client IP, user agent, trace id), read
//! from its headers. The client IP is the rightmost `X-Forwarded-For` entry: the address the
//! gateway in front of the service saw.

use crate::events::Meta;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// The client's IP: the rightmost `X-Forwarded-For` entry (the address the gateway in front
/// of the service saw), else `unknown`.
pub fn client_ip(headers: &HeaderMap) -> String {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .next_back()
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

impl Meta {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str, max: usize| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.chars()
                        .filter(|c| !c.is_control())
                        .take(max)
                        .collect::<String>()
                })
                .unwrap_or_default()
        };
        // W3C traceparent: version-traceid-parentid-flags.
        let trace_id = text("traceparent", 55)
            .split('-')
            .nth(1)
            .filter(|t: &&str| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned)
            .unwrap_or_default();
        Self {
            ip: crate::http::client_ip(headers),
            user_agent: text("user-agent", 256),
            trace_id,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Meta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Meta::from_headers(&parts.headers))
    }
}
