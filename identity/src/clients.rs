//! OAuth clients: registration rules, secrets, and how a client is described to admins.
//!
//! Secrets are 256 random bits, shown once, and stored as their SHA-256 hash. A slow password
//! hash buys nothing for a secret with that much entropy (there is nothing to brute-force), and
//! SHA-256 keeps the token endpoint fast. Hashes are compared in constant time (`subtle`).

use subtle::ConstantTimeEq;
pub use tansu_shared::admin_api::{Client, ClientType, ClientUpdate, ClientWithSecret, NewClient};

use crate::config::{MAX_ACCESS_TOKEN_LIFETIME_SECS, MIN_ACCESS_TOKEN_LIFETIME_SECS};
use crate::crypto;
use crate::keys::SigningAlg;
use crate::scopes;
use crate::store::clients::ClientRow;

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// RFC 8693: a service exchanging a user's token for one for another service.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Grants a client may be registered for.
pub const GRANTS: &[&str] = &[
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE,
];

/// Grants the token endpoint answers today.
pub const GRANTS_IMPLEMENTED: &[&str] = &[
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE,
];

/// The SHA-256 of a client secret, as stored.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    crypto::sha256(secret.as_bytes())
}

/// Constant-time check of a presented secret against the stored hash.
pub fn secret_matches(presented: &str, stored_hash: &[u8]) -> bool {
    let presented = hash_secret(presented);
    presented.len() == stored_hash.len() && bool::from(presented.ct_eq(stored_hash))
}

