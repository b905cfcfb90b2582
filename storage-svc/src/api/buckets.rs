//! Buckets: create, read, change settings, delete (only when empty), list.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::{StorageRead, StorageWrite};
use tansu_shared::auth::{RequireScope, Tenant};

use super::{ApiResult, P, read_json, rfc3339, valid_bucket};
use crate::AppState;

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BucketSettings {
    /// Largest object this bucket accepts (the service-wide limit applies too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_object_bytes: Option<u64>,
    /// Content types accepted on upload (`type/subtype`, or `type/*`); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_content_types: Vec<String>,
}

impl BucketSettings {
    pub(crate) fn allows(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.allowed_content_types.is_empty()
            || self.allowed_content_types.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                match a.strip_suffix("/*") {
                    Some(ty) => essence.split('/').next() == Some(ty),
                    None => a == essence,
                }
            })
    }
}

#[derive(Serialize)]
struct BucketView {
    name: String,
    created_at: String,
    settings: BucketSettings,
}

fn bucket_view(row: crate::store::BucketRow) -> BucketView {
    BucketView {
        settings: serde_json::from_str(&row.settings).unwrap_or_default(),
        created_at: rfc3339(row.created_at),
        name: row.name,
    }
}

pub(super) async fn list_buckets(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
) -> ApiResult<Response> {
    let rows = st.store.list_buckets(tenant.id).await?;
    let buckets: Vec<BucketView> = rows.into_iter().map(bucket_view).collect();
    Ok(axum::Json(serde_json::json!({ "buckets": buckets })).into_response())
}

pub(super) async fn create_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let settings: BucketSettings = read_json(body).await?;
    let text = serde_json::to_string(&settings).map_err(|e| Problem::internal(&e))?;
    st.store.create_bucket(tenant.id, &bucket, &text).await?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok((StatusCode::CREATED, axum::Json(bucket_view(row))).into_response())
}

pub(super) async fn get_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
    P(bucket): P<String>,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok(axum::Json(bucket_view(row)).into_response())
}

pub(super) async fn update_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let settings: BucketSettings = read_json(body).await?;
    let text = serde_json::to_string(&settings).map_err(|e| Problem::internal(&e))?;
    st.store.update_bucket(tenant.id, &bucket, &text).await?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok(axum::Json(bucket_view(row)).into_response())
}

pub(super) async fn delete_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    st.store.delete_bucket(tenant.id, &bucket).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rules() {
        let s = BucketSettings {
            max_object_bytes: None,
            allowed_content_types: vec!["image/*".into(), "text/plain".into()],
        };
        assert!(s.allows("image/png"));
        assert!(s.allows("text/plain; charset=utf-8"));
        assert!(!s.allows("text/html"));
    }
}
