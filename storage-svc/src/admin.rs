//! Platform administration: per-tenant quota overrides.
//!
//! ```text
//! GET    /admin/tenants/{tenant}/quota   usage, the quota in force and the override
//! PUT    /admin/tenants/{tenant}/quota   {"bytes": n|null, "objects": n|null}
//! DELETE /admin/tenants/{tenant}/quota   back to the configured default
//! ```
//!
//! A platform operation, protected like database-svc's provisioning: the token needs
//! `storage.admin` (or the platform-wide `admin.full`) and must be a platform token — without
//! `tid`, or of the configured `platform_tenant`. A tenant's token, even one that carries the
//! scope by mistake, cannot raise its own quota.

#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::auth::{AuthError, Principal};
use uuid::Uuid;

use crate::AppState;
use crate::api::{ApiResult, P, read_json, usage_view};
use crate::store::QuotaOverride;

/// The scope of this module's endpoints (or [`ADMIN_FULL`]).
pub const STORAGE_ADMIN: &str = "storage.admin";
pub const ADMIN_FULL: &str = "admin.full";

pub fn routes() -> tansu_shared::routes::Routes<AppState> {
    tansu_shared::routes::Routes::new().route(
        "/admin/tenants/{tenant}/quota",
        get(get_quota).put(put_quota).delete(delete_quota),
    )
}

/// A verified platform administrator's token, or the RFC 6750 / problem answer.
struct PlatformAdmin;

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &AppState,
    ) -> ApiResult<Self> {
        let p = Principal::from_request_parts(parts, st)
            .await
            .map_err(|e| e.to_problem())?;
        if !(p.has_scope(STORAGE_ADMIN) || p.has_scope(ADMIN_FULL)) {
            return Err(AuthError::InsufficientScope(STORAGE_ADMIN.into()).to_problem());
        }
        match p.tid.as_deref() {
            None => Ok(PlatformAdmin),
            Some(tid)
                if !st.config.platform_tenant.is_empty() && tid == st.config.platform_tenant =>
            {
                Ok(PlatformAdmin)
            }
            Some(_) => Err(Problem::forbidden(
                "quota administration requires a platform token, not a tenant's",
            )),
        }
    }
}

fn parse_tenant(s: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(s).map_err(|_| Problem::bad_request("the tenant must be a UUID"))
}

async fn view(st: &AppState, tenant: Uuid) -> ApiResult<Response> {
    let u = st.store.usage(tenant).await?;
    Ok(axum::Json(usage_view(tenant, &u, st.quota())).into_response())
}

async fn get_quota(
    State(st): State<AppState>,
    _: PlatformAdmin,
    P(tenant): P<String>,
) -> ApiResult<Response> {
    view(&st, parse_tenant(&tenant)?).await
}

/// A tenant's limits; an absent one is the service's default.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct QuotaRequest {
    bytes: Option<u64>,
    objects: Option<u64>,
}

/// A limit as stored: at most `i64::MAX` (the database's BIGINT).
fn limit(v: Option<u64>, name: &str) -> ApiResult<Option<i64>> {
    v.map(|n| {
        i64::try_from(n).map_err(|_| Problem::bad_request(format!("{name}: at most {}", i64::MAX)))
    })
    .transpose()
}

/// Sets the override. Lowering a quota below the current usage is allowed: new uploads are
/// refused until deletions bring the usage under it; nothing stored is removed.
async fn put_quota(
    State(st): State<AppState>,
    _: PlatformAdmin,
    P(tenant): P<String>,
    body: Body,
) -> ApiResult<Response> {
    let tenant = parse_tenant(&tenant)?;
    let req: QuotaRequest = read_json(body).await?;
    let q = QuotaOverride {
        bytes: limit(req.bytes, "bytes")?,
        objects: limit(req.objects, "objects")?,
    };
    st.store.set_quota(tenant, q).await?;
    tracing::info!(%tenant, bytes = ?q.bytes, objects = ?q.objects, "quota override set");
    view(&st, tenant).await
}

async fn delete_quota(
    State(st): State<AppState>,
    _: PlatformAdmin,
    P(tenant): P<String>,
) -> ApiResult<Response> {
    let tenant = parse_tenant(&tenant)?;
    st.store.set_quota(tenant, QuotaOverride::default()).await?;
    tracing::info!(%tenant, "quota override removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
