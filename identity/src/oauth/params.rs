//! Form-encoded request parameters (RFC 6749 §3.1: each at most once, empty values count as
//! absent), read with a size bound, and client authentication's URL decoding.

use super::OAuthError;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use std::collections::HashMap;

/// Token requests are small; anything bigger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The request parameters (each at most once; empty values count as absent, §3.1).
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            if v.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    printable(&k)
                )));
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A parameter name for an error description: short and printable.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

/// Reads and parses a form body with the RFC 6749 error on every failure.
pub async fn read_form(headers: &HeaderMap, body: Body) -> Result<Params, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is too large or could not be read"))?;
    Params::parse(&bytes)
}

/// application/x-www-form-urlencoded decoding of one value: `+` is a space, `%XX` a byte.
/// `None` on a broken escape or a result that is not UTF-8.
pub(crate) fn form_urldecode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
