use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// Why a request was not authorised. Answered per RFC 6750 §3: 401 with
/// `WWW-Authenticate: Bearer … error="invalid_token"` for a bad token, 403 with
/// `error="insufficient_scope"` for a missing scope, 400 `invalid_request` for a malformed
/// header, and 403 problem+json when the token's tenant differs from the request's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials at all: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    #[error("authentication required")]
    MissingToken,
    /// The Authorization header is not a single well-formed bearer credential.
    #[error("malformed authorization header")]
    InvalidRequest,
    /// The token is malformed, expired, wrongly signed, for someone else, …
    /// The description is a fixed text that never echoes the token.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("insufficient scope: requires {0}")]
    InsufficientScope(String),
    #[error("tenant mismatch")]
    TenantMismatch,
    /// The issuer's keys could not be fetched and the token's key is not cached.
    #[error("token keys unavailable")]
    KeysUnavailable,
    /// A DPoP-bound token without a valid proof (RFC 9449 §7.1: 401, `DPoP` challenge).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The proof lacks the server's current nonce; the answer carries one (RFC 9449 §9).
    #[error("a DPoP nonce is required")]
    UseDpopNonce(String),
}

/// The realm named in every challenge.
pub const REALM: &str = "tansu";

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingToken
            | AuthError::InvalidToken(_)
            | AuthError::InvalidDpopProof(_)
            | AuthError::UseDpopNonce(_) => StatusCode::UNAUTHORIZED,
            AuthError::InvalidRequest => StatusCode::BAD_REQUEST,
            AuthError::InsufficientScope(_) | AuthError::TenantMismatch => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn challenge(&self) -> Option<String> {
        match self {
            AuthError::MissingToken => Some(format!("Bearer realm=\"{REALM}\"")),
            AuthError::InvalidRequest => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"malformed authorization header\""
            )),
            AuthError::InvalidToken(why) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""
            )),
            AuthError::InsufficientScope(scope) => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            AuthError::InvalidDpopProof(why) => Some(format!(
                "DPoP realm=\"{REALM}\", algs=\"{}\", error=\"invalid_dpop_proof\", error_description=\"{why}\"",
                super::dpop::ALGORITHM_NAMES.join(" ")
            )),
            AuthError::UseDpopNonce(_) => Some(format!(
                "DPoP realm=\"{REALM}\", algs=\"{}\", error=\"use_dpop_nonce\", error_description=\"a nonce is required\"",
                super::dpop::ALGORITHM_NAMES.join(" ")
            )),
            AuthError::TenantMismatch | AuthError::KeysUnavailable => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let p = match self {
            AuthError::MissingToken => {
                Problem::new(self.status(), "unauthorized", "Authentication required")
            }
            AuthError::InvalidRequest => Problem::new(
                self.status(),
                "invalid-request",
                "Malformed authorization header",
            ),
            AuthError::InvalidToken(why) => {
                Problem::new(self.status(), "invalid-token", "Invalid token").with_detail(*why)
            }
            AuthError::InsufficientScope(scope) => {
                Problem::new(self.status(), "insufficient-scope", "Insufficient scope")
                    .with_detail(format!("requires scope: {scope}"))
            }
            AuthError::TenantMismatch => {
                Problem::new(self.status(), "tenant-mismatch", "Tenant mismatch")
                    .with_detail("the token's tenant does not match the request's tenant")
            }
            AuthError::KeysUnavailable => {
                Problem::service_unavailable("the token issuer's keys are temporarily unavailable")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            }
            AuthError::InvalidDpopProof(why) => {
                Problem::new(self.status(), "invalid-dpop-proof", "Invalid DPoP proof")
                    .with_detail(*why)
            }
            AuthError::UseDpopNonce(nonce) => {
                let p = Problem::new(self.status(), "use-dpop-nonce", "DPoP nonce required")
                    .with_detail("retry with the nonce of the DPoP-Nonce header");
                match HeaderValue::from_str(nonce) {
                    Ok(v) => p.with_header(
                        axum::http::HeaderName::from_static(super::dpop::NONCE_HEADER),
                        v,
                    ),
                    Err(_) => p,
                }
            }
        };
        match self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            Some(v) => p.with_header(header::WWW_AUTHENTICATE, v),
            None => p,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}
