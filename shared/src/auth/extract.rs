//! axum extractors: a handler states in its signature what it requires.
//!
//! The verified token is cached in the request extensions, so `Principal`, `RequireScope<…>`
//! and `Tenant` in one handler verify the token once.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use uuid::Uuid;

use super::claims::AccessClaims;
use super::error::AuthError;
use super::verifier::Verifier;

/// The caller, proven by a verified access token.
#[derive(Debug, Clone)]
pub struct Principal(pub Arc<AccessClaims>);

impl std::ops::Deref for Principal {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.0
    }
}

/// A slot a layer puts into a request's extensions before the handler runs, which the
/// [`Principal`] extractor fills with the caller it verified: after the response the layer
/// knows whether a credential was verified in this request, and whose it was (see
/// [`crate::events::report_denials`]). Nothing else fills it.
#[derive(Debug, Clone, Default)]
pub struct VerifiedCaller(Arc<std::sync::OnceLock<Principal>>);

impl VerifiedCaller {
    /// The caller the request's handler verified, if it verified one.
    pub fn get(&self) -> Option<&Principal> {
        self.0.get()
    }

    /// Records the verified caller (the first one; a request verifies one).
    pub(crate) fn fill(&self, principal: Principal) {
        let _ = self.0.set(principal);
    }
}

/// An access token as a request presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `Authorization: Bearer` (RFC 6750 §2.1).
    Bearer(&'a str),
    /// `Authorization: DPoP`, with a proof in the `DPoP` header (RFC 9449 §7.1).
    Dpop(&'a str),
}

impl<'a> Credential<'a> {
    pub fn token(&self) -> &'a str {
        match self {
            Credential::Bearer(t) | Credential::Dpop(t) => t,
        }
    }
}

/// The access token of a request, Bearer or DPoP. `Ok(None)` when there is no Authorization
/// header or it is another scheme (Basic, …); an error when there are several, or the one
/// there is not well-formed.
pub fn credential(headers: &HeaderMap) -> Result<Option<Credential<'_>>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest);
    }
    let value = value.to_str().map_err(|_| AuthError::InvalidRequest)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::InvalidRequest)?;
    let dpop = if scheme.eq_ignore_ascii_case("bearer") {
        false
    } else if scheme.eq_ignore_ascii_case("dpop") {
        true
    } else {
        return Ok(None);
    };
    let token = token.trim_start_matches(' ');
    if token.is_empty() || !token.bytes().all(is_b64token_char) {
        return Err(AuthError::InvalidToken("malformed token"));
    }
    Ok(Some(if dpop {
        Credential::Dpop(token)
    } else {
        Credential::Bearer(token)
    }))
}

/// The bearer token of a request (RFC 6750 §2.1). `Ok(None)` when there is no Authorization
/// header or it is another scheme (a DPoP-bound token is not a bearer credential); an error
/// when there are several, or the one there is not well-formed.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    Ok(match credential(headers)? {
        Some(Credential::Bearer(t)) => Some(t),
        _ => None,
    })
}

/// RFC 6750 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" followed by "="s.
fn is_b64token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let credential = credential(&parts.headers)?.ok_or(AuthError::MissingToken)?;
        let verifier = Verifier::from_ref(state);
        let claims = verifier.verify(credential.token()).await?;
        let url = super::dpop::request_url(parts);
        verifier
            .check_binding(
                &claims,
                credential,
                parts.method.as_str(),
                &url,
                &parts.headers,
            )
            .await?;
        let principal = Principal(Arc::new(claims));
        parts.extensions.insert(principal.clone());
        if let Some(slot) = parts.extensions.get::<VerifiedCaller>() {
            slot.fill(principal.clone());
        }
        Ok(principal)
    }
}

/// A set of scopes a handler requires (all of them). See [`super::scopes`].
pub trait ScopeSet: Send + Sync + 'static {
    fn required() -> impl Iterator<Item = &'static str>;
}

/// Requires a verified token carrying every scope of `T`; otherwise 403 `insufficient_scope`.
pub struct RequireScope<T: ScopeSet>(pub Principal, PhantomData<T>);

impl<T: ScopeSet> std::fmt::Debug for RequireScope<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireScope").field(&self.0).finish()
    }
}

impl<S, T> FromRequestParts<S> for RequireScope<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: ScopeSet,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let missing: Vec<&str> = T::required().filter(|s| !principal.has_scope(s)).collect();
        if missing.is_empty() {
            Ok(RequireScope(principal, PhantomData))
        } else {
            Err(AuthError::InsufficientScope(
                T::required().collect::<Vec<_>>().join(" "),
            ))
        }
    }
}

/// The request's tenant: the token's `tid`, which must equal the `X-Tansu-Tenant` header the
/// gateway injected. A missing header, a token without `tid`, or any difference is refused
/// with 403 "tenant mismatch" — a token of one tenant is never usable for another.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub principal: Principal,
}

impl<S> FromRequestParts<S> for Tenant
where
    S: Send + Sync,
    Verifier: FromRef<S>,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let mut values = parts.headers.get_all(crate::TENANT_HEADER).iter();
        let header = match (values.next(), values.next()) {
            (Some(v), None) => v.to_str().ok().and_then(|s| Uuid::parse_str(s.trim()).ok()),
            _ => None,
        };
        let tid = principal
            .tid
            .as_deref()
            .and_then(|t| Uuid::parse_str(t).ok());
        match (header, tid) {
            (Some(h), Some(t)) if h == t => Ok(Tenant { id: t, principal }),
            _ => Err(AuthError::TenantMismatch),
        }
    }
}
