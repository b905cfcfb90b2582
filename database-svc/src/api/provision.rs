//! Provisioning: a platform caller creates, inspects, rotates, deletes and purges tenants'
//! databases, and compacts change feeds.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tansu_shared::Problem;
use tracing::Instrument;

use super::access::{Platform, PlatformTenant};
use crate::AppState;
use crate::tenants::TenantError;

pub(super) async fn provision(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    tracing::Span::current().record("tenant.id", tracing::field::display(tenant));
    // The catalog and tenant-database statements, one child span of the request's.
    let statements = tracing::info_span!(
        "db provision",
        otel.kind = "client",
        db.operation.name = "provision",
        tenant.id = %tenant,
    );
    let (d, created) = s.tenants.provision(tenant).instrument(statements).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(d)).into_response())
}

/// A new password for the tenant's database role (PostgreSQL); the answer is the only place
/// it appears. SQLite: the (secret-free) document-API credential.
pub(super) async fn rotate_credential(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    let d = s.tenants.rotate_credential(tenant).await?;
    Ok(Json(d).into_response())
}

/// Applies the change-feed retention to every open tenant now (it also runs every
/// `purge_interval_secs`, and when a tenant's database is opened).
pub(super) async fn compact(State(s): State<AppState>, _: Platform) -> Result<Response, Problem> {
    let removed = s.tenants.compact_open().await;
    Ok(Json(json!({ "removed": removed })).into_response())
}

pub(super) async fn provision_status(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    match s.tenants.record(tenant).await? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(TenantError::NotProvisioned.into()),
    }
}

pub(super) async fn deprovision(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    let d = s.tenants.deprovision(tenant).await?;
    // The other replicas close the tenant's pool at once (without Redis: within RECHECK).
    let change = tansu_shared::changes::Change::Database {
        tenant: tenant.to_string(),
    };
    s.changes.publish(&change).await;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

pub(super) async fn purge(State(s): State<AppState>, _: Platform) -> Result<Response, Problem> {
    let n = s.tenants.purge_expired().await?;
    Ok(Json(json!({ "purged": n })).into_response())
}
