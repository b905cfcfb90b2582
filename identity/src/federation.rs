//! Sign-in through a tenant's external providers: identity as an OpenID Connect relying party,
//! through the `openidconnect` crate (the browser flow is `web::federation`).
//!
//! Security decisions:
//! - Authorization code flow with PKCE (S256), a nonce and a state, all random per sign-in; the
//!   state and nonce are checked by the callback, the verifier goes to the token endpoint only.
//! - The ID token is verified by `openidconnect`: signature with a key of the provider's JWKS
//!   (asymmetric algorithms only: no HMAC with the client secret), `iss` equal to the configured
//!   issuer (and compared exactly once more here), `aud` containing the client id, `exp`, the
//!   nonce. Claims are read only from a token that passed.
//! - Every request to the provider (discovery, JWKS, token endpoint) goes through
//!   [`crate::providers::guarded_send`]: the discovery test's bounds (time, size, no redirects,
//!   https except loopback in dev mode, no internal addresses outside dev mode).
//! - The link to an account is the upstream `iss` + `sub` (unique per tenant), never the email.
//! - An upstream address counts as verified only when the ID token says `email_verified` *and*
//!   the provider's `trust_email` setting is on ([`trusted_email`], Keycloak's "Trust Email"):
//!   only then is an account provisioned at once, an existing account of the address offered
//!   the link (after its password), or the address's domain taken as proof for the provider's
//!   allowed domains. An address that is not trusted never names an existing account: a
//!   sign-in with one whose account exists is refused; a first sign-in with one gets its
//!   account only after the address is proven by mail ([`crate::web::federation_verify`]).
//! - A provider's discovery document and key set are cached per issuer for [`METADATA_TTL`]
//!   ([`MetadataCache`], bounded like every [`crate::cache::TtlCache`]). An ID token signed
//!   with a key the cached set does not have (the provider rotated its keys) fetches the set
//!   once more and is verified against the new one; a key unknown to that set too is refused.

use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenVerifier, CoreJsonWebKeySet,
    CoreJwsSigningAlgorithm, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
};

use crate::providers::guarded_send;
use crate::store::providers::ProviderRow;

/// The security event types of the flow.
pub const FEDERATION_START: &str = "federation.start";
pub const FEDERATION_SIGN_IN: &str = "federation.sign_in";
pub const FEDERATION_LINK: &str = "federation.link";
pub const FEDERATION_PROVISION: &str = "federation.provision";
pub const FEDERATION_UNLINK: &str = "federation.unlink";
/// The proof by mail of an address that is not trusted, before a first sign-in's account.
pub const FEDERATION_VERIFY: &str = "federation.verify";

/// How long a sign-in may stay at the provider (and a link wait for the password).
pub const PENDING_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// How long a provider's discovery document and key set are used before they are fetched
/// again.
pub const METADATA_TTL: Duration = Duration::from_secs(5 * 60);

/// Providers' discovery documents (with their key sets) by issuer.
pub type MetadataCache = crate::cache::TtlCache<String, Arc<ProviderMetadataWithLogout>>;

/// An empty cache of discovery documents, each kept [`METADATA_TTL`].
pub fn metadata_cache() -> MetadataCache {
    MetadataCache::new(METADATA_TTL)
}

/// The signature algorithms an upstream ID token may use: asymmetric only (no HMAC with the
/// client secret).
const ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 4] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in through a provider stopped.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The provider could not be reached, or its discovery, keys or token endpoint answered
    /// something unusable.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// What came back proves no identity (the code was refused, or the ID token failed a check).
    #[error("the provider's answer was refused: {0}")]
    Refused(String),
}

/// A provider, discovered and ready to send a browser to.
pub struct Upstream {
    client: Client,
    issuer: String,
    dev_mode: bool,
    /// The discovery document the client was configured from (its key set verifies ID tokens).
    metadata: Arc<ProviderMetadataWithLogout>,
    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), when the provider has it.
    pub end_session_endpoint: Option<String>,
}

/// A sign-in sent to the provider: where to send the browser and what the callback checks.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// An upstream identity, from an ID token that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UpstreamIdentity {
    pub issuer: String,
    pub subject: String,
    /// Lowercased.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Discovers `p` (its discovery document and JWKS, from `cache` while fresh) and configures