/// A client as the admin API shows it ([`Client`]: never the secret or its hash).
impl From<&ClientRow> for Client {
    fn from(c: &ClientRow) -> Self {
        Self {
            id: c.id.clone(),
            client_id: c.client_id.clone(),
            tenant_id: c.tenant_id.clone(),
            name: c.name.clone(),
            client_type: if c.confidential {
                ClientType::Confidential
            } else {
                ClientType::Public
            },
            token_endpoint_auth_methods: if c.jwks.is_some() {
                vec!["private_key_jwt".into()]
            } else if c.confidential {
                vec!["client_secret_basic".into(), "client_secret_post".into()]
            } else {
                vec!["none".into()]
            },
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            jwks: c.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            first_party: c.first_party,
            access_token_lifetime_secs: c.access_token_lifetime_secs,
            signing_alg: c.signing_alg.clone(),
            allowed_origins: c.allowed_origins.clone(),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// Unix milliseconds as RFC 3339 (UTC; the workspace's one formatter).
pub use tansu_shared::clock::rfc3339;

/// Checks the registration rules on a full client description; every problem found.
pub fn validate(c: &ClientRow, dev_mode: bool) -> Vec<String> {
    let mut v = Vec::new();
    let id_ok = !c.client_id.is_empty()
        && c.client_id.len() <= 128
        && c.client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !id_ok {
        v.push("client_id: 1 to 128 characters of A-Z a-z 0-9 - . _ ~".into());
    }
    if c.name.trim().is_empty() || c.name.len() > 200 {
        v.push("name: required, at most 200 characters".into());
    }
    if c.grant_types.is_empty() {
        v.push("grant_types: at least one".into());
    }
    for g in &c.grant_types {
        if !GRANTS.contains(&g.as_str()) {
            v.push(format!("grant_types: unknown grant {g:?}"));
        }
    }
    let has = |g: &str| c.grant_types.iter().any(|x| x == g);
    if !c.confidential && has(GRANT_CLIENT_CREDENTIALS) {
        v.push("grant_types: client_credentials needs a confidential client".into());
    }
    if has(GRANT_TOKEN_EXCHANGE) && (!c.confidential || c.tenant_id.is_none()) {
        v.push(
            "grant_types: token exchange needs a confidential client of a tenant (a service acting for its users)"
                .into(),
        );
    }
    if has(GRANT_REFRESH_TOKEN) && !has(GRANT_AUTHORIZATION_CODE) {
        v.push("grant_types: refresh_token needs authorization_code".into());
    }
    if has(GRANT_AUTHORIZATION_CODE) && c.redirect_uris.is_empty() {
        v.push("redirect_uris: authorization_code needs at least one".into());
    }
    for uri in &c.redirect_uris {
        if let Err(e) = validate_redirect_uri(uri) {
            v.push(format!("redirect_uris: {uri:?}: {e}"));
        }
    }
    if let Some(jwks) = &c.jwks
        && let Err(e) = client_keys(jwks)
    {
        v.push(format!("jwks: {e}"));
    }
    if c.jwks.is_some() && (!c.confidential || c.secret_hash.is_some()) {
        v.push("jwks: a private_key_jwt client is confidential and has no secret".into());
    }
    if !c.allowed_origins.is_empty() && c.confidential {
        v.push(
            "allowed_origins: only public clients run in a browser (a confidential client's secret must not)"
                .into(),
        );
    }
    if c.allowed_origins.len() > crate::tenants::MAX_ALLOWED_ORIGINS {
        v.push(format!(
            "allowed_origins: at most {}",
            crate::tenants::MAX_ALLOWED_ORIGINS
        ));
    }
    for o in &c.allowed_origins {
        if !tansu_shared::origin::is_serialized(o) {
            v.push(format!(
                "allowed_origins: {:?} is not an origin like \"https://app.example\" (lowercase, no path, no default port)",
                o.chars().take(80).collect::<String>()
            ));
        }
    }
    for uri in &c.post_logout_redirect_uris {
        if let Err(e) = validate_redirect_uri(uri) {
            v.push(format!("post_logout_redirect_uris: {uri:?}: {e}"));
        }
    }
    for s in &c.scopes {
        if c.tenant_id.is_some() && scopes::is_platform_only(s) {
            v.push(format!(
                "scopes: {s:?} is for platform clients only, not for a tenant's client"
            ));
        }
        if !scopes::is_known(s, dev_mode) {
            v.push(format!("scopes: unknown scope {s:?}"));
        }
    }
    if let Some(l) = c.access_token_lifetime_secs {
        let ok = u64::try_from(l).is_ok_and(|l| {
            (MIN_ACCESS_TOKEN_LIFETIME_SECS..=MAX_ACCESS_TOKEN_LIFETIME_SECS).contains(&l)
        });
        if !ok {
            v.push(format!(
                "access_token_lifetime_secs: between {MIN_ACCESS_TOKEN_LIFETIME_SECS} and {MAX_ACCESS_TOKEN_LIFETIME_SECS}"
            ));
        }
    }
    if SigningAlg::parse(&c.signing_alg).is_none() {
        v.push("signing_alg: RS256, ES256 or EdDSA".into());
    }
    v
}

/// A client's public keys (for `private_key_jwt`): a JWK Set of RSA, P-256 or Ed25519 signing
/// keys, none with private parts.
pub fn client_keys(jwks: &str) -> Result<Vec<jsonwebtoken::jwk::Jwk>, String> {
    let raw: serde_json::Value = serde_json::from_str(jwks).map_err(|_| "not JSON".to_owned())?;
    let keys = raw["keys"]
        .as_array()
        .ok_or_else(|| "not a JWK Set (no \"keys\" array)".to_owned())?;
    if keys.is_empty() || keys.len() > 10 {
        return Err("between 1 and 10 keys".into());
    }
    let mut out = Vec::new();
    for key in keys {
        if key.get("d").is_some() || key.get("p").is_some() || key.get("k").is_some() {
            return Err("keys must be public (no private or symmetric parts)".into());
        }
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.clone()).map_err(|e| format!("invalid JWK: {e}"))?;
        if jsonwebtoken::DecodingKey::from_jwk(&jwk).is_err() {
            return Err("unusable JWK".into());
        }
        out.push(jwk);
    }
    Ok(out)
}

/// Redirect URIs are absolute, without fragment (RFC 6749 §3.1.2), https — or http only on a
/// loopback host (native apps, RFC 8252 §7.3) — and are later matched exactly.
pub fn validate_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback(&url) => Ok(()),
        _ => Err("must be https (http only on a loopback host)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_compare() {
        let s = crypto::random_secret().unwrap();
        assert_eq!(s.len(), 43);
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches("nope", &h));
        assert!(!secret_matches(&s, &h[..31]));
    }

    #[test]
    fn redirect_uris() {
        assert!(validate_redirect_uri("https://app.example/cb").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:5000/cb").is_ok());
        assert!(validate_redirect_uri("http://app.example/cb").is_err());
        assert!(validate_redirect_uri("https://app.example/cb#x").is_err());
        assert!(validate_redirect_uri("/cb").is_err());
    }
}
