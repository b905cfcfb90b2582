//! `POST /connect/token` (RFC 6749 §3.2) and client authentication (§2.3).
//!
//! The body is read by hand rather than with axum's `Form`, so that every failure — wrong
//! content type, oversized or non-UTF-8 body, a repeated parameter (§3.2: parameters MUST NOT
//! be included more than once) — answers an RFC 6749 error, never axum's plain-text rejection.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use tansu_shared::auth::{AccessClaims, Audience};

use super::OAuthError;
use super::params::{Params, form_urldecode, printable, read_form};
use crate::AppState;
use crate::clients::{
    self, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE, GRANTS_IMPLEMENTED,
};
use crate::http::bearer::IssuedClaims;
use crate::keys::SigningAlg;
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::store::now_ms;

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// The client credentials a token-endpoint request presents (RFC 6749 §2.3), read before any
/// lookup: a signed client assertion, or a client id with the secret sent (if any) and how.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// `client_assertion` (`private_key_jwt`, see [`super::assertion`]).
    Assertion,
    Client {
        id: String,
        secret: Option<String>,
        method: AuthMethod,
    },
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::Assertion => f.write_str("Assertion"),
            Presented::Client { id, secret, method } => f
                .debug_struct("Client")
                .field("id", id)
                .field("secret", &secret.as_ref().map(|_| "[redacted]"))
                .field("method", method)
                .finish(),
        }
    }
}

/// Reads the client authentication of a token-endpoint request (RFC 6749 §2.3.1): HTTP Basic
/// with form-urlencoded id and secret, or `client_id`/`client_secret` in the body, or only
/// `client_id` for a public client, or a signed client assertion. Using two methods at once is
/// refused (§2.3), and so is a body `client_id` other than the Basic one.
pub fn presented_client(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let basic = basic_credentials(headers)?;
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if basic.is_some() || params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not several",
            ));
        }
        return Ok(Presented::Assertion);
    }
    match basic {
        Some((id, secret)) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not several",
                ));
            }
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            Ok(Presented::Client {
                id,
                secret: Some(secret),
                method: AuthMethod::ClientSecretBasic,
            })
        }
        None => {
            let Some(id) = params.get("client_id") else {
                return Err(OAuthError::invalid_client("client authentication required"));
            };
            let secret = params.get("client_secret").map(str::to_owned);
            let method = if secret.is_some() {
                AuthMethod::ClientSecretPost
            } else {
                AuthMethod::None
            };
            Ok(Presented::Client {
                id: id.to_owned(),
                secret,
                method,
            })
        }
    }
}

/// Authenticates the client of a token-endpoint request by what it presents
/// ([`presented_client`]): a known client, its secret (or, for a public client, none), or a
/// valid client assertion.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(ClientRow, AuthMethod), OAuthError> {
    let (client_id, secret, method) = match presented_client(headers, params)? {
        Presented::Assertion => {
            let client = super::assertion::authenticate(state, params).await?;
            return Ok((client, AuthMethod::PrivateKeyJwt));
        }
        Presented::Client { id, secret, method } => (id, secret, method),
    };
    let client = state
        .client(&client_id)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    let Some(client) = client else {
        // Spend the same work as a real comparison, so unknown ids are not faster.
        let _ = clients::secret_matches(secret.as_deref().unwrap_or(""), &[0u8; 32]);
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    // The request span's `client_id` (an identifier, never the secret).
    tracing::Span::current().record("client_id", client.client_id.as_str());
    match (&client.secret_hash, secret.as_deref()) {
        (Some(hash), Some(secret)) if client.confidential => {
            if !clients::secret_matches(secret, hash) {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
        }
        (None, None) if !client.confidential => {}
        _ => return Err(OAuthError::invalid_client("client authentication failed")),
    }
    Ok((client, method))
}

/// `Authorization: Basic` credentials, each part form-urldecoded (RFC 6749 §2.3.1).
/// `Ok(None)` when there is no Authorization header or it is another scheme.
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("several Authorization headers"));
    }
    let malformed = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "client authentication must use the Basic scheme",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_urldecode(id).ok_or_else(malformed)?;
    let secret = form_urldecode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

