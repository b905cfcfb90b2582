//! Calls to identity's admin API (under the issuer) with the signed-in admin's access token,
//! and to the gateway's health report.

use reqwest::Method;
use serde_json::Value;

use crate::AppState;

/// Why an admin API call failed, in words an admin can act on (never with token values).
#[derive(Debug)]
pub enum ApiError {
    /// The access token was refused (expired or revoked): sign in again.
    Unauthorized,
    /// Identity answered with an error status.
    Status(u16, String),
    /// Identity could not be reached or answered garbage.
    Unreachable(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Unauthorized => f.write_str("identity refused the session's access token"),
            ApiError::Status(code, detail) => write!(f, "identity answered {code}: {detail}"),
            ApiError::Unreachable(e) => write!(f, "identity is unreachable: {e}"),
        }
    }
}

pub async fn call(
    state: &AppState,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let url = format!("{}{}", state.config.issuer, path.trim_start_matches('/'));
    let mut req = state.http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized);
    }
    let value: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    if !status.is_success() {
        let detail = value
            .get("detail")
            .or_else(|| value.get("title"))
            .or_else(|| value.get("error_description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        return Err(ApiError::Status(status.as_u16(), detail));
    }
    Ok(value)
}

/// A GET of identity's admin API ([`call`] without a body).
pub async fn get(state: &AppState, token: &str, path: &str) -> Result<Value, ApiError> {
    call(state, token, Method::GET, path, None).await
}

/// A GET whose answer is text (NDJSON exports), with the same error mapping as [`call`].
pub async fn call_text(state: &AppState, token: &str, path: &str) -> Result<String, ApiError> {
    let url = format!("{}{}", state.config.issuer, path.trim_start_matches('/'));
    let resp = state
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ApiError::Unauthorized);
    }
    if !status.is_success() {
        let detail = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        return Err(ApiError::Status(status.as_u16(), detail));
    }
    Ok(text)
}

fn without_url(e: &reqwest::Error) -> String {
    e.to_string()
}

/// The gateway's `/health` report (200 or 503 both carry the JSON report).
pub async fn health(state: &AppState) -> Result<Value, String> {
    let resp = state
        .http
        .get(&state.config.health_url)
        .send()
        .await
        .map_err(|e| without_url(&e))?;
    resp.json::<Value>().await.map_err(|e| without_url(&e))
}
