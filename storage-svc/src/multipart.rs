//! Multipart (and resumable) uploads.
//!
//! ```text
//! POST   /api/buckets/{bucket}/uploads                     start: {key}, Content-Type and x-tansu-meta-* headers
//! GET    /api/buckets/{bucket}/uploads/{id}                the parts stored so far (to resume)
//! PUT    /api/buckets/{bucket}/uploads/{id}/parts/{n}      store part n (1..=10000), streamed
//! POST   /api/buckets/{bucket}/uploads/{id}/complete       {parts: [{part_number, etag}]}
//! DELETE /api/buckets/{bucket}/uploads/{id}                abort
//! ```
//!
//! Each part is staged, verified and placed like a whole object, and counts in the tenant's
//! usage as soon as it is stored (so parts cannot bypass the quota). Completing concatenates the
//! listed parts into one new blob (its `ETag` is the SHA-256 of the whole content, like any
//! object's) and makes it visible in one transaction that also drops the parts; a part replaced
//! meanwhile fails the completion with 412. Parts not listed are discarded.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::{StorageRead, StorageWrite};
use tansu_shared::auth::{RequireScope, Tenant};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::AppState;
use crate::api::{
    ApiResult, BucketSettings, P, discard_blob, hex, intend_blob, precondition_failed, read_json,
    reserve, stage, stored_response, stream_room, too_large, upload_headers, valid_bucket,
    valid_key,
};
use crate::backend::blob_path;
use crate::conditional::Conditions;
use crate::store::{NewObject, PartRow, StoreError, UploadRow};

pub const MAX_PARTS: i64 = 10_000;

pub fn routes() -> tansu_shared::routes::Routes<AppState> {
    tansu_shared::routes::Routes::new()
        .route("/api/buckets/{bucket}/uploads", post(initiate))
        .route(
            "/api/buckets/{bucket}/uploads/{upload_id}",
            get(list).delete(abort),
        )
        .route(
            "/api/buckets/{bucket}/uploads/{upload_id}/parts/{part_number}",
            put(upload_part),
        )
        .route(
            "/api/buckets/{bucket}/uploads/{upload_id}/complete",
            post(complete),
        )
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct InitiateRequest {
    key: String,
}

async fn initiate(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let req: InitiateRequest = read_json(body).await?;
    valid_key(&req.key)?;
    let h = upload_headers(&headers)?;
    let bucket_row = st.store.get_bucket(tenant.id, &bucket).await?;
    let settings: BucketSettings = serde_json::from_str(&bucket_row.settings).unwrap_or_default();
    if !settings.allows(&h.content_type) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type-not-allowed",
            "Content type not allowed in this bucket",
        ));
    }
    let upload_id = Uuid::now_v7();
    let row = UploadRow {
        bucket: bucket.clone(),
        object_key: req.key.clone(),
        content_type: h.content_type,
        metadata: serde_json::to_string(&h.metadata).map_err(|e| Problem::internal(&e))?,
    };
    st.store.create_upload(tenant.id, &row, upload_id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "upload_id": upload_id, "bucket": bucket, "key": req.key })),
    )
        .into_response())
}