/// The successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Token exchange (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// The access token's `jti` and `exp` (not sent).
    #[serde(skip)]
    pub jti: String,
    #[serde(skip)]
    pub exp: i64,
}

/// Who an access token is for, beyond the client.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// `sub`; the client id for client_credentials.
    pub subject: String,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub family_id: Option<String>,
    /// The tenant policy's access token lifetime (the tighter of it and the client's applies).
    pub tenant_lifetime_secs: Option<i64>,
    /// The acting party (token exchange, RFC 8693).
    pub act: Option<tansu_shared::auth::Act>,
    /// The DPoP key the access token is bound to (RFC 9449 §6): `cnf.jkt`, `token_type` DPoP.
    pub jkt: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// `POST /connect/token`
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let mut origin = None;
    let mut response = match token_inner(&state, &headers, body, &mut origin).await {
        Ok((grant, r)) => {
            metrics::counter!("identity_tokens_issued_total", "grant" => grant).increment(1);
            r.into_response()
        }
        Err(e) => {
            metrics::counter!("identity_token_errors_total", "error" => e.error).increment(1);
            e.into_response()
        }
    };
    super::origin::allow(response.headers_mut(), origin);
    response
}

/// `origin`: set to the browser origin the authenticated client allows, when the request is
/// a cross-origin one (see [`super::origin`]).
async fn token_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    origin: &mut Option<HeaderValue>,
) -> Result<(&'static str, TokenResponse), OAuthError> {
    let params = read_form(headers, body).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    if !GRANTS_IMPLEMENTED.contains(&grant_type) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {} is not supported",
            printable(grant_type)
        )));
    }
    let (client, _method) = authenticate_client(state, headers, &params).await?;
    *origin = super::origin::check(state, headers, &client)?;
    let jkt = super::dpop::token_endpoint_proof(state, headers).await?;
    let jkt = jkt.as_deref();
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::unauthorized_client(
            "the client may not use this grant type",
        ));
    }
    client_tenant_active(state, &client).await?;
    match grant_type {
        GRANT_CLIENT_CREDENTIALS => client_credentials(state, &client, &params, jkt)
            .await
            .map(|r| (GRANT_CLIENT_CREDENTIALS, r)),
        GRANT_AUTHORIZATION_CODE => super::code::authorization_code(state, &client, &params, jkt)
            .await
            .map(|r| (GRANT_AUTHORIZATION_CODE, r)),
        GRANT_REFRESH_TOKEN => super::code::refresh_token(state, &client, &params, jkt)
            .await
            .map(|r| (GRANT_REFRESH_TOKEN, r)),
        GRANT_TOKEN_EXCHANGE => super::exchange::token_exchange(state, &client, &params)
            .await
            .map(|r| ("token_exchange", r)),
        _ => Err(OAuthError::unsupported_grant_type(
            "grant_type is not supported",
        )),
    }
}

/// A client that belongs to a tenant gets nothing while the tenant is not active (a status
/// changed through another replica is seen within the cache bound, `client_cache_ms`).
async fn client_tenant_active(state: &AppState, client: &ClientRow) -> Result<(), OAuthError> {
    let Some(tid) = &client.tenant_id else {
        return Ok(());
    };
    let status = match state.tenant_status.get(tid) {
        Some(status) => status,
        None => {
            let status = (state.store.tenant_by_id(tid).await)
                .map_err(|e| OAuthError::server_error(&e))?
                .map(|t| t.status);
            state.tenant_status.put(tid.clone(), status.clone());
            status
        }
    };
    if status.is_some_and(|s| s == crate::tenants::STATUS_ACTIVE) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(
            "the client's tenant is not active",
        ))
    }
}

