//! Object writes: upload (or server-side copy with `x-tansu-copy-source`) and delete.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::StorageWrite;
use uuid::Uuid;

use super::access::Access;
use super::buckets::BucketSettings;
use super::staging::{
    discard_blob, hex, intend_blob, reserve, stage, stream_room, too_large, upload_headers,
};
use super::{ApiResult, P, precondition_failed, valid_bucket, valid_key};
use crate::AppState;
use crate::backend::blob_path;
use crate::conditional::{Conditions, Precondition};
use crate::store::{NewObject, StoreError};

const COPY_SOURCE: &str = "x-tansu-copy-source";

pub(super) async fn put_object(
    State(st): State<AppState>,
    access: Access<StorageWrite>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    valid_key(&key)?;
    let tenant = access.tenant;
    let conditions = Conditions::from_headers(&headers);
    let bucket_row = st.store.get_bucket(tenant, &bucket).await?;
    let settings: BucketSettings = serde_json::from_str(&bucket_row.settings).unwrap_or_default();
    let current = match st.store.get_object(tenant, &bucket, &key).await {
        Ok(row) => Some(row),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // Fail early on a precondition that already fails (it is checked again atomically at commit).
    if conditions.evaluate(current.as_ref().map(|r| r.validators()).as_ref(), false)
        != Precondition::Proceed
    {
        return Err(precondition_failed());
    }
    // An overwrite needs room only for what it adds. The reservation only keeps concurrent
    // uploads from overbooking; the commit re-checks the quota atomically with the real delta.
    let (old_size, old_objects) = current
        .as_ref()
        .map_or((0, 0), |r| (r.size.max(0) as u64, 1));
    if let Some(source) = headers.get(COPY_SOURCE) {
        if access.presigned {
            return Err(Problem::forbidden(
                "a presigned URL cannot copy another object",
            ));
        }
        return copy_object(&st, tenant, &bucket, &key, source, conditions).await;
    }
    let h = upload_headers(&headers)?;
    if !settings.allows(&h.content_type) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type-not-allowed",
            "Content type not allowed in this bucket",
        ));
    }
    let limit = settings
        .max_object_bytes
        .map_or(st.config.max_object_bytes, |b| {
            b.min(st.config.max_object_bytes)
        });
    if h.content_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut reservation = reserve(
        &st,
        tenant,
        h.content_length.unwrap_or(0).saturating_sub(old_size),
        1 - old_objects,
    )
    .await?;
    // Without a length, stop streaming once the quota's remaining room is used up.
    let room = stream_room(&st, tenant, reservation.reserved.bytes + old_size as i64).await?;
    let stream_limit = limit.min(room);

    let (tmp, size, digest) = stage(&st, body, &h, stream_limit, limit).await?;
    let (blob_id, mut blob) = intend_blob(&st, tenant).await?;
    st.backend
        .place(tmp, &blob_path(tenant, &blob_id.to_string()))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let new = NewObject {
        blob_id,
        size: size as i64,
        etag: format!("\"{}\"", hex(&digest)),
        content_type: h.content_type,
        metadata: serde_json::to_string(&h.metadata).map_err(|e| Problem::internal(&e))?,
    };
    let old = st
        .store
        .commit_object(
            tenant,
            &bucket,
            &key,
            &new,
            reservation.reserved,
            st.quota(),
            &|cur| conditions.evaluate(cur, false),
        )
        .await?;
    reservation.armed = false;
    blob.armed = false;
    let created = old.is_none();
    if let Some(old) = old {
        discard_blob(&st, &tenant.to_string(), &old).await;
    }
    stored_response(created, &new)
}

pub(crate) fn stored_response(created: bool, new: &NewObject) -> ApiResult<Response> {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = (
        status,
        axum::Json(serde_json::json!({ "size": new.size, "etag": new.etag })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&new.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// Percent-decodes a copy source (`<bucket>/<key>`, optionally with a leading '/').
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn copy_object(
    st: &AppState,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    source: &HeaderValue,
    conditions: Conditions,
) -> ApiResult<Response> {
    let source = source
        .to_str()
        .ok()
        .and_then(percent_decode)
        .ok_or_else(|| Problem::bad_request("invalid x-tansu-copy-source"))?;
    let source = source.strip_prefix('/').unwrap_or(&source);
    let (src_bucket, src_key) = source
        .split_once('/')
        .ok_or_else(|| Problem::bad_request("x-tansu-copy-source is <bucket>/<key>"))?;
    valid_bucket(src_bucket)?;
    valid_key(src_key)?;
    // Only ever within the caller's own tenant.
    let src = st.store.get_object(tenant, src_bucket, src_key).await?;
    if src.size as u64 > st.config.max_object_bytes {
        return Err(too_large(st.config.max_object_bytes));
    }
    let mut reservation = reserve(st, tenant, src.size as u64, 1).await?;
    let (blob_id, mut blob) = intend_blob(st, tenant).await?;
    match st
        .backend
        .copy(
            &blob_path(tenant, &src.blob_id),
            &blob_path(tenant, &blob_id.to_string()),
        )
        .await
    {
        Ok(()) => {}
        Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound.into()),
        Err(e) => return Err(Problem::internal(&e)),
    }
    let new = NewObject {
        blob_id,
        size: src.size,
        etag: src.etag,
        content_type: src.content_type,
        metadata: src.metadata,
    };
    let old = st
        .store
        .commit_object(
            tenant,
            bucket,
            key,
            &new,
            reservation.reserved,
            st.quota(),
            &|cur| conditions.evaluate(cur, false),
        )
        .await?;
    reservation.armed = false;
    blob.armed = false;
    let created = old.is_none();
    if let Some(old) = old {
        discard_blob(st, &tenant.to_string(), &old).await;
    }
    stored_response(created, &new)
}

pub(super) async fn delete_object(
    State(st): State<AppState>,
    access: Access<StorageWrite>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    valid_key(&key)?;
    let conditions = Conditions::from_headers(&headers);
    let blob = st
        .store
        .delete_object(access.tenant, &bucket, &key, &|cur| {
            conditions.evaluate(cur, false)
        })
        .await?;
    discard_blob(&st, &access.tenant.to_string(), &blob).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b/%C3%BC").as_deref(), Some("a b/ü"));
        assert_eq!(percent_decode("%zz"), None);
    }
}
