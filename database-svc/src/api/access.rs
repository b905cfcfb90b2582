//! What a handler requires, as extractors: the caller's tenant and scope, the path's names
//! validated, or a platform caller.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tansu_shared::Problem;
use tansu_shared::auth::scopes::DbProvision;
use tansu_shared::auth::{RequireScope, ScopeSet, Tenant};
use uuid::Uuid;

use crate::AppState;
use crate::body::PathParams;
use crate::ident;

/// The caller's tenant (token `tid` == `X-Tansu-Tenant`) with the scope `T` held.
pub(super) struct Scoped<T>(pub(super) Tenant, pub(super) PhantomData<T>);

impl<T: ScopeSet> FromRequestParts<AppState> for Scoped<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let tenant = Tenant::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        RequireScope::<T>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Scoped(tenant, PhantomData))
    }
}

/// A document-API request's target: the caller's tenant (token `tid` == `X-Tansu-Tenant`),
/// the scope `T` held, and the path's names `P` validated — checked in that order, as
/// separate extractors would.
pub(super) struct At<T, P>(pub(super) Tenant, pub(super) P, pub(super) PhantomData<T>);

/// Path parameters that must be valid names before anything is looked up.
pub(super) trait CheckedPath: DeserializeOwned + Send {
    fn check(&self) -> Result<(), Problem>;
}

/// `…/collections/{c}`
#[derive(Deserialize)]
pub(super) struct CollPath {
    pub(super) c: String,
}

/// `…/collections/{c}/documents/{id}`
#[derive(Deserialize)]
pub(super) struct DocPath {
    pub(super) c: String,
    pub(super) id: String,
}

/// `…/collections/{c}/indexes/{name}`
#[derive(Deserialize)]
pub(super) struct IndexPath {
    pub(super) c: String,
    pub(super) name: String,
}

impl CheckedPath for CollPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c)
    }
}

impl CheckedPath for DocPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c).and_then(|()| ident::doc_id(&self.id))
    }
}

impl CheckedPath for IndexPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c).and_then(|()| ident::name("index", &self.name))
    }
}

impl<T: ScopeSet, P: CheckedPath> FromRequestParts<AppState> for At<T, P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Scoped(tenant, _) = Scoped::<T>::from_request_parts(parts, s).await?;
        let PathParams(path) = PathParams::<P>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        path.check().map_err(IntoResponse::into_response)?;
        Ok(At(tenant, path, PhantomData))
    }
}

/// A provisioning caller: a token with `db.provision` that is a platform token. Provisioning
/// is a platform operation: a token of some tenant — even one that carries `db.provision` by
/// mistake — must not create or delete any tenant's database, its own included. Only tokens
/// without `tid` (or of the configured platform tenant) may.
pub(super) struct Platform;

impl FromRequestParts<AppState> for Platform {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let scope = RequireScope::<DbProvision>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        match scope.0.tid.as_deref() {
            None => Ok(Platform),
            Some(tid)
                if !s.config.platform_tenant.is_empty() && tid == s.config.platform_tenant =>
            {
                Ok(Platform)
            }
            Some(_) => Err(Problem::forbidden(
                "provisioning requires a platform token, not a tenant's",
            )
            .into_response()),
        }
    }
}

/// A [`Platform`] caller and the tenant of the path (`/provision/{tenant}…`), a UUID.
pub(super) struct PlatformTenant(pub(super) Uuid);

impl FromRequestParts<AppState> for PlatformTenant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Platform::from_request_parts(parts, s).await?;
        let PathParams(tenant) = PathParams::<String>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        Uuid::parse_str(&tenant)
            .map(PlatformTenant)
            .map_err(|_| Problem::bad_request("the tenant must be a UUID").into_response())
    }
}
