//! Calls to identity's admin API (under the issuer) with the signed-in admin's access token,
//! and to the gateway's health report.
//!
//! Answers are read into the admin API's own types ([`tansu_shared::admin_api`]), so a field
//! identity renames fails to compile here rather than blanking a page.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
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

/// Identity's admin API as one signed-in admin calls it.
pub struct Identity<'a> {
    state: &'a AppState,
    token: &'a str,
}

impl<'a> Identity<'a> {
    pub fn new(state: &'a AppState, token: &'a str) -> Self {
        Self { state, token }
    }

    /// A GET whose answer is `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        parse(&self.send(Method::GET, path, None::<&()>).await?)
    }

    /// A call with a JSON body (or none) whose answer is `T`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        parse(&self.send(method, path, body).await?)
    }

    /// A call whose answer has no body to read (`204`, or one the dashboard does not need).
    pub async fn act(&self, method: Method, path: &str) -> Result<(), ApiError> {
        self.send(method, path, None::<&()>).await.map(|_| ())
    }

    /// The call; a success's body as text.
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String, ApiError> {
        if !plain_path(path) {
            // An item named `.` or `..` would be resolved away by the URL parser and make the
            // call another one (revoking the role `..` would become `DELETE …/users/{uid}/`):
            // no such item.
            return Err(ApiError::Status(404, String::new()));
        }
        let url = format!(
            "{}{}",
            self.state.identity_base(),
            path.trim_start_matches('/')
        );
        let mut req = self.state.http.request(method, url).bearer_auth(self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ApiError::Unreachable(e.to_string()))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ApiError::Unauthorized);
        }
        if !status.is_success() {
            // An RFC 9457 problem's words (or an OAuth error's): what the admin reads.
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let detail = value
                .get("detail")
                .or_else(|| value.get("title"))
                .or_else(|| value.get("error_description"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            return Err(ApiError::Status(status.as_u16(), detail));
        }
        Ok(text)
    }
}

/// A path without `.` or `..` segments (items are percent-encoded, so these are the only
/// segments the URL parser would resolve).
fn plain_path(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/').all(|seg| seg != "." && seg != "..")
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text)
        .map_err(|e| ApiError::Unreachable(format!("identity answered an unexpected body: {e}")))
}

/// The `kid`s of identity's JWKS (`/.well-known/jwks`; the rotation page checks which keys
/// are published).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Jwks {
    pub keys: Vec<JwkId>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct JwkId {
    pub kid: String,
}

/// The gateway's `/health` report: overall and per service instance.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct HealthReport {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub services: Vec<InstanceHealth>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct InstanceHealth {
    #[serde(default)]
    pub route: String,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub status: String,
}

/// The gateway's `/health` report (200 or 503 both carry the JSON report).
pub async fn health(state: &AppState) -> Result<HealthReport, String> {
    let resp = state
        .http
        .get(&state.config.health_url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    resp.json::<HealthReport>().await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_never_reach_identity() {
        assert!(plain_path("admin/tenants/t1/users/u1/roles/Admin"));
        assert!(plain_path("admin/tenants/t1/secrets/a.b?x=../y"));
        for bad in [
            "admin/tenants/t1/users/u1/roles/..",
            "admin/tenants/t1/providers/.",
            "admin/tenants/../providers/p",
        ] {
            assert!(!plain_path(bad), "{bad}");
        }
    }
}
