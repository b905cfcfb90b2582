//! Token exchange (RFC 8693) for service-to-service calls on behalf of a user.
//!
//! A backend service that received a user's access token (for itself) and must call another
//! service for that user asks the token endpoint for a token for the other service:
//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token` (the user's
//! access token), `subject_token_type=…:access_token`, `audience` (`tansu.db`, …) and optionally
//! `scope`. The service authenticates as itself (a confidential client), and is the actor.
//!
//! What is issued, and why it is safe:
//! - the same user (`sub`) and tenant (`tid`), the member's roles; `act: {"sub": <the service>}` (nested
//!   when the subject token had an actor already), `client_id` the service;
//! - scopes only narrowed: each asked scope must be in the subject token and be for the asked
//!   audience (`invalid_scope` otherwise); none asked: every scope of the subject token for it;
//! - it lives no longer than the subject token, and belongs to its refresh family: revoking
//!   the user's family revokes the exchanged tokens too;
//! - who may exchange for which audience is the tenant's decision (`policy.token_exchange`:
//!   client → audiences), asked through the one policy ([`crate::http::policy`],
//!   `Action::ExchangeToken`): a tenant's own service only, never for another tenant's user (the
//!   token then answers `invalid_grant` as if it were not valid), never a platform client;
//! - the subject token must be this issuer's, valid, active (not revoked) and a user's (a
//!   client-credentials token has no user to act for);
//! - what the token says is checked again as it is now: the tenant still active, the user
//!   still enabled and still a member of it; the roles and scopes issued are the member's
//!   current ones (never more than the subject token's). A removed member's or a disabled
//!   user's token, though still valid until it expires, is not exchanged (`invalid_grant`);
//!   neither is a token of a tenant that is not active (whose services the token endpoint
//!   refuses anyway: `unauthorized_client`, through the tenant-status cache).

use tansu_shared::auth::Act;

use super::OAuthError;
use super::params::{Params, printable};
use super::token::{Grant, TokenResponse, issue_access_token};
use crate::AppState;
use crate::http::policy::{Action, Actor, Denied, decide};
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::store::now_ms;

pub use crate::clients::GRANT_TOKEN_EXCHANGE;
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The RFC 8693 §2.2.2 error for an audience the client may not have a token for.
fn invalid_target(d: &'static str) -> OAuthError {
    OAuthError {
        status: axum::http::StatusCode::BAD_REQUEST,
        error: "invalid_target",
        description: d.into(),
        dpop_nonce: None,
    }
}

pub async fn token_exchange(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::unauthorized_client(
            "token exchange needs a confidential client (the service that acts)",
        ));
    }
    let subject = params
        .get("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    if params.get("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(
            "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
        ));
    }
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not supported: the authenticated client is the actor",
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::invalid_request(
            "only access tokens are issued by exchange",
        ));
    }
    if params.get("resource").is_some() {
        return Err(invalid_target(
            "name the service with audience, not resource",
        ));
    }
    let audience = params
        .get("audience")
        .ok_or_else(|| OAuthError::invalid_request("audience is required"))?;

    let not_valid = || OAuthError::invalid_grant("the subject token is not valid");
    let issued = state
        .verify_issued_token(subject, None)
        .await
        .map_err(|_| not_valid())?;
    if !state.token_active(&issued).await {
        return Err(not_valid());
    }
    let claims = &issued.claims;
    let Some(tid) = claims.tid.as_deref() else {
        return Err(OAuthError::invalid_grant(
            "the subject token is not a tenant user's",
        ));
    };
    if claims.sub == claims.client_id {
        return Err(OAuthError::invalid_grant(
            "the subject token is a client's own, with no user to act for",
        ));
    }

    // Who may exchange for which audience: the tenant's policy, decided by the one policy.
    let tenant = state
        .store
        .tenant_by_id(tid)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .filter(|t| t.status == crate::tenants::STATUS_ACTIVE)
        .ok_or_else(not_valid)?;
    let policy = crate::tenants::policy_of(&tenant);
    let permitted = policy
        .token_exchange
        .iter()
        .any(|r| r.client_id == client.client_id && r.audiences.iter().any(|a| a == audience));
    let actor = match &client.tenant_id {
        Some(own) => Actor::TenantClient { tid: own.clone() },
        None => Actor::PlatformClient,
    };
    decide(
        &actor,
        &|_| false,
        &Action::ExchangeToken { tid, permitted },
    )
    .map_err(|d| match d {
        // Another tenant's user: as if the token were not valid at all.
        Denied::NotFound => not_valid(),
        _ => {
            invalid_target("the tenant does not let this client exchange tokens for this audience")
        }
    })?;

    // The user as they are now, not as the token says: still active and still a member of
    // the tenant, with the roles they hold now (a removed or disabled user's token, valid
    // until it expires, is not turned into a new one).
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    if user.is_none_or(|u| u.disabled) {
        return Err(OAuthError::invalid_grant("the user is not active"));
    }
    let membership = state
        .store
        .membership(&claims.sub, tid)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .ok_or_else(|| OAuthError::invalid_grant("the user is not a member of the tenant"))?;
    let allowed = crate::roles::allowed_scopes(&state.store, tid, &membership.roles)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;

    // Scopes: only narrowed, only for the audience asked, and only what the member's roles
    // allow now.
    let held: Vec<&str> = claims
        .scopes()
        .filter(|s| scopes::audience_of(s) == Some(audience) && allowed.allows(s))
        .collect();
    let granted: Vec<String> = match params.get("scope") {
        None => held.iter().map(|s| (*s).to_owned()).collect(),
        Some(value) => {
            let asked =
                scopes::parse(value).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if let Some(bad) = asked.iter().find(|s| !held.contains(&s.as_str())) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {} is not in the subject token for this audience",
                    printable(bad)
                )));
            }
            asked
        }
    };
    if granted.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the subject token has no scope for this audience",
        ));
    }

    let remaining = claims.exp - now_ms() / 1000;
    if remaining <= 0 {
        return Err(not_valid());
    }
    let act = Act {
        sub: client.client_id.clone(),
        act: claims.act.clone().map(Box::new),
    };
    tracing::info!(client_id = %client.client_id, tenant = %tid, audience = %audience, "token exchanged");
    let mut response = issue_access_token(
        state,
        client,
        Grant {
            subject: claims.sub.clone(),
            tenant_id: Some(tid.to_owned()),
            roles: membership.roles,
            scopes: granted,
            family_id: issued.fid.clone(),
            tenant_lifetime_secs: Some(remaining),
            act: Some(act),
            jkt: None,
        },
    )
    .await?;
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    Ok(response)
}
