//! Tenants (shops), their policy, and registrations.

use serde::{Deserialize, Serialize};

/// A tenant's policy. Absent fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
#[serde(deny_unknown_fields)]
pub struct TenantPolicy {
    /// Access token lifetime for the tenant's users (none: the client's or the service's).
    pub access_token_lifetime_secs: Option<u64>,
    pub refresh_token_lifetime_secs: Option<u64>,
    pub session_timeout_secs: Option<u64>,
    pub password_min_length: usize,
    /// Failed sign-ins before a temporary lock.
    pub lockout_threshold: u32,
    pub lockout_duration_secs: u64,
    pub mfa_required: bool,
    /// Members sign in here with a passkey: passwordless, or as the second factor after the
    /// password; one without a passkey registers one during the sign-in. A recovery code
    /// stands in for a lost one.
    pub passkeys_required: bool,
    /// Members must prove their email address (a link by mail) before they sign in here.
    pub email_verification_required: bool,
    /// Members may delete their own account (`/account/delete`; every tenant of the account
    /// must allow it).
    pub self_service_deletion: bool,
    /// Branding of the sign-in and account pages: the name shown (none: the tenant's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// An https URL of the logo shown on those pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// The primary colour of those pages, `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_colour: Option<String>,
    /// Browser origins (`https://app.example`, exactly as browsers send `Origin`) allowed to
    /// call the tenant's APIs through the gateway (CORS).
    pub allowed_origins: Vec<String>,
    /// Which of the tenant's services may exchange a user's token for a token for which
    /// audience (RFC 8693 token exchange, acting for the user).
    pub token_exchange: Vec<TokenExchangeRule>,
}

/// One service of a tenant allowed to act for the tenant's users towards `audiences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeRule {
    /// The exchanging client (a confidential client of the tenant).
    pub client_id: String,
    /// The services it may get tokens for (`tansu.db`, `tansu.storage`).
    pub audiences: Vec<String>,
}

impl Default for TenantPolicy {
    fn default() -> Self {
        Self {
            access_token_lifetime_secs: None,
            refresh_token_lifetime_secs: None,
            session_timeout_secs: None,
            password_min_length: 12,
            lockout_threshold: 5,
            lockout_duration_secs: 900,
            mfa_required: false,
            passkeys_required: false,
            email_verification_required: false,
            self_service_deletion: false,
            display_name: None,
            logo_url: None,
            primary_colour: None,
            allowed_origins: Vec::new(),
            token_exchange: Vec::new(),
        }
    }
}

/// A tenant (`GET /admin/tenants/{tid}`, the items of `GET /admin/tenants`, and the answer of
/// every tenant change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    pub policy: TenantPolicy,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /admin/tenants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<TenantPolicy>,
}

/// `PATCH /admin/tenants/{tid}`: the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<TenantPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The answer to `POST /admin/registrations` (201): the tenant and its owner created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    pub tenant_id: String,
    pub slug: String,
    pub user_id: String,
}
