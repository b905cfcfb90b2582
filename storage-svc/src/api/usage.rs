//! A tenant's usage and the quota in force.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use tansu_shared::auth::scopes::StorageRead;
use tansu_shared::auth::{RequireScope, Tenant};
use uuid::Uuid;

use super::ApiResult;
use crate::AppState;
use crate::store::{Quota, Usage};

pub(super) async fn usage(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
) -> ApiResult<Response> {
    let u = st.store.usage(tenant.id).await?;
    Ok(axum::Json(usage_view(tenant.id, &u, st.quota())).into_response())
}

/// A tenant's usage and the quota in force (`quota_override`: what an administrator set,
/// `null` for a limit that is the default).
pub(crate) fn usage_view(tenant: Uuid, u: &Usage, default: Quota) -> serde_json::Value {
    let q = u.quota(default);
    serde_json::json!({
        "tenant": tenant,
        "bytes": u.bytes,
        "objects": u.objects,
        "reserved_bytes": u.reserved_bytes,
        "reserved_objects": u.reserved_objects,
        "quota_bytes": q.bytes,
        "quota_objects": q.objects,
        "quota_override": { "bytes": u.quota_bytes, "objects": u.quota_objects },
    })
}