/// RFC 6749 §4.4: a token for the client itself; only confidential clients (§4.4 says MUST).
async fn client_credentials(
    state: &AppState,
    client: &ClientRow,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if !client.confidential {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a confidential client",
        ));
    }
    let granted = granted_scopes(client, params.get("scope"), state.config.dev_mode)?;
    issue_access_token(
        state,
        client,
        Grant {
            subject: client.client_id.clone(),
            tenant_id: client.tenant_id.clone(),
            scopes: granted,
            jkt: jkt.map(str::to_owned),
            ..Grant::default()
        },
    )
    .await
}

/// The scopes granted for a request: the requested ones when the client may have each of them,
/// else `invalid_scope` (§5.2); when none are requested, everything the client may have (§3.3).
pub fn granted_scopes(
    client: &ClientRow,
    requested: Option<&str>,
    dev_mode: bool,
) -> Result<Vec<String>, OAuthError> {
    let allowed = |s: &str| scopes::is_known(s, dev_mode) && client.scopes.iter().any(|c| c == s);
    match requested {
        None => Ok(client
            .scopes
            .iter()
            .filter(|s| allowed(s))
            .cloned()
            .collect()),
        Some(value) => {
            let requested =
                scopes::parse(value).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if let Some(bad) = requested.iter().find(|s| !allowed(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {} is not allowed for this client",
                    printable(bad)
                )));
            }
            Ok(requested)
        }
    }
}

/// Signs an RFC 9068 access token with the client's algorithm and lifetime.
pub async fn issue_access_token(
    state: &AppState,
    client: &ClientRow,
    grant: Grant,
) -> Result<TokenResponse, OAuthError> {
    let now = now_ms() / 1000;
    let lifetime = match (
        client.access_token_lifetime_secs,
        grant.tenant_lifetime_secs,
    ) {
        (Some(c), Some(t)) => c.min(t),
        (Some(l), None) | (None, Some(l)) => l,
        (None, None) => i64::try_from(state.config.access_token_lifetime_secs).unwrap_or(3600),
    };
    let mut aud: Vec<String> = scopes::audiences(grant.scopes.iter().map(String::as_str))
        .into_iter()
        .map(str::to_owned)
        .collect();
    if aud.is_empty() {
        // No resource-server scope (e.g. only `openid`): the token is for this issuer's own
        // endpoints (userinfo).
        aud.push(state.config.issuer.clone());
    }
    let aud = if aud.len() == 1 {
        Audience::One(aud.remove(0))
    } else {
        Audience::Many(aud)
    };
    let scope = grant.scopes.join(" ");
    let token_type = if grant.jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    };
    let jti = tansu_shared::ids::uuid_v7().to_string();
    let claims = IssuedClaims {
        claims: AccessClaims {
            iss: state.config.issuer.clone(),
            sub: grant.subject,
            aud,
            exp: now + lifetime,
            iat: now,
            nbf: Some(now),
            jti: jti.clone(),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            tid: grant.tenant_id,
            roles: grant.roles,
            act: grant.act,
            cnf: grant
                .jkt
                .map(|jkt| tansu_shared::auth::Confirmation { jkt }),
        },
        fid: grant.family_id,
    };
    let access_token = state
        .keys
        .sign_jws(client_alg(state, client), "at+jwt", &claims)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    state.stats.issued(claims.claims.tid.as_deref());
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in: lifetime,
        scope,
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
        jti,
        exp: now + lifetime,
    })
}

/// The client's signing algorithm (the configured default when it has none valid).
pub fn client_alg(state: &AppState, client: &ClientRow) -> SigningAlg {
    SigningAlg::parse(&client.signing_alg).unwrap_or(state.config.default_alg())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_urldecoding() {
        assert_eq!(form_urldecode("a%3Ab+c").unwrap(), "a:b c");
        assert!(form_urldecode("%zz").is_none());
        assert!(form_urldecode("%4").is_none());
        assert!(form_urldecode("%ff").is_none());
    }

    #[test]
    fn repeated_and_empty_parameters() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=&b=2").unwrap();
        assert!(p.get("a").is_none());
        assert_eq!(p.get("b"), Some("2"));
        assert!(Params::parse(b"\xff=1").is_err());
    }
}
