//! `GET|POST /connect/userinfo` (OIDC Core §5.3): claims about the user of an access token.
//!
//! The access token must be ours, carry `openid`, be active (not revoked, family alive) and
//! belong to a user; failures are RFC 6750 bearer errors.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use tansu_shared::auth::{AuthError, credential};

use crate::AppState;

pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match userinfo_inner(&state, &method, &headers).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn userinfo_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<serde_json::Value, AuthError> {
    let credential = credential(headers)?.ok_or(AuthError::MissingToken)?;
    let issued = state.verify_issued_token(credential.token(), None).await?;
    // A DPoP-bound token only with a proof for this endpoint (RFC 9449 §7).
    let url = format!("{}connect/userinfo", state.config.issuer);
    state
        .verifier
        .check_binding(&issued.claims, credential, method.as_str(), &url, headers)
        .await?;
    if !state.token_active(&issued).await {
        return Err(AuthError::InvalidToken("token revoked"));
    }
    let claims = &issued.claims;
    if !claims.has_scope("openid") {
        return Err(AuthError::InsufficientScope("openid".into()));
    }
    let user = match state.store.user_by_id(&claims.sub).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return Err(AuthError::InvalidToken("no such user")),
        Err(e) => {
            tracing::error!(error = %e, "userinfo lookup failed");
            return Err(AuthError::KeysUnavailable);
        }
    };
    // The roles of the membership in the token's tenant, read now (a platform identity's
    // token has no tenant and no tenant roles).
    let roles = match &claims.tid {
        Some(tid) => match state.store.membership(&user.id, tid).await {
            Ok(Some(m)) => m.roles,
            Ok(None) => return Err(AuthError::InvalidToken("no longer a member of the tenant")),
            Err(e) => {
                tracing::error!(error = %e, "userinfo lookup failed");
                return Err(AuthError::KeysUnavailable);
            }
        },
        None => Vec::new(),
    };
    let mut v = serde_json::json!({ "sub": user.id });
    if let Some(obj) = v.as_object_mut() {
        if claims.has_scope("email") {
            obj.insert("email".into(), user.email.clone().into());
            obj.insert("email_verified".into(), false.into());
        }
        if claims.has_scope("profile") {
            obj.insert("name".into(), user.name.clone().into());
        }
        if let Some(t) = &claims.tid {
            obj.insert("tid".into(), t.clone().into());
        }
        if claims.has_scope("roles") {
            obj.insert("roles".into(), roles.into());
        }
    }
    Ok(v)
}