/// The upload, checked to belong to this tenant and bucket.
async fn find_upload(
    st: &AppState,
    tenant: Uuid,
    bucket: &str,
    upload_id: &str,
) -> ApiResult<(Uuid, UploadRow)> {
    valid_bucket(bucket)?;
    let not_found = || Problem::new(StatusCode::NOT_FOUND, "no-such-upload", "No such upload");
    let id = Uuid::parse_str(upload_id).map_err(|_| not_found())?;
    match st.store.get_upload(tenant, id).await {
        Ok(row) if row.bucket == bucket => Ok((id, row)),
        Ok(_) | Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn list(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
    P((bucket, upload_id)): P<(String, String)>,
) -> ApiResult<Response> {
    let (id, upload) = find_upload(&st, tenant.id, &bucket, &upload_id).await?;
    let parts = st.store.list_parts(tenant.id, id).await?;
    let parts: Vec<serde_json::Value> = parts
        .iter()
        .map(
            |p| serde_json::json!({ "part_number": p.part_number, "size": p.size, "etag": p.etag }),
        )
        .collect();
    Ok(axum::Json(serde_json::json!({
        "upload_id": id,
        "bucket": bucket,
        "key": upload.object_key,
        "parts": parts,
    }))
    .into_response())
}

async fn upload_part(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P((bucket, upload_id, part_number)): P<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (id, _) = find_upload(&st, tenant.id, &bucket, &upload_id).await?;
    let part_number: i64 = part_number
        .parse()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
        .ok_or_else(|| Problem::bad_request("part numbers are 1 to 10000"))?;
    let h = upload_headers(&headers)?;
    let limit = st.config.max_object_bytes;
    if h.content_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut reservation = reserve(&st, tenant.id, h.content_length.unwrap_or(0), 0).await?;
    let room = stream_room(&st, tenant.id, reservation.reserved.bytes).await?;
    let (tmp, size, digest) = stage(&st, body, &h, limit.min(room), limit).await?;
    let (blob_id, mut blob) = intend_blob(&st, tenant.id).await?;
    st.backend
        .place(tmp, &blob_path(tenant.id, &blob_id.to_string()))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let part = PartRow {
        part_number,
        blob_id: blob_id.to_string(),
        size: size as i64,
        etag: format!("\"{}\"", hex(&digest)),
    };
    let old = st
        .store
        .commit_part(tenant.id, id, &part, reservation.reserved, st.quota())
        .await?;
    reservation.armed = false;
    blob.armed = false;
    if let Some(old) = old {
        discard_blob(&st, &tenant.id.to_string(), &old).await;
    }
    let mut resp = axum::Json(serde_json::json!({
        "part_number": part_number,
        "size": part.size,
        "etag": part.etag,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&part.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

// Serialize: the schema shows the (empty) default list of its container.
#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompletePart {
    part_number: i64,
    etag: String,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CompleteRequest {
    parts: Vec<CompletePart>,
}

async fn complete(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P((bucket, upload_id)): P<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (id, _) = find_upload(&st, tenant.id, &bucket, &upload_id).await?;
    let req: CompleteRequest = read_json(body).await?;
    if req.parts.is_empty() {
        return Err(Problem::bad_request("list at least one part"));
    }
    if req
        .parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(Problem::bad_request(
            "parts must be listed in ascending part_number order",
        ));
    }
    let stored = st.store.list_parts(tenant.id, id).await?;
    let mut chosen = Vec::with_capacity(req.parts.len());
    for p in &req.parts {
        let found = stored
            .iter()
            .find(|s| s.part_number == p.part_number && s.etag == p.etag)
            .ok_or_else(|| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-part", "Invalid part").with_detail(
                    format!("part {} is missing or its etag differs", p.part_number),
                )
            })?;
        chosen.push(found.clone());
    }
    let total: i64 = chosen.iter().map(|p| p.size).sum();
    if total as u64 > st.config.max_object_bytes {
        return Err(too_large(st.config.max_object_bytes));
    }

    // Concatenate into a temp file, hashing the whole content.
    let (tmp, file) = st
        .backend
        .temp_file()
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut sha = Sha256::new();
    for p in &chosen {
        let mut stream = match st
            .backend
            .get(&blob_path(tenant.id, &p.blob_id), None)
            .await
        {
            Ok(s) => s,
            Err(object_store::Error::NotFound { .. }) => return Err(precondition_failed()),
            Err(e) => return Err(Problem::internal(&e)),
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Problem::internal(&e))?;
            sha.update(&chunk);
            writer
                .write_all(&chunk)
                .await
                .map_err(|e| Problem::internal(&e))?;
        }
    }
    writer.flush().await.map_err(|e| Problem::internal(&e))?;
    let file = writer.into_inner();
    file.sync_all().await.map_err(|e| Problem::internal(&e))?;
    drop(file);

    let (blob_id, mut blob) = intend_blob(&st, tenant.id).await?;
    st.backend
        .place(tmp, &blob_path(tenant.id, &blob_id.to_string()))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let new = NewObject {
        blob_id,
        size: total,
        etag: format!("\"{}\"", hex(&sha.finalize())),
        content_type: String::new(),
        metadata: String::new(),
    };
    let conditions = Conditions::from_headers(&headers);
    let (garbage, created) = st
        .store
        .finish_upload(tenant.id, id, Some((&chosen, &new)), st.quota(), &|cur| {
            conditions.evaluate(cur, false)
        })
        .await?;
    blob.armed = false;
    for g in garbage {
        discard_blob(&st, &tenant.id.to_string(), &g).await;
    }
    stored_response(created, &new)
}

async fn abort(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P((bucket, upload_id)): P<(String, String)>,
) -> ApiResult<Response> {
    let (id, _) = find_upload(&st, tenant.id, &bucket, &upload_id).await?;
    let (garbage, _) = st
        .store
        .finish_upload(tenant.id, id, None, st.quota(), &|_| {
            crate::conditional::Precondition::Proceed
        })
        .await?;
    for g in garbage {
        discard_blob(&st, &tenant.id.to_string(), &g).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Aborts multipart uploads older than the configured expiry, so abandoned parts do not hold
/// storage and quota forever. Runs at start-up and then periodically (see [`crate::serve_on`]).
pub async fn abort_expired(st: &AppState) -> Result<usize, StoreError> {
    let cutoff = crate::store::now_ms()
        - i64::try_from(st.config.multipart_expiry_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expired = st.store.uploads_started_before(cutoff).await?;
    let mut aborted = 0;
    for (tenant, upload_id) in expired {
        match st
            .store
            .finish_upload(tenant, upload_id, None, st.quota(), &|_| {
                crate::conditional::Precondition::Proceed
            })
            .await
        {
            Ok((garbage, _)) => {
                for g in garbage {
                    discard_blob(st, &tenant.to_string(), &g).await;
                }
                aborted += 1;
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(aborted)
}
