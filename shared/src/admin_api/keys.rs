//! Token signing keys: the rotation policy, the key ring's state, rotate-now.

use serde::{Deserialize, Serialize};

/// One signing key and where it is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    /// `next` (published, not signing yet), `current`, `retiring`, …
    pub state: String,
    pub published_from: String,
    pub signs_from: String,
    pub signs_until: Option<String>,
    pub published_until: Option<String>,
}

/// `GET /admin/keys/policies`: the rotation policy and every key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPolicy {
    pub default_alg: String,
    pub algorithms: Vec<String>,
    pub rotation_period_secs: u64,
    pub grace_secs: u64,
    pub lead_secs: u64,
    pub check_interval_secs: u64,
    pub jwks_max_age_secs: u64,
    pub keys: Vec<SigningKey>,
}

/// A key a rotation made: published now, signing from `signs_from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingKey {
    pub kid: String,
    pub alg: String,
    pub signs_from: String,
}

/// `POST /admin/keys/rotate-now` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRotation {
    /// `accepted`.
    pub status: String,
    pub pending: Vec<PendingKey>,
}
