//! External OIDC providers of a tenant and their discovery check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How sign-ins through a provider land in the tenant.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignInSettings {
    /// Creates an account (a member of the tenant) on the first sign-in of an upstream
    /// identity that names no account yet.
    pub auto_provision: bool,
    /// Trusts the provider's `email_verified` (Keycloak's "Trust Email"): only then is an
    /// upstream address taken as verified (an account it creates has a verified address; an
    /// existing account of the address may link after its password; the allowed domains
    /// accept it). Off by default.
    pub trust_email: bool,
    /// The ID token claim read as the email (default `email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_claim: Option<String>,
    /// The ID token claim read as the name (default `name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_claim: Option<String>,
    /// The ID token claim read as the upstream groups (default `groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Upstream group → the tenant roles a provisioned member gets (`User` when none match).
    pub group_roles: BTreeMap<String, Vec<String>>,
    /// When not empty, only upstream addresses of these domains may sign in; an address
    /// proves its domain only when trusted, so this needs `trust_email`.
    pub allowed_domains: Vec<String>,
    /// Home-realm discovery: an address of these domains typed at the login page goes to this
    /// provider.
    pub home_domains: Vec<String>,
}

/// An external OIDC provider of a tenant (the secret is write-only: `has_secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Provider {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub has_secret: bool,
    pub scopes: Vec<String>,
    pub enabled: bool,
    #[serde(default)]
    pub sign_in: SignInSettings,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /admin/tenants/{tid}/providers`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<SignInSettings>,
}

/// `PATCH /admin/tenants/{tid}/providers/{id}`: the fields to change.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProviderUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A new secret (replaces the stored one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `true` removes the stored secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Replaces the sign-in settings as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<SignInSettings>,
}

/// An upstream identity linked to a user (`GET …/users/{uid}/identities`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub id: String,
    pub tenant_id: String,
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: String,
    pub last_used_at: String,
}

/// `POST /admin/tenants/{tid}/providers/{id}/test`: the discovery document's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscoveryCheck {
    pub ok: bool,
    pub discovery_url: String,
    /// Why it failed (absent when `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The HTTP status the provider answered, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub elapsed_ms: u64,
}
