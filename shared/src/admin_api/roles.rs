//! Roles of a tenant: the built-in ranks and its custom roles.

use serde::{Deserialize, Serialize};

/// A role (the items of `GET /admin/tenants/{tid}/roles`, and the answer to creating or
/// changing one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Role {
    pub name: String,
    pub description: String,
    /// `["*"]` for the built-in roles: they do not narrow a grant.
    pub scopes: Vec<String>,
    pub builtin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// `POST /admin/tenants/{tid}/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub scopes: Vec<String>,
}

/// `PATCH /admin/tenants/{tid}/roles/{name}`: absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}