/// the client with `redirect` as the callback.
pub async fn discover(
    cache: &MetadataCache,
    p: &ProviderRow,
    secret: Option<zeroize::Zeroizing<String>>,
    redirect: &str,
    dev_mode: bool,
) -> Result<Upstream, FederationError> {
    if let Some(problem) = crate::providers::issuer_problems(&p.issuer, dev_mode)
        .into_iter()
        .next()
    {
        return Err(FederationError::Unavailable(problem));
    }
    let metadata = match cache.get(&p.issuer) {
        Some(m) => m,
        None => {
            let issuer = IssuerUrl::new(p.issuer.clone())
                .map_err(|_| FederationError::Unavailable("the issuer is not a URL".into()))?;
            let http = move |r| guarded_send(dev_mode, r);
            let fetched = ProviderMetadataWithLogout::discover_async(issuer, &http)
                .await
                .map_err(|e| FederationError::Unavailable(format!("discovery: {}", chain(&e))))?;
            let fetched = Arc::new(fetched);
            cache.put(p.issuer.clone(), fetched.clone());
            fetched
        }
    };
    let end_session_endpoint = metadata
        .additional_metadata()
        .end_session_endpoint
        .as_ref()
        .map(|u| u.as_str().to_owned());
    let redirect = RedirectUrl::new(redirect.to_owned())
        .map_err(|_| FederationError::Unavailable("the callback is not a URL".into()))?;
    let client = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(p.client_id.clone()),
        secret.map(|s| ClientSecret::new(s.as_str().to_owned())),
    )
    .set_redirect_uri(redirect);
    Ok(Upstream {
        client,
        issuer: p.issuer.clone(),
        dev_mode,
        metadata,
        end_session_endpoint,
    })
}

impl Upstream {
    /// A new authorization request (code, PKCE S256, nonce, state) for `scopes`.
    pub fn start(&self, scopes: &[String]) -> Started {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Started {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Redeems `code` and verifies the ID token; the identity it proves, its claims read as
    /// `p` maps them. A token signed with a key the cached set lacks fetches the provider's
    /// key set once more (stored in `cache`) and is verified against it.
    pub async fn finish(
        &self,
        cache: &MetadataCache,
        p: &ProviderRow,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<UpstreamIdentity, FederationError> {
        let dev_mode = self.dev_mode;
        let http = move |r| guarded_send(dev_mode, r);
        let request = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| FederationError::Unavailable("no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()));
        let tokens: CoreTokenResponse =
            request.request_async(&http).await.map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => FederationError::Refused(format!(
                    "the token endpoint refused the code: {:?}",
                    r.error()
                )),
                RequestTokenError::Request(e) => {
                    FederationError::Unavailable(format!("token: {}", chain(&e)))
                }
                RequestTokenError::Parse(_, _) => {
                    FederationError::Unavailable("token: the answer is not a token response".into())
                }
                RequestTokenError::Other(e) => FederationError::Unavailable(format!("token: {e}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| FederationError::Refused("no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = id_token
            .claims(&self.verifier(self.metadata.jwks().clone()), &nonce)
            .map(|c| {
                (
                    c.issuer().as_str().to_owned(),
                    c.subject().as_str().to_owned(),
                )
            });
        let (issuer, subject) = match verified {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let jwks = self.refresh_keys(cache).await?;
                id_token.claims(&self.verifier(jwks), &nonce).map(|c| {
                    (
                        c.issuer().as_str().to_owned(),
                        c.subject().as_str().to_owned(),
                    )
                })
            }
            other => other,
        }
        .map_err(|e| FederationError::Refused(format!("ID token: {e}")))?;
        if issuer != self.issuer {
            return Err(FederationError::Refused("ID token: another issuer".into()));
        }
        if subject.is_empty() || subject.len() > 255 {
            return Err(FederationError::Refused(
                "ID token: no usable subject".into(),
            ));
        }
        let payload = verified_payload(&id_token.to_string())?;
        Ok(read_identity(p, self.issuer.clone(), subject, &payload))
    }

    /// The ID token verifier over `jwks`: signature (asymmetric algorithms), `iss`, `aud`
    /// containing the client id, `exp`.
    fn verifier(&self, jwks: CoreJsonWebKeySet) -> CoreIdTokenVerifier<'static> {
        let issuer = self.metadata.issuer().clone();
        CoreIdTokenVerifier::new_public_client(self.client.client_id().clone(), issuer, jwks)
            .set_allowed_algs(ID_TOKEN_ALGS)
    }

    /// Fetches the provider's key set again (its keys rotated) and keeps it in `cache` with
    /// the discovery document.
    async fn refresh_keys(
        &self,
        cache: &MetadataCache,
    ) -> Result<CoreJsonWebKeySet, FederationError> {
        let dev_mode = self.dev_mode;
        let http = move |r| guarded_send(dev_mode, r);
        let jwks = CoreJsonWebKeySet::fetch_async(self.metadata.jwks_uri(), &http)
            .await
            .map_err(|e| FederationError::Unavailable(format!("keys: {}", chain(&e))))?;
        tracing::info!(issuer = %self.issuer, "a provider's keys were fetched again: an ID token named an unknown key");
        let updated = (*self.metadata).clone().set_jwks(jwks.clone());
        cache.put(self.issuer.clone(), Arc::new(updated));
        Ok(jwks)
    }
}

/// An error with its sources, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

/// The claims of a compact JWS whose signature was verified already.
fn verified_payload(jws: &str) -> Result<serde_json::Value, FederationError> {
    let bad = || FederationError::Refused("ID token: malformed".into());
    let part = jws.split('.').nth(1).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The identity as `p`'s claim mapping reads it.
fn read_identity(
    p: &ProviderRow,
    issuer: String,
    subject: String,
    claims: &serde_json::Value,
) -> UpstreamIdentity {
    let s = &p.sign_in;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(320).collect::<String>())
    };
    let email = text(s.email_claim.as_deref().unwrap_or("email"))
        .map(|e| e.to_lowercase())
        .filter(|e| crate::tenants::valid_email(e));
    let email_verified = matches!(
        claims.get("email_verified"),
        Some(serde_json::Value::Bool(true))
    ) || claims
        .get("email_verified")
        .and_then(serde_json::Value::as_str)
        == Some("true");
    let name = text(s.name_claim.as_deref().unwrap_or("name"))
        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect());
    let groups = match claims.get(s.groups_claim.as_deref().unwrap_or("groups")) {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(serde_json::Value::as_str)
            .take(200)
            .map(str::to_owned)
            .collect(),
        Some(serde_json::Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    UpstreamIdentity {
        issuer,
        subject,
        email,
        email_verified,
        name,
        groups,
    }
}

/// The identity's address when it counts as verified here: the ID token says
/// `email_verified` and `p` trusts its provider's verification (`trust_email`).
pub fn trusted_email<'a>(p: &ProviderRow, id: &'a UpstreamIdentity) -> Option<&'a str> {
    id.email
        .as_deref()
        .filter(|_| id.email_verified && p.sign_in.trust_email)
}

/// Whether `p` lets this identity's address sign in: its allowed domains, when it has some,
/// take only a trusted address ([`trusted_email`]) as proof of a domain.
pub fn domain_allowed(p: &ProviderRow, id: &UpstreamIdentity) -> bool {
    p.sign_in.allowed_domains.is_empty()
        || trusted_email(p, id)
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, d)| p.sign_in.allowed_domains.iter().any(|a| a == d))
}

