//! The object API under `/api/…` (public: `/storage/api/…`).
//!
//! ```text
//! GET    /api/buckets                               list buckets            storage.read
//! PUT    /api/buckets/{bucket}                      create (JSON settings)  storage.write
//! GET    /api/buckets/{bucket}                      settings                storage.read
//! PATCH  /api/buckets/{bucket}                      change settings         storage.write
//! DELETE /api/buckets/{bucket}                      delete if empty         storage.write
//! GET    /api/buckets/{bucket}/objects              list (prefix, delimiter, max-keys, continuation-token)
//! PUT    /api/buckets/{bucket}/objects/{key…}       upload (or copy with x-tansu-copy-source)
//! GET    /api/buckets/{bucket}/objects/{key…}       download (Range, conditionals)
//! HEAD   /api/buckets/{bucket}/objects/{key…}       metadata
//! DELETE /api/buckets/{bucket}/objects/{key…}       delete
//! POST   /api/buckets/{bucket}/presign              mint a presigned URL
//! GET    /api/usage                                 the tenant's usage and quota
//! GET/PUT/DELETE /admin/tenants/{tenant}/quota      per-tenant quota override (platform, storage.admin)
//! ```
//!
//! Object routes accept either a bearer token (scope + tenant checked by the shared
//! extractors) or a presigned URL's query parameters (see [`crate::presign`]).

// Problem (the workspace's error body) is large; handlers return it by value on purpose.
#![allow(clippy::result_large_err)]

mod access;
mod buckets;
mod download;
mod listing;
mod presign;
mod staging;
mod upload;
mod usage;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post, put};
use tansu_shared::Problem;
use tansu_shared::auth::AuthError;

use crate::AppState;
use crate::names::{check_bucket, check_key};
use crate::store::StoreError;

pub use buckets::BucketSettings;
pub(crate) use presign::PresignRequest;
pub(crate) use staging::{
    discard_blob, hex, intend_blob, reserve, stage, stream_room, too_large, upload_headers,
};
pub(crate) use upload::stored_response;
pub(crate) use usage::usage_view;

pub fn routes() -> tansu_shared::routes::Routes<AppState> {
    tansu_shared::routes::Routes::new()
        .route("/api/buckets", get(buckets::list_buckets))
        .route(
            "/api/buckets/{bucket}",
            put(buckets::create_bucket)
                .get(buckets::get_bucket)
                .patch(buckets::update_bucket)
                .delete(buckets::delete_bucket),
        )
        .route("/api/buckets/{bucket}/objects", get(listing::list_objects))
        .route(
            "/api/buckets/{bucket}/objects/{*key}",
            put(upload::put_object)
                .get(download::get_object)
                .head(download::head_object)
                .delete(upload::delete_object),
        )
        .route("/api/buckets/{bucket}/presign", post(presign::presign_url))
        .route("/api/usage", get(usage::usage))
        .merge(crate::multipart::routes())
        .merge(crate::admin::routes())
}

// ---- errors ----

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound => {
                Problem::new(StatusCode::NOT_FOUND, "no-such-key", "No such object")
            }
            StoreError::NoSuchBucket => {
                Problem::new(StatusCode::NOT_FOUND, "no-such-bucket", "No such bucket")
            }
            StoreError::AlreadyExists => Problem::new(
                StatusCode::CONFLICT,
                "bucket-exists",
                "Bucket already exists",
            ),
            StoreError::NotEmpty => {
                Problem::new(StatusCode::CONFLICT, "bucket-not-empty", "Bucket not empty")
            }
            StoreError::PreconditionFailed => precondition_failed(),
            StoreError::QuotaExceeded => quota_exceeded(),
            StoreError::Db(e) if tansu_shared::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                Problem::retry_later("the database is unavailable; retry")
            }
            StoreError::Db(e) => Problem::internal(&e),
        }
    }
}

pub(crate) fn precondition_failed() -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition failed",
    )
}

pub(crate) fn quota_exceeded() -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "quota-exceeded",
        "Storage quota exceeded",
    )
}

fn auth(e: AuthError) -> Problem {
    e.to_problem()
}

pub(crate) type ApiResult<T> = Result<T, Problem>;

/// Path parameters whose rejection is a problem+json 400.
pub(crate) struct P<T>(pub T);

impl<T> FromRequestParts<AppState> for P<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

pub(crate) fn valid_bucket(bucket: &str) -> ApiResult<()> {
    check_bucket(bucket).map_err(|why| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-bucket-name",
            "Invalid bucket name",
        )
        .with_detail(why)
    })
}

pub(crate) fn valid_key(key: &str) -> ApiResult<()> {
    check_key(key).map_err(|why| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-key", "Invalid object key").with_detail(why)
    })
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned + Default>(
    body: Body,
) -> ApiResult<T> {
    // Enough for a multipart completion listing 10,000 parts; an empty body is the default.
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| Problem::payload_too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    tansu_shared::extract::read_json(Body::from(bytes), usize::MAX).await
}

/// A time in unix milliseconds as RFC 3339 in whole seconds, UTC (`2023-11-14T22:13:20Z`): what
/// JSON bodies carry (headers carry HTTP dates, see [`crate::conditional::http_date`]).
pub(crate) fn rfc3339(ms: i64) -> String {
    tansu_shared::clock::rfc3339_seconds(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_times_are_rfc3339_in_whole_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
