//! Request extractors whose rejections are problem+json (RFC 9457) instead of axum's plain-text
//! ones, shared by every service: path and query parameters, and a bounded JSON body.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Problem;

/// Path parameters with problem+json rejections (400).
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

/// Query-string parameters with problem+json rejections (400).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T, S> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(QueryParams)
            .map_err(|e| Problem::bad_request(format!("invalid query string: {e}")))
    }
}

/// Reads a JSON body of at most `limit` bytes (413 beyond) into `T` (400 when it is not JSON of
/// that shape).
pub async fn read_json<T: DeserializeOwned>(body: Body, limit: usize) -> Result<T, Problem> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Problem::payload_too_large())?;
    serde_json::from_slice(&bytes).map_err(|e| Problem::bad_request(format!("invalid JSON: {e}")))
}
