//! `POST /connect/introspect` (RFC 7662) and `POST /connect/revocation` (RFC 7009).
//!
//! Both need an authenticated client. Introspection is for resource servers: only confidential
//! clients may ask, and anything that is not an active token of this issuer — malformed,
//! expired, signed by an unknown or removed key, revoked — is `{"active": false}` and nothing
//! else, so the answer never says why. Revocation takes any token: unknown or invalid tokens
//! answer 200 (RFC 7009 §2.2), a token of another client is refused.
//!
//! Access tokens are self-contained JWTs, so revoking one records its `jti` until it expires:
//! introspection then answers inactive (resource servers that verify locally keep accepting it
//! until `exp`; access token lifetimes are short for that reason). Revoking a refresh token
//! revokes its whole family, and with it (for introspection and userinfo) every access token
//! issued under the family (their `fid` claim).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OAuthError;
use super::params::read_form;
use super::token::{AuthMethod, authenticate_client};
use crate::AppState;
use crate::store::now_ms;

fn no_store(value: serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /connect/introspect`
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match introspect_inner(&state, &headers, body).await {
        Ok(v) => no_store(v),
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Value, OAuthError> {
    let params = read_form(headers, body).await?;
    let (client, method) = authenticate_client(state, headers, &params).await?;
    // Never from a browser page: introspection needs a confidential client.
    super::origin::check(state, headers, &client)?;
    if method == AuthMethod::None {
        return Err(OAuthError::invalid_client(
            "introspection needs an authenticated (confidential) client",
        ));
    }
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let Ok(issued) = state.verify_issued_token(token, None).await else {
        return refresh_token_info(state, token, &client).await;
    };
    // A tenant's client learns about its own tenant's tokens only (RFC 7662 §2.2: a token
    // the caller may not see is answered as inactive); platform clients about every token.
    let visible = client
        .tenant_id
        .as_ref()
        .is_none_or(|own| issued.claims.tid.as_ref() == Some(own));
    if !visible || !state.token_active(&issued).await {
        return Ok(inactive);
    }
    let claims = issued.claims;
    let mut v = json!({
        "active": true,
        // RFC 9449 §6.2: a DPoP-bound token says so, and names its key.
        "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
        "scope": claims.scope,
        "client_id": claims.client_id,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(nbf) = claims.nbf {
            obj.insert("nbf".into(), nbf.into());
        }
        if let Some(tid) = claims.tid {
            obj.insert("tid".into(), tid.into());
        }
        if !claims.roles.is_empty() {
            obj.insert("roles".into(), claims.roles.into());
        }
        if let Some(cnf) = claims.cnf {
            obj.insert("cnf".into(), json!({ "jkt": cnf.jkt }));
        }
    }
    Ok(v)
}

/// Introspection of a refresh token: active while it is its family's head and the family is
/// alive; a tenant's client sees only its own refresh tokens.
async fn refresh_token_info(
    state: &AppState,
    token: &str,
    client: &crate::store::clients::ClientRow,
) -> Result<serde_json::Value, OAuthError> {
    let inactive = json!({ "active": false });
    if token.len() > 256 {
        return Ok(inactive);
    }
    let found = state
        .store
        .refresh_token(&crate::crypto::sha256(token.as_bytes()))
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    match found {
        Some(t)
            if t.generation == t.family.generation
                && (client.tenant_id.is_none() || t.family.client_id == client.client_id)
                && t.family.revoked_at.is_none()
                && t.family.expires_at > now_ms() =>
        {
            Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": t.family.scope,
                "client_id": t.family.client_id,
                "sub": t.family.user_id,
                "iss": state.config.issuer,
                "exp": t.family.expires_at / 1000,
                "iat": t.family.created_at / 1000,
            }))
        }
        _ => Ok(inactive),
    }
}

/// `POST /connect/revocation`
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let mut origin = None;
    let mut response = match revoke_inner(&state, &headers, body, &mut origin).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    };
    super::origin::allow(response.headers_mut(), origin);
    response
}

async fn revoke_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    origin: &mut Option<HeaderValue>,
) -> Result<(), OAuthError> {
    let params = read_form(headers, body).await?;
    let (client, _method) = authenticate_client(state, headers, &params).await?;
    *origin = super::origin::check(state, headers, &client)?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    // `token_type_hint` is optional and only a hint (§2.1); every type we issue is tried.
    // A refresh token revokes its whole family (and so the access tokens issued under it).
    if token.len() <= 256 {
        let found = state
            .store
            .refresh_token(&crate::crypto::sha256(token.as_bytes()))
            .await
            .map_err(|e| OAuthError::server_error(&e))?;
        if let Some(t) = found {
            if t.family.client_id != client.client_id {
                return Err(OAuthError::unauthorized_client(
                    "the token was not issued to this client",
                ));
            }
            state
                .store
                .revoke_family(&t.family.id, now_ms())
                .await
                .map_err(|e| OAuthError::server_error(&e))?;
            tracing::info!(client_id = %client.client_id, family = %t.family.id, "refresh token family revoked");
            return Ok(());
        }
    }
    let Ok(claims) = state.verify_access_token(token, None).await else {
        return Ok(());
    };
    if claims.client_id != client.client_id {
        return Err(OAuthError::unauthorized_client(
            "the token was not issued to this client",
        ));
    }
    state
        .store
        .revoke_token(&claims.jti, &claims.client_id, claims.exp * 1000, now_ms())
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    tracing::info!(client_id = %client.client_id, jti = %claims.jti, "access token revoked");
    Ok(())
}
