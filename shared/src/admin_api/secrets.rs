//! The tenant vault: secrets, versions, and reading or storing one value.

use serde::{Deserialize, Serialize};

/// One version of a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretVersion {
    pub version: i64,
    pub created_at: String,
    pub revoked: bool,
}

/// A secret of a tenant: its name and versions, oldest first (the items of
/// `GET /admin/tenants/{tid}/secrets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Secret {
    pub name: String,
    pub versions: Vec<SecretVersion>,
}

/// `PUT /admin/tenants/{tid}/secrets/{name}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub value: String,
}

/// The answer to [`SecretValue`] (201): the version stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretStored {
    pub name: String,
    pub version: i64,
}

/// `GET /admin/tenants/{tid}/secrets/{name}`: one version's value (the latest unless
/// `?version=` names one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretRead {
    pub name: String,
    pub version: i64,
    pub value: String,
}
