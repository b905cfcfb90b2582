//! HTTP handlers. Each states what it requires in its signature: `Scoped<DbRead>` /
//! `Scoped<DbWrite>` (token `tid` == `X-Tansu-Tenant`, the scope held) for the document API,
//! `At<scope, path>` when the path names a collection, document or index (validated first),
//! `Platform` (a platform token with `db.provision`; no tenant header) for provisioning.

mod access;
mod changes;
mod collections;
mod documents;
pub mod openapi;
mod provision;

use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::{get, post, put};
use tansu_shared::Problem;
use tansu_shared::auth::Tenant;
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::body::unprocessable;
use crate::store::{Store, StoreError};
use crate::tenants::TenantError;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(
            "/provision/{tenant}",
            put(provision::provision)
                .get(provision::provision_status)
                .delete(provision::deprovision),
        )
        .route("/provision/purge", post(provision::purge))
        .route("/provision/compact", post(provision::compact))
        .route(
            "/provision/{tenant}/credential/rotate",
            post(provision::rotate_credential),
        )
        .route(
            "/api/collections",
            get(collections::list_collections).post(collections::create_collection),
        )
        .route(
            "/api/collections/{c}",
            get(collections::get_collection).delete(collections::delete_collection),
        )
        .route(
            "/api/collections/{c}/indexes",
            get(collections::list_indexes).post(collections::create_index),
        )
        .route(
            "/api/collections/{c}/indexes/{name}",
            axum::routing::delete(collections::drop_index),
        )
        .route(
            "/api/collections/{c}/documents",
            get(documents::list_documents).post(documents::create_document),
        )
        .route("/api/collections/{c}/bulk", post(documents::bulk_insert))
        .route(
            "/api/collections/{c}/query",
            post(documents::query_documents),
        )
        .route(
            "/api/collections/{c}/documents/{id}",
            get(documents::get_document)
                .put(documents::put_document)
                .patch(documents::patch_document)
                .delete(documents::delete_document),
        )
        .route("/api/changes", get(changes::changes))
        .route("/api/changes/stream", get(changes::changes_stream))
}

impl From<TenantError> for Problem {
    fn from(e: TenantError) -> Problem {
        match e {
            TenantError::NotProvisioned => Problem::new(
                StatusCode::NOT_FOUND,
                "tenant-not-provisioned",
                "Tenant not provisioned",
            )
            .with_detail("this tenant has no database; provision it first"),
            TenantError::Db(e) if tansu_shared::db::is_unavailable(&e) => unavailable(&e),
            e => Problem::internal(&e),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound(what) => {
                Problem::not_found().with_detail(format!("{what} not found"))
            }
            StoreError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
            }
            StoreError::PreconditionFailed => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            )
            .with_detail(
                "the document's current version does not match the request's precondition",
            ),
            StoreError::Invalid(detail) => {
                unprocessable("invalid-document", "Invalid document", detail)
            }
            StoreError::Rejected(p) => *p,
            StoreError::Gone { floor } => Problem::new(
                StatusCode::GONE,
                "changes-compacted",
                "Changes no longer available",
            )
            .with_detail(
                "changes after this position were removed by the feed's retention; \
                 re-read the collections, then follow from the current position",
            )
            .with_extension("oldest_since", floor),
            // The tenant was deprovisioned while this request ran.
            StoreError::Db(sqlx::Error::PoolClosed) => {
                Problem::service_unavailable("the tenant's database was closed; retry")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            StoreError::Db(sqlx::Error::Database(e))
                if is_client_data_error(e.code().as_deref()) =>
            {
                unprocessable(
                    "unstorable-value",
                    "Value cannot be stored",
                    "a value exceeds what the database can store or index (for example a very long string in an indexed field)",
                )
            }
            StoreError::Db(sqlx::Error::Database(e)) if is_transient(e.code().as_deref()) => {
                tracing::warn!(error = %e, "transient database contention");
                Problem::service_unavailable("the database is busy; retry")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            StoreError::Db(e) if tansu_shared::db::is_unavailable(&e) => unavailable(&e),
            StoreError::Db(e) => Problem::internal(&e),
        }
    }
}

/// The database is away (restarting, failing over): 503, retried by the client.
fn unavailable(e: &sqlx::Error) -> Problem {
    tracing::warn!(error = %e, "database unavailable");
    Problem::retry_later("the database is unavailable; retry")
}

/// PostgreSQL errors caused by the data a client sent rather than by the service: program
/// limit exceeded (an index row too large), numeric out of range, untranslatable characters.
fn is_client_data_error(code: Option<&str>) -> bool {
    matches!(code, Some("54000" | "22003" | "22P05" | "22021"))
}

/// Contention that a retry resolves: SQLite busy/locked (after `busy_timeout`), PostgreSQL
/// deadlock, serialization failure, lock not available.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("5" | "6" | "261" | "262" | "517" | "40P01" | "40001" | "55P03")
    )
}

async fn store(state: &AppState, tenant: &Tenant) -> Result<Store, Problem> {
    Ok(state.tenants.store(tenant.id).await?)
}
