//! Object reads: download (ranges, conditional requests) and metadata (HEAD).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::StorageRead;
use uuid::Uuid;

use super::access::Access;
use super::staging::META_PREFIX;
use super::{ApiResult, P, precondition_failed, valid_bucket, valid_key};
use crate::AppState;
use crate::backend::blob_path;
use crate::conditional::{Conditions, Precondition, RangeOutcome, http_date};
use crate::store::StoreError;

pub(super) async fn get_object(
    State(st): State<AppState>,
    access: Access<StorageRead>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read_object(&st, access.tenant, &bucket, &key, &headers, false).await
}

pub(super) async fn head_object(
    State(st): State<AppState>,
    access: Access<StorageRead>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read_object(&st, access.tenant, &bucket, &key, &headers, true).await
}

fn object_headers(resp: &mut Response, row: &crate::store::ObjectRow) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&row.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(row.last_modified)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

async fn read_object(
    st: &AppState,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    valid_bucket(bucket)?;
    valid_key(key)?;
    let row = st.store.get_object(tenant, bucket, key).await?;
    let validators = row.validators();
    match Conditions::from_headers(headers).evaluate(Some(&validators), true) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            object_headers(&mut resp, &row);
            crate::content::apply(
                resp.headers_mut(),
                &row.content_type,
                HeaderValue::from_str(&row.content_type).is_ok(),
                key,
                &st.config.inline_content_types,
            );
            return Ok(resp);
        }
        Precondition::Failed => return Err(precondition_failed()),
    }
    let len = row.size as u64;
    let outcome = if head {
        RangeOutcome::Full
    } else {
        crate::conditional::range(headers, len, &validators)
    };
    let (status, range) = match outcome {
        RangeOutcome::Full => (StatusCode::OK, None),
        RangeOutcome::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeOutcome::Unsatisfiable => {
            let mut p = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                p = p.with_header(header::CONTENT_RANGE, v);
            }
            return Err(p);
        }
    };
    let body = if head || len == 0 {
        Body::empty()
    } else {
        let path = blob_path(tenant, &row.blob_id);
        match st.backend.get(&path, range.clone()).await {
            Ok(stream) => Body::from_stream(stream),
            // Replaced or deleted between the lookup and the read.
            Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound.into()),
            Err(e) => return Err(Problem::internal(&e)),
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    object_headers(&mut resp, &row);
    let content_length = range.as_ref().map_or(len, |r| r.end - r.start);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    if let Some(r) = &range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let content_type_sent = match HeaderValue::from_str(&row.content_type) {
        Ok(v) => {
            h.insert(header::CONTENT_TYPE, v);
            true
        }
        Err(_) => false,
    };
    crate::content::apply(
        h,
        &row.content_type,
        content_type_sent,
        key,
        &st.config.inline_content_types,
    );
    for (k, v) in row.user_metadata() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("{META_PREFIX}{k}").as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(name, value);
        }
    }
    Ok(resp)
}
