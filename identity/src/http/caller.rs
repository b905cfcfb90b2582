//! [`Caller`]: the authenticated caller of identity's APIs, one extractor for all of them.
//!
//! The token is verified in process against the key ring rather than with a
//! `tansu_shared::auth::Verifier` pointed at our own JWKS over HTTP: the ring is the JWKS'
//! source of truth, so there is no self-request, no start-up ordering problem, no cache lag
//! after a rotation — and the same strict checks as the shared verifier (typ `at+jwt`, kid in
//! the ring, alg bound to the key, iss, aud, exp/nbf with 30 s leeway). Every caller's token
//! must also be active (not revoked, its refresh family alive), and a tenant caller's tenant
//! active. A member's rank, and the privileged scopes their roles grant, are read from the
//! membership and the tenant's roles now, not from the token, so a demotion, a removal or a
//! role that stops naming a scope takes effect at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tansu_shared::Problem;
use tansu_shared::auth::{AccessClaims, AuthError, credential, dpop};

use super::policy::{self, Action, Actor, Denied, Rank};
use crate::AppState;
use crate::events::Meta;
use crate::scopes::{ADMIN_FULL, IDENTITY_AUDIENCE, PRIVILEGED};
use crate::tenants::STATUS_ACTIVE;

/// Who is calling, with the verified token and the request's metadata for events.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    pub claims: AccessClaims,
    pub meta: Meta,
}

impl Caller {
    /// Asks the policy; a refusal is the response to send.
    #[allow(clippy::result_large_err)]
    pub fn may(&self, action: &Action<'_>) -> Result<(), Problem> {
        policy::decide(&self.actor, &|s| self.claims.has_scope(s), action).map_err(denied)
    }

    pub fn is_platform(&self) -> bool {
        matches!(self.actor, Actor::Platform { .. })
    }

    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// The actor of an event: `user:<sub>`, or `client:<client_id>` for a client's own token.
    pub fn event_actor(&self) -> String {
        actor_of(&self.claims)
    }

    /// The records (security events, statistics, a chain) a request may read: `requested` is a
    /// tenant id, `platform`, or absent — the caller's own tenant, or for a platform
    /// administrator every tenant (`None`). `Some("")` is the platform's own records.
    #[allow(clippy::result_large_err)]
    pub fn records_scope(&self, requested: Option<&str>) -> Result<Option<String>, Problem> {
        match (requested, self.actor.tenant()) {
            (Some("platform"), _) => {
                self.may(&Action::ReadPlatformRecords)?;
                Ok(Some(String::new()))
            }
            (Some(t), _) => {
                self.may(&Action::ReadRecords(t))?;
                Ok(Some(t.to_owned()))
            }
            (None, Some(own)) => {
                self.may(&Action::ReadRecords(own))?;
                Ok(Some(own.to_owned()))
            }
            (None, None) => {
                self.may(&Action::ReadPlatformRecords)?;
                Ok(None)
            }
        }
    }
}

/// The actor of an event: `user:<sub>`, or `client:<client_id>` for a client's own token.
pub fn actor_of(claims: &AccessClaims) -> String {
    if claims.sub == claims.client_id {
        format!("client:{}", claims.sub)
    } else {
        format!("user:{}", claims.sub)
    }
}

/// The answer to a refusal: 404 for what the caller must not know exists, RFC 6750 for
/// missing credentials and scopes, 403 problem+json otherwise.
pub fn denied(d: Denied) -> Problem {
    match d {
        Denied::Unauthenticated => AuthError::MissingToken.to_problem(),
        Denied::NotFound => Problem::not_found(),
        Denied::Scope(s) => AuthError::InsufficientScope(s.into()).to_problem(),
        Denied::Forbidden(why) => Problem::forbidden(why),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let credential = credential(&parts.headers)?.ok_or(AuthError::MissingToken)?;
        let issued = state
            .verify_issued_token(credential.token(), Some(IDENTITY_AUDIENCE))
            .await?;
        let url = dpop::request_url(parts);
        state
            .verifier
            .check_binding(
                &issued.claims,
                credential,
                parts.method.as_str(),
                &url,
                &parts.headers,
            )
            .await?;
        if !state.token_active(&issued).await {
            return Err(AuthError::InvalidToken("token revoked"));
        }
        let claims = issued.claims;
        let actor = actor(state, &claims).await?;
        Ok(Caller {
            actor,
            claims,
            meta: Meta::from_headers(&parts.headers),
        })
    }
}

/// The actor a verified, active token stands for.
async fn actor(state: &AppState, claims: &AccessClaims) -> Result<Actor, AuthError> {
    let client_itself = claims.sub == claims.client_id;
    if state.config.dev_mode && claims.has_scope(ADMIN_FULL) {
        return Ok(Actor::Platform {
            service: client_itself,
        });
    }
    let Some(tid) = &claims.tid else {
        return Ok(if client_itself {
            Actor::PlatformClient
        } else {
            Actor::PlatformUser
        });
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "reading a caller's tenant failed");
        AuthError::KeysUnavailable
    };
    let active = state
        .store
        .tenant_by_id(tid)
        .await
        .map_err(|e| unavailable(&e))?
        .is_some_and(|t| t.status == STATUS_ACTIVE);
    if !active {
        return Err(AuthError::InvalidToken("the tenant is not active"));
    }
    if client_itself {
        return Ok(Actor::TenantClient { tid: tid.clone() });
    }
    let membership = state
        .store
        .membership(&claims.sub, tid)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or(AuthError::InvalidToken("no longer a member of the tenant"))?;
    let grant = crate::roles::allowed_scopes(&state.store, tid, &membership.roles)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(Actor::Member {
        tid: tid.clone(),
        user_id: claims.sub.clone(),
        rank: Rank::of(&membership.roles),
        privileged: PRIVILEGED
            .iter()
            .copied()
            .filter(|s| grant.allows(s))
            .collect(),
    })
}
