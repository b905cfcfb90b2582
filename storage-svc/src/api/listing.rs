//! Object listings: prefix, delimiter roll-up, pages with continuation tokens.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::StorageRead;
use tansu_shared::auth::{RequireScope, Tenant};

use super::{ApiResult, P, rfc3339, valid_bucket};
use crate::AppState;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    prefix: String,
    delimiter: Option<String>,
    #[serde(rename = "max-keys")]
    max_keys: Option<usize>,
    #[serde(rename = "continuation-token")]
    continuation_token: Option<String>,
}

#[derive(Serialize)]
struct ObjectView {
    key: String,
    size: i64,
    etag: String,
    content_type: String,
    last_modified: String,
}

pub(super) async fn list_objects(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
    P(bucket): P<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let q: ListQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let control = |s: &str| s.chars().any(char::is_control);
    if q.prefix.len() > crate::names::MAX_KEY_BYTES || control(&q.prefix) {
        return Err(Problem::bad_request("invalid prefix"));
    }
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    if delimiter
        .as_ref()
        .is_some_and(|d| d.len() > 16 || control(d))
    {
        return Err(Problem::bad_request("invalid delimiter"));
    }
    let max = q.max_keys.unwrap_or(1000).clamp(1, 1000);
    let after = match q.continuation_token.filter(|t| !t.is_empty()) {
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(&t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|t| t.len() <= 2 * crate::names::MAX_KEY_BYTES && !control(t))
                .ok_or_else(|| Problem::bad_request("invalid continuation-token"))?,
        ),
        None => None,
    };
    st.store.get_bucket(tenant.id, &bucket).await?;
    let listing = st
        .store
        .list_objects(
            tenant.id,
            &bucket,
            &q.prefix,
            delimiter.as_deref(),
            after.as_deref(),
            max,
        )
        .await?;
    let objects: Vec<ObjectView> = listing
        .objects
        .into_iter()
        .map(|o| ObjectView {
            last_modified: rfc3339(o.last_modified),
            key: o.object_key,
            size: o.size,
            etag: o.etag,
            content_type: o.content_type,
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "bucket": bucket,
        "prefix": q.prefix,
        "delimiter": delimiter,
        "objects": objects,
        "common_prefixes": listing.common_prefixes,
        "is_truncated": listing.next_after.is_some(),
        "next_continuation_token": listing.next_after.map(|a| URL_SAFE_NO_PAD.encode(a)),
    }))
    .into_response())
}

fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(query: &str) -> ApiResult<T> {
    let pairs: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| {
                let v = v.into_owned();
                let value = match k.as_ref() {
                    "max-keys" => v
                        .parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::String(v)),
                    _ => serde_json::Value::String(v),
                };
                (k.into_owned(), value)
            })
            .collect();
    serde_json::from_value(serde_json::Value::Object(pairs))
        .map_err(|e| Problem::bad_request(format!("invalid query: {e}")))
}
