//! The upstream identities linked to a member in a tenant (sign-in through the tenant's external
//! providers): `GET /admin/tenants/{tid}/users/{uid}/identities` and `DELETE …/identities/{id}`.
//!
//! Reading them is reading the member ([`crate::http::Action::ReadMember`]); removing one is
//! allowed to whoever may remove the member ([`crate::http::Action::RemoveMember`]): a link is
//! a way into this tenant, less than the membership itself. Only the tenant's own links are
//! listed or removed; another tenant's answer 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::LinkedIdentity;

use crate::AppState;
use crate::admin::users::{member, target};
use crate::admin::{audit, store_failed};
use crate::clients::rfc3339;
use crate::http::{Action, Caller};
use crate::store::federation::FederatedIdentityRow;

impl From<&FederatedIdentityRow> for LinkedIdentity {
    fn from(f: &FederatedIdentityRow) -> Self {
        Self {
            id: f.id.clone(),
            tenant_id: f.tenant_id.clone(),
            provider_id: f.provider_id.clone(),
            issuer: f.issuer.clone(),
            subject: f.subject.clone(),
            email: f.email.clone(),
            created_at: rfc3339(f.created_at),
            last_used_at: rfc3339(f.last_used_at),
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<Json<Vec<LinkedIdentity>>, Problem> {
    let (tenant, u, _) = member(&state, &caller, &tid, &uid).await?;
    let rows = state
        .store
        .federated_identities_of_user(&u.id, Some(&tenant.id))
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Json(rows.iter().map(LinkedIdentity::from).collect()))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid, id)): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, m) = member(&state, &caller, &tid, &uid).await?;
    caller.may(&Action::RemoveMember {
        tid: &tid,
        target: target(&u, &m),
    })?;
    let removed = state
        .store
        .delete_federated_identity(&u.id, Some(&tenant.id), &id)
        .await
        .map_err(|e| store_failed(&e))?;
    if !removed {
        return Err(Problem::not_found());
    }
    tracing::info!(tenant = %tenant.id, user = %u.id, by = %caller.subject(), "linked identity removed");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        crate::federation::FEDERATION_UNLINK,
        json!({"user": u.id, "identity": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
