//! OAuth clients: how they are shown (never the secret's hash), created and changed.

use serde::{Deserialize, Serialize};

/// A client's type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    #[default]
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

/// A client as the admin API shows it (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Client {
    pub id: String,
    pub client_id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub client_type: ClientType,
    pub token_endpoint_auth_methods: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The public keys of a `private_key_jwt` client (it has no secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    pub first_party: bool,
    pub access_token_lifetime_secs: Option<i64>,
    pub signing_alg: String,
    /// Browser origins allowed at the token endpoint (public clients).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A client with its secret, shown once: the answer to creating a confidential client and to
/// `POST /admin/clients/{client_id}/secret`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: Client,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// `POST /admin/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Default: a fresh UUIDv7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub name: String,
    /// The tenant the client belongs to (none: a platform client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub client_type: ClientType,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A JWK Set of the client's public keys: the client authenticates with `private_key_jwt`
    /// (RFC 7523) and gets no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// First-party (platform) clients skip the consent page. Default: third-party.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_party: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// Browser origins (`https://app.example`) a public client's pages call the token endpoint
    /// from (CORS); requests from any other origin are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

/// `PATCH /admin/clients/{client_id}`: a partial update; absent fields stay.
/// `access_token_lifetime_secs: null` resets the lifetime to the issuer's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Replaces a private_key_jwt client's keys (a JWK Set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub access_token_lifetime_secs: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// Replaces the browser origins allowed at the token endpoint (public clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
}

/// A field that is present, even as `null`, is `Some` (`null` → `Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
