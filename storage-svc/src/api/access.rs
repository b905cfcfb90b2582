//! Who a request acts for: a bearer token with the route's scopes (the shared extractors check
//! scope and tenant), or a presigned URL's query parameters (see [`crate::presign`]).

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use tansu_shared::Problem;
use tansu_shared::auth::{AuthError, RequireScope, ScopeSet, Tenant};
use uuid::Uuid;

use super::{ApiResult, P, auth};
use crate::AppState;
use crate::presign;

/// The tenant a request acts for, proven by a bearer token with the scopes `S`, or by a valid
/// presigned URL for this method and object.
pub(super) struct Access<S> {
    pub(super) tenant: Uuid,
    pub(super) presigned: bool,
    _scope: PhantomData<S>,
}

impl<S: ScopeSet> FromRequestParts<AppState> for Access<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k.starts_with("X-Tansu-"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if !params.contains_key(presign::Q_SIGNATURE) {
            RequireScope::<S>::from_request_parts(parts, state)
                .await
                .map_err(auth)?;
            let tenant = Tenant::from_request_parts(parts, state)
                .await
                .map_err(auth)?;
            return Ok(Access {
                tenant: tenant.id,
                presigned: false,
                _scope: PhantomData,
            });
        }
        let P((bucket, key)) = P::<(String, String)>::from_request_parts(parts, state).await?;
        let tenant =
            verify_presigned(state, &parts.method, &parts.headers, &params, &bucket, &key).await?;
        Ok(Access {
            tenant,
            presigned: true,
            _scope: PhantomData,
        })
    }
}

fn bad_presign(detail: &'static str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "invalid-presigned-url",
        "Invalid presigned URL",
    )
    .with_detail(detail)
}

/// The method a presigned URL is minted for; HEAD is allowed wherever GET is.
fn presign_method(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "GET",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "",
    }
}

async fn verify_presigned(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    bucket: &str,
    key: &str,
) -> ApiResult<Uuid> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let tenant =
        Uuid::parse_str(get(presign::Q_TENANT)).map_err(|_| bad_presign("malformed tenant"))?;
    // Behind the gateway the request's tenant is known: a URL never works for another one.
    let mut header_tenants = headers.get_all(tansu_shared::TENANT_HEADER).iter();
    match (header_tenants.next(), header_tenants.next()) {
        (None, _) => {}
        (Some(h), None)
            if h.to_str().ok().and_then(|s| Uuid::parse_str(s.trim()).ok()) == Some(tenant) => {}
        _ => return Err(auth(AuthError::TenantMismatch)),
    }
    let signed_method = get(presign::Q_METHOD);
    if signed_method.is_empty() || signed_method != presign_method(method) {
        return Err(bad_presign("the URL is not valid for this method"));
    }
    let expires: i64 = get(presign::Q_EXPIRES)
        .parse()
        .map_err(|_| bad_presign("malformed expiry"))?;
    let now = crate::store::now_ms() / 1000;
    if expires <= now {
        return Err(bad_presign("the URL has expired"));
    }
    if expires > now + state.config.max_presign_secs as i64 {
        return Err(bad_presign("the URL's expiry is too far in the future"));
    }
    let secret = state
        .presign_keys
        .existing_key(&state.store, tenant)
        .await
        .map_err(Problem::from)?
        .ok_or_else(|| bad_presign("the signature does not match"))?;
    if !presign::verify(
        &secret,
        signed_method,
        tenant,
        bucket,
        key,
        expires,
        get(presign::Q_SIGNATURE),
    ) {
        return Err(bad_presign("the signature does not match"));
    }
    // A URL outlives the token that minted it, and through the gateway's shared path it names
    // no tenant the gateway could check: the tenant must still be active now. Asked only for
    // genuine URLs, so an anonymous caller cannot make the service look tenants up.
    if let Some(directory) = &state.directory {
        directory.require_active(tenant).await?;
    }
    Ok(tenant)
}
