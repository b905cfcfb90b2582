//! Users as members of a tenant, invitations, and credential resets.

use serde::{Deserialize, Serialize};

/// A user as a tenant's admin API shows it: the global identity and its roles in the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub id: String,
    pub email: String,
    pub name: String,
    pub disabled: bool,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A pending invitation of an existing account to a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub roles: Vec<String>,
    /// Always `pending` (accepted invitations are memberships).
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

/// `POST /admin/tenants/{tid}/users`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// The answer to [`NewMember`]: a new account is a member at once (201); an existing account
/// is invited (202) and becomes a member when it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum AddedMember {
    Invited(Invitation),
    Member(Member),
}

/// `POST /admin/tenants/{tid}/users/{uid}/password`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

/// A member's passkey in a tenant (`GET /admin/tenants/{tid}/users/{uid}/passkeys`): what
/// an administrator may know of it; never the credential itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPasskey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// The authenticator may sync it to the user's other devices.
    pub backup_eligible: bool,
    /// It is synced (backed up) now.
    pub backup_state: bool,
}
