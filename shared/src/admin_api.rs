//! The request and response types of identity's admin API (`/admin/…`), defined once for the
//! server and its clients (the dashboard).
//!
//! Every type mirrors the JSON identity emits field by field, with the same optionality: a
//! field renamed here fails to compile in whatever reads or writes it, instead of blanking a
//! page. Lists come in two shapes: [`Page`] (`items` and the `next_after` cursor) and
//! [`Items`] (a complete list). Times are RFC 3339 strings unless a field says otherwise.
//! Request bodies refuse unknown fields, as identity does; their `Debug` never shows a secret
//! (passwords, client secrets, secret values).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// `Debug` of the types carrying a secret.
mod redacted;
#[cfg(test)]
mod wire;

// ---------------------------------------------------------------- lists

/// A page of a cursor-paged list: `{"items": […], "next_after": "…" | null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page (`after=`); `None` on the last page.
    pub next_after: Option<String>,
}

/// A complete list: `{"items": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

// ---------------------------------------------------------------- tenants

/// A tenant's policy. Absent fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Browser origins (`https://app.example`, exactly as browsers send `Origin`) allowed to
    /// call the tenant's APIs through the gateway (CORS).
    pub allowed_origins: Vec<String>,
    /// Which of the tenant's services may exchange a user's token for a token for which
    /// audience (RFC 8693 token exchange, acting for the user).
    pub token_exchange: Vec<TokenExchangeRule>,
}

/// One service of a tenant allowed to act for the tenant's users towards `audiences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            allowed_origins: Vec::new(),
            token_exchange: Vec::new(),
        }
    }
}

/// A tenant (`GET /admin/tenants/{tid}`, the items of `GET /admin/tenants`, and the answer of
/// every tenant change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<TenantPolicy>,
}

/// `PATCH /admin/tenants/{tid}`: the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

// ---------------------------------------------------------------- users

/// A user as a tenant's admin API shows it: the global identity and its roles in the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[serde(untagged)]
pub enum AddedMember {
    Invited(Invitation),
    Member(Member),
}

/// `POST /admin/tenants/{tid}/users/{uid}/password`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

// ---------------------------------------------------------------- clients

/// A client's type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: Client,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

/// `POST /admin/clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

// ---------------------------------------------------------------- signing keys

/// One signing key and where it is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
pub struct PendingKey {
    pub kid: String,
    pub alg: String,
    pub signs_from: String,
}

/// `POST /admin/keys/rotate-now` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    /// `accepted`.
    pub status: String,
    pub pending: Vec<PendingKey>,
}

// ---------------------------------------------------------------- master key

/// A re-wrap run of this replica. Times are unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapRun {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Rows under a previous key when the run started.
    pub total_at_start: u64,
    /// Rows moved under the current key.
    pub rewrapped: u64,
    /// Rows that could not be opened.
    pub failed: u64,
    /// Every row was visited (false: stopped early, or an error).
    pub complete: bool,
    pub error: Option<String>,
}

/// `GET /admin/master-key` and `POST /admin/master-key/rewrap` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKey {
    pub current_key_id: String,
    pub previous_key_ids: Vec<String>,
    /// `done`, `running` or `pending`.
    pub state: String,
    /// Rows still sealed under a previous key.
    pub remaining: i64,
    pub remaining_by_table: BTreeMap<String, i64>,
    pub last_run: Option<RewrapRun>,
}

// ---------------------------------------------------------------- providers

/// An external OIDC provider of a tenant (the secret is write-only: `has_secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub has_secret: bool,
    pub scopes: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /admin/tenants/{tid}/providers`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// `PATCH /admin/tenants/{tid}/providers/{id}`: the fields to change.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// `POST /admin/tenants/{tid}/providers/{id}/test`: the discovery document's check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

// ---------------------------------------------------------------- secrets

/// One version of a secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersion {
    pub version: i64,
    pub created_at: String,
    pub revoked: bool,
}

/// A secret of a tenant: its name and versions, oldest first (the items of
/// `GET /admin/tenants/{tid}/secrets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    pub versions: Vec<SecretVersion>,
}

/// `PUT /admin/tenants/{tid}/secrets/{name}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    pub value: String,
}

/// The answer to [`SecretValue`] (201): the version stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStored {
    pub name: String,
    pub version: i64,
}

// ---------------------------------------------------------------- security events

/// A security event (the items of `GET /admin/security-events`, one line of its NDJSON export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub time: String,
    /// `None`: the platform's own chain.
    pub tenant_id: Option<String>,
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: String,
    pub ip: String,
    pub user_agent: String,
    pub outcome: String,
    pub details: serde_json::Value,
    pub trace_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The first event whose link in the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLink {
    pub id: String,
    pub seq: i64,
    pub reason: String,
}

/// A chain verification's result (`GET /admin/security-events/verify`, a finished job's
/// `result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    pub ok: bool,
    /// Events checked.
    pub checked: i64,
    pub first_broken: Option<BrokenLink>,
    /// The sequence number the checked part of the chain follows (absent when broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_after_seq: Option<i64>,
}

/// A chain verification job (`POST /admin/security-events/verifications` (202) and
/// `GET /admin/security-events/verifications/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub id: String,
    /// The tenant id, or `platform`.
    pub tenant: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub checked: i64,
    /// The chain's events when the job started (never less than `checked`).
    pub total: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The result once `done`.
    pub result: Option<ChainCheck>,
    /// Why it `failed`.
    pub error: Option<String>,
}

// ---------------------------------------------------------------- statistics

/// Sign-ins, failed sign-ins and tokens issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub sign_ins: i64,
    pub failures: i64,
    pub tokens: i64,
}

/// One hour of [`Activity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityBucket {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// `GET /admin/stats/activity`: counts per hour of the last `hours` hours, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub hours: i64,
    /// The tenant counted; `None`: every tenant (platform administrators).
    pub tenant: Option<String>,
    pub buckets: Vec<ActivityBucket>,
    pub totals: Counts,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_added_member_is_an_invitation_or_a_member() {
        let invited: AddedMember = serde_json::from_value(json!({
            "id": "i", "tenant_id": "t", "email": "a@b.c", "roles": ["User"],
            "status": "pending", "created_at": "x", "expires_at": "y",
        }))
        .unwrap();
        assert!(matches!(invited, AddedMember::Invited(_)));
        let member: AddedMember = serde_json::from_value(json!({
            "id": "u", "email": "a@b.c", "name": "A", "disabled": false, "tenant_id": "t",
            "roles": ["User"], "created_at": "x", "updated_at": "y",
        }))
        .unwrap();
        assert!(matches!(member, AddedMember::Member(_)));
    }

    #[test]
    fn a_client_with_its_secret_flattens() {
        let v = json!({
            "id": "1", "client_id": "c", "tenant_id": null, "name": "n",
            "client_type": "confidential", "token_endpoint_auth_methods": [],
            "grant_types": [], "scopes": [], "redirect_uris": [], "post_logout_redirect_uris": [],
            "first_party": false, "access_token_lifetime_secs": null, "signing_alg": "RS256",
            "created_at": "x", "updated_at": "y", "client_secret": "s",
        });
        let c: ClientWithSecret = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.client_secret.as_deref(), Some("s"));
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }
}
