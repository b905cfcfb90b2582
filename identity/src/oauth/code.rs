//! The `authorization_code` (with PKCE) and `refresh_token` grants, and ID tokens.
//!
//! Codes are single-use: the first redemption marks the code used in one conditional update;
//! a second redemption is an attack or a bug, and revokes what the first one issued (the refresh
//! token family, and the access token for introspection), RFC 6749 §4.1.2 / RFC 9700 §4.5.
//!
//! Refresh tokens are opaque 256-bit values stored as SHA-256, rotated on every use within a
//! family whose `generation` only grows (see [`crate::store::grants`]). Presenting a superseded
//! token within `refresh_reuse_grace_secs` of its rotation (a client retrying after losing the
//! response) is refused without consequence; later it is reuse, and revokes the family, so
//! the newest token — possibly held by an attacker — stops working too.

use serde::Serialize;

use super::OAuthError;
use super::params::Params;
use super::token::{Grant, TokenResponse, client_alg, issue_access_token};
use crate::AppState;
use crate::clients::GRANT_REFRESH_TOKEN;
use crate::crypto::{self, b64url};
use crate::keys::SigningAlg;
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::store::grants::FamilyRow;
use crate::store::users::UserRow;
use crate::store::{new_id, now_ms};

/// OIDC Core §2 ID token claims.
#[derive(Debug, Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    sid: &'a str,
    amr: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [String]>,
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash of the
/// ID token's algorithm (SHA-256 for RS256/ES256; SHA-512 for EdDSA with Ed25519).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let digest = match alg {
        SigningAlg::EdDSA => {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, access_token.as_bytes())
        }
        _ => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes()),
    };
    let bytes = digest.as_ref();
    b64url(&bytes[..bytes.len() / 2])
}

struct Subject<'a> {
    user: &'a UserRow,
    session_id: &'a str,
    auth_time_ms: i64,
    nonce: Option<&'a str>,
    /// The tenant the session signed in for and the user's roles there.
    tenant: TenantContext,
    /// The session's authentication methods (RFC 8176).
    amr: Vec<String>,
}

/// `tid` and `roles` of a user's tokens.
#[derive(Debug, Clone, Default)]
pub struct TenantContext {
    pub tid: Option<String>,
    pub roles: Vec<String>,
    /// The tenant's policy (lifetimes), when the session is for a tenant.
    pub policy: Option<crate::tenants::TenantPolicy>,
    /// What the member's roles allow (see [`crate::roles`]).
    pub allowed_scopes: crate::roles::RoleGrant,
}

/// The tenant context of a grant: the session's tenant, which must still be active and
/// still have the user as a member (roles are read now, so role changes take effect at the
/// next token); a session without a tenant is the user's platform identity.
pub async fn tenant_context(
    state: &AppState,
    session_id: &str,
    user: &UserRow,
) -> Result<TenantContext, OAuthError> {
    let tid = state
        .store
        .session_tenant(session_id)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    let Some(tid) = tid else {
        return Ok(TenantContext {
            tid: user.tenant_id.clone(),
            roles: user.roles.clone(),
            policy: None,
            allowed_scopes: crate::roles::RoleGrant::unrestricted(),
        });
    };
    let tenant = state
        .store
        .tenant_by_id(&tid)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    let Some(tenant) = tenant.filter(|t| t.status == crate::tenants::STATUS_ACTIVE) else {
        return Err(OAuthError::invalid_grant("the tenant is not active"));
    };
    let membership = state
        .store
        .membership(&user.id, &tid)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .ok_or_else(|| OAuthError::invalid_grant("the user is not a member of the tenant"))?;
    let allowed_scopes = crate::roles::allowed_scopes(&state.store, &tid, &membership.roles)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    Ok(TenantContext {
        tid: Some(tid),
        roles: membership.roles,
        policy: Some(crate::tenants::policy_of(&tenant)),
        allowed_scopes,
    })
}

/// A client of a tenant serves only that tenant's users (a platform client, every tenant's).
fn serves(client: &ClientRow, tenant: &TenantContext) -> Result<(), OAuthError> {
    match &client.tenant_id {
        Some(own) if tenant.tid.as_ref() != Some(own) => Err(OAuthError::invalid_grant(
            "the client serves only the users of its own tenant",
        )),
        _ => Ok(()),
    }
}