/// The tenant roles of a provisioned member: the mapped roles of its upstream groups, else
/// `User`.
pub fn mapped_roles(p: &ProviderRow, id: &UpstreamIdentity) -> Vec<String> {
    let mut roles: Vec<String> = id
        .groups
        .iter()
        .filter_map(|g| p.sign_in.group_roles.get(g))
        .flatten()
        .filter(|r| *r != crate::tenants::ROLE_OWNER)
        .cloned()
        .collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        roles.push(crate::tenants::ROLE_USER.to_owned());
    }
    roles
}

/// The enabled provider of `providers` that claims the domain of `email` (home-realm discovery).
pub fn home_realm<'a>(providers: &'a [ProviderRow], email: &str) -> Option<&'a ProviderRow> {
    let domain = email.trim().rsplit_once('@')?.1.to_lowercase();
    providers
        .iter()
        .find(|p| p.enabled && p.sign_in.home_domains.contains(&domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderRow {
        ProviderRow {
            id: "p".into(),
            tenant_id: "t".into(),
            name: "P".into(),
            issuer: "https://op.example".into(),
            client_id: "c".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            enabled: true,
            sign_in: Default::default(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn claims_are_read_as_mapped() {
        let mut p = provider();
        p.sign_in.email_claim = Some("mail".into());
        p.sign_in
            .group_roles
            .insert("staff".into(), vec!["Admin".into(), "Owner".into()]);
        let claims = serde_json::json!({"mail": "A@Example.COM", "email": "x@y.z",
            "email_verified": true, "name": "A", "groups": ["staff", "other"]});
        let id = read_identity(&p, "i".into(), "s".into(), &claims);
        assert_eq!(id.email.as_deref(), Some("a@example.com"));
        assert!(id.email_verified);
        assert_eq!(mapped_roles(&p, &id), vec!["Admin".to_owned()]);
        let plain = read_identity(&provider(), "i".into(), "s".into(), &serde_json::json!({}));
        assert_eq!(mapped_roles(&p, &plain), vec!["User".to_owned()]);
        assert!(!plain.email_verified);
    }

    #[test]
    fn domains_and_home_realm() {
        let mut p = provider();
        let id = read_identity(
            &p,
            "i".into(),
            "s".into(),
            &serde_json::json!({"email": "a@corp.example"}),
        );
        assert!(domain_allowed(&p, &id));
        p.sign_in.allowed_domains = vec!["corp.example".into()];
        // An address the provider did not verify, or whose verification is not trusted,
        // proves no domain.
        assert!(!domain_allowed(&p, &id));
        let verified = serde_json::json!({"email": "a@corp.example", "email_verified": true});
        let id = read_identity(&p, "i".into(), "s".into(), &verified);
        assert!(!domain_allowed(&p, &id));
        assert_eq!(trusted_email(&p, &id), None);
        p.sign_in.trust_email = true;
        assert!(domain_allowed(&p, &id));
        assert_eq!(trusted_email(&p, &id), Some("a@corp.example"));
        p.sign_in.allowed_domains = vec!["other.example".into()];
        assert!(!domain_allowed(&p, &id));
        p.sign_in.home_domains = vec!["corp.example".into()];
        let list = vec![p];
        assert!(home_realm(&list, "B@Corp.Example").is_some());
        assert!(home_realm(&list, "b@evil.example").is_none());
        assert!(home_realm(&list, "no-at-sign").is_none());
    }
}
