//! The tenant directory for the gateway: `GET /admin/tenant-directory/{id or slug}` answers
//! `{"id", "slug", "status"}` of an active or suspended tenant, 404 for an unknown or deleted
//! one. The gateway caches the answers for a few seconds to resolve `{tenant}.{base_domain}`,
//! `/t/{tenant}/…` and tokens' `tid`, and to refuse suspended tenants itself.
//!
//! Who may call it: a platform client (a token without `tid`) with scope `tenants.read`, or a
//! dev-mode `admin.full` token. A tenant's own clients never may, even with the scope: the
//! directory tells whether any tenant exists, which a tenant must not learn about others.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tansu_shared::Problem;
use tansu_shared::auth::{AuthError, bearer_token};

use crate::AppState;
use crate::admin::store_failed;
use crate::scopes::{ADMIN_FULL, IDENTITY_AUDIENCE, TENANTS_READ};
use crate::tenants::STATUS_DELETED;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/tenant-directory/{reference}", get(lookup))
}

#[derive(Debug, Serialize)]
struct Entry {
    id: String,
    slug: String,
    status: String,
}

async fn lookup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Result<Json<Entry>, axum::response::Response> {
    use axum::response::IntoResponse;
    authorize(&state, &headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let row = state
        .store
        .tenant_by_ref(&reference)
        .await
        .map_err(|e| store_failed(&e).into_response())?
        .filter(|t| t.status != STATUS_DELETED)
        .ok_or_else(|| Problem::not_found().into_response())?;
    Ok(Json(Entry {
        id: row.id,
        slug: row.slug,
        status: row.status,
    }))
}

async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), AuthError> {
    let token = bearer_token(headers)?.ok_or(AuthError::MissingToken)?;
    let issued = state.verify_issued_token(token, Some(IDENTITY_AUDIENCE))?;
    if !state.token_active(&issued).await {
        return Err(AuthError::InvalidToken("token revoked"));
    }
    let c = &issued.claims;
    let platform_reader = c.tid.is_none() && c.has_scope(TENANTS_READ);
    let dev_admin = state.config.dev_mode && c.has_scope(ADMIN_FULL);
    if platform_reader || dev_admin {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope(TENANTS_READ.into()))
    }
}