async fn id_token(
    state: &AppState,
    client: &ClientRow,
    scopes: &[String],
    who: &Subject<'_>,
    access_token: &str,
) -> Result<String, OAuthError> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let now = now_ms() / 1000;
    let lifetime = i64::try_from(state.config.id_token_lifetime_secs).unwrap_or(3600);
    let alg = client_alg(state, client);
    let claims = IdClaims {
        iss: &state.config.issuer,
        sub: &who.user.id,
        aud: &client.client_id,
        exp: now + lifetime,
        iat: now,
        auth_time: who.auth_time_ms / 1000,
        nonce: who.nonce,
        at_hash: at_hash(access_token, alg),
        sid: who.session_id,
        amr: who.amr.iter().map(String::as_str).collect(),
        tid: who.tenant.tid.as_deref(),
        email: has("email").then_some(who.user.email.as_str()),
        email_verified: has("email").then_some(false),
        name: has("profile").then_some(who.user.name.as_str()),
        roles: has("roles").then_some(who.tenant.roles.as_slice()),
    };
    state
        .keys
        .sign_jws(alg, "JWT", &claims)
        .await
        .map_err(|e| OAuthError::server_error(&e))
}

/// Access token, ID token (with `openid`) and refresh token (when the client may refresh) for
/// a user; `family` continues an existing family, else a new one is started.
async fn tokens_for_user(
    state: &AppState,
    client: &ClientRow,
    scopes: Vec<String>,
    who: &Subject<'_>,
    family: Option<(String, String)>,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let scopes = scopes::for_user(&scopes, who.user.platform_admin);
    let now = now_ms();
    let (family_id, refresh_token) = match family {
        Some((id, token)) => (Some(id), Some(token)),
        None if client.grant_types.iter().any(|g| g == GRANT_REFRESH_TOKEN) => {
            let token = crypto::random_secret().map_err(|e| OAuthError::server_error(&e))?;
            let configured = state.config.refresh_token_lifetime_secs;
            let lifetime = who
                .tenant
                .policy
                .as_ref()
                .and_then(|p| p.refresh_token_lifetime_secs)
                .map_or(configured, |t| t.min(configured));
            let lifetime = i64::try_from(lifetime).unwrap_or(0);
            let family = FamilyRow {
                id: new_id(),
                client_id: client.client_id.clone(),
                user_id: who.user.id.clone(),
                session_id: who.session_id.to_owned(),
                scope: scopes.join(" "),
                auth_time: who.auth_time_ms,
                generation: 0,
                created_at: now,
                expires_at: now + lifetime * 1000,
                revoked_at: None,
                // A public client's refresh tokens are bound to its DPoP key (a confidential
                // client's are bound to its credentials already), RFC 9449 §5.
                dpop_jkt: jkt.filter(|_| !client.confidential).map(str::to_owned),
            };
            state
                .store
                .create_family(&family, &crypto::sha256(token.as_bytes()))
                .await
                .map_err(|e| OAuthError::server_error(&e))?;
            (Some(family.id), Some(token))
        }
        None => (None, None),
    };
    // The family keeps what was requested; each token gets what the roles allow now.
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|s| who.tenant.allowed_scopes.allows(s))
        .collect();
    let mut response = issue_access_token(
        state,
        client,
        Grant {
            subject: who.user.id.clone(),
            tenant_id: who.tenant.tid.clone(),
            roles: who.tenant.roles.clone(),
            scopes: scopes.clone(),
            family_id,
            tenant_lifetime_secs: who
                .tenant
                .policy
                .as_ref()
                .and_then(|p| p.access_token_lifetime_secs)
                .and_then(|l| i64::try_from(l).ok()),
            act: None,
            jkt: jkt.map(str::to_owned),
        },
    )
    .await?;
    if scopes.iter().any(|s| s == "openid") {
        response.id_token =
            Some(id_token(state, client, &scopes, who, &response.access_token).await?);
    }
    response.refresh_token = refresh_token;
    Ok(response)
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5–4.6.
pub async fn authorization_code(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params.get("code_verifier");
    if verifier.is_some_and(|v| !crate::oauth::code::is_pkce_value(v)) {
        return Err(OAuthError::invalid_grant("code_verifier is malformed"));
    }
    let hash = crypto::sha256(code.as_bytes());
    let now = now_ms();
    let store = &state.store;
    let row = store
        .code_by_hash(&hash)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid"))?;
    if row.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    if !store
        .consume_code(&hash, now)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
    {
        // A replay: revoke whatever the first redemption issued.
        if let Some(f) = &row.issued_family_id
            && let Err(e) = store.revoke_family(f, now).await
        {
            tracing::error!(error = %e, "revoking after a code replay failed");
        }
        if let (Some(jti), Some(exp)) = (&row.issued_access_jti, row.issued_access_exp)
            && let Err(e) = store.revoke_token(jti, &row.client_id, exp, now).await
        {
            tracing::error!(error = %e, "revoking after a code replay failed");
        }
        metrics::counter!("identity_code_replays_total").increment(1);
        tracing::warn!(client_id = %client.client_id, "authorization code replayed; its tokens were revoked");
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if row.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&row.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let computed = b64url(&crypto::sha256(verifier.as_bytes()));
            let equal = computed.len() == challenge.len()
                && bool::from(subtle::ConstantTimeEq::ct_eq(
                    computed.as_bytes(),
                    challenge.as_bytes(),
                ));
            if !equal {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "no code_challenge was sent for this code",
            ));
        }
        (None, None) => {}
    }
    let user = active_user(state, &row.user_id).await?;
    let scopes: Vec<String> = row
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let tenant = tenant_context(state, &row.session_id, &user).await?;
    serves(client, &tenant)?;
    let who = Subject {
        user: &user,
        session_id: &row.session_id,
        auth_time_ms: row.auth_time,
        nonce: row.nonce.as_deref(),
        tenant,
        amr: session_amr(state, &row.session_id).await?,
    };
    let response = tokens_for_user(state, client, scopes, &who, None, jkt).await?;
    let family_id = match &response.refresh_token {
        Some(t) => store
            .refresh_token(&crypto::sha256(t.as_bytes()))
            .await
            .ok()
            .flatten()
            .map(|r| r.family.id),
        None => None,
    };
    store
        .record_code_issue(
            &hash,
            family_id.as_deref(),
            &response.jti,
            response.exp * 1000,
        )
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    Ok(response)
}

