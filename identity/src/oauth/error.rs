//! RFC 6749 §5.2 error responses of the token endpoint.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An OAuth error: `{"error": …, "error_description": …}` with `Cache-Control: no-store`.
/// `invalid_client` is 401 with a `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2 requires it
/// when the client tried Basic; RFC 9110 requires a challenge on every 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: Cow<'static, str>,
    /// A DPoP nonce to send (`DPoP-Nonce`, RFC 9449 §8) with `use_dpop_nonce`.
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            dpop_nonce: None,
        }
    }

    /// RFC 9449 §5: the DPoP proof is missing where required, malformed or wrong.
    pub fn invalid_dpop_proof(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", d)
    }

    /// RFC 9449 §8: retry with this nonce in the proof.
    pub fn use_dpop_nonce(nonce: String) -> Self {
        Self {
            dpop_nonce: Some(nonce),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "use_dpop_nonce",
                "the DPoP proof must carry the server's nonce (DPoP-Nonce)",
            )
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }

    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    pub fn unauthorized_client(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    pub fn unsupported_grant_type(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    pub fn invalid_scope(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    /// Not an RFC 6749 code: the server could not answer (database down, no key). Logged here.
    pub fn server_error(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "token endpoint failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server cannot answer right now; retry later",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tansu\", charset=\"UTF-8\""),
            );
        }
        if let Some(v) = self
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(tansu_shared::auth::dpop::NONCE_HEADER, v);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}