/// The authentication methods of the session a grant came from (`pwd` when unknown).
async fn session_amr(state: &AppState, session_id: &str) -> Result<Vec<String>, OAuthError> {
    let amr = state
        .store
        .session_amr(session_id)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    let v: Vec<String> = amr
        .as_deref()
        .unwrap_or("pwd")
        .split(' ')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(if v.is_empty() { vec!["pwd".into()] } else { v })
}

async fn active_user(state: &AppState, user_id: &str) -> Result<UserRow, OAuthError> {
    match state.store.user_by_id(user_id).await {
        Ok(Some(u)) if !u.disabled => Ok(u),
        Ok(_) => Err(OAuthError::invalid_grant("the user is not active")),
        Err(e) => Err(OAuthError::server_error(&e)),
    }
}

/// RFC 6749 §6 with rotation and reuse detection.
pub async fn refresh_token(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let store = &state.store;
    let now = now_ms();
    let found = store
        .refresh_token(&crypto::sha256(presented.as_bytes()))
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    let family = &found.family;
    if family.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    }
    if let Some(bound) = &family.dpop_jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_dpop_proof(
            "the refresh token is bound to a DPoP key: prove possession of it",
        ));
    }
    if family.revoked_at.is_some() || family.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the refresh token is no longer valid",
        ));
    }
    if found.generation != family.generation {
        let grace = i64::try_from(state.config.refresh_reuse_grace_secs).unwrap_or(0) * 1000;
        let within_grace = found.superseded_at.is_some_and(|at| now - at <= grace);
        if !within_grace {
            store
                .revoke_family(&family.id, now)
                .await
                .map_err(|e| OAuthError::server_error(&e))?;
            metrics::counter!("identity_refresh_reuse_detected_total").increment(1);
            tracing::warn!(client_id = %client.client_id, family = %family.id, "refresh token reuse detected; family revoked");
            let tenant = state
                .store
                .session_tenant(&family.session_id)
                .await
                .ok()
                .flatten();
            crate::events::record(
                &state.events,
                &crate::events::Meta::default(),
                crate::events::Event {
                    tenant_id: tenant.as_deref(),
                    kind: crate::events::REFRESH_REUSE,
                    actor: format!("client:{}", client.client_id),
                    outcome: "denied",
                    details: serde_json::json!({ "family": family.id, "user": family.user_id }),
                },
            )
            .await;
        }
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    let family_scopes: Vec<String> = family
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let scopes = match params.get("scope") {
        None => family_scopes,
        Some(value) => {
            let requested =
                scopes::parse(value).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if requested.iter().any(|s| !family_scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(
                    "a refresh cannot widen the original grant",
                ));
            }
            requested
        }
    };
    let user = active_user(state, &family.user_id).await?;
    // Before rotating: a suspended tenant's refresh token stays unused (and unusable).
    let tenant = tenant_context(state, &family.session_id, &user).await?;
    serves(client, &tenant)?;
    let next = crypto::random_secret().map_err(|e| OAuthError::server_error(&e))?;
    let rotated = store
        .rotate_family(
            &family.id,
            found.generation,
            &crypto::sha256(next.as_bytes()),
            now,
        )
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    if !rotated {
        // A concurrent refresh with the same token won: this one is the late duplicate.
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    let who = Subject {
        user: &user,
        session_id: &family.session_id,
        auth_time_ms: family.auth_time,
        nonce: None,
        tenant,
        amr: session_amr(state, &family.session_id).await?,
    };
    tokens_for_user(
        state,
        client,
        scopes,
        &who,
        Some((family.id.clone(), next)),
        jkt,
    )
    .await
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core examples: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" →
        // at_hash "77QmUPtjPfzWtF2AnpK9RQ" (RS256).
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                SigningAlg::RS256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn pkce_syntax() {
        assert!(is_pkce_value(&"a".repeat(43)));
        assert!(!is_pkce_value(&"a".repeat(42)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }
}
