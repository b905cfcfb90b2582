//! `/admin/tenants/{tid}/users/{uid}/passkeys…`: a member's passkeys in the tenant, listed
//! (as a member is read: `Action::ReadMember`) and removed (as the identity's other
//! credentials are changed: `Action::ChangeIdentity`, its home tenant or a platform
//! administrator). Only the passkeys registered for this tenant are seen; a removal is a
//! security event of the tenant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::UserPasskey;

use crate::AppState;
use crate::admin::users::{member, member_identity};
use crate::admin::{audit, store_failed};
use crate::clients::rfc3339;
use crate::events;
use crate::http::Caller;
use crate::store::passkeys::PasskeyRow;

impl From<&PasskeyRow> for UserPasskey {
    fn from(p: &PasskeyRow) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
            backup_eligible: p.backup_eligible,
            backup_state: p.backup_state,
        }
    }
}

/// `GET /admin/tenants/{tid}/users/{uid}/passkeys`.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<Json<Vec<UserPasskey>>, Problem> {
    let (tenant, u, _) = member(&state, &caller, &tid, &uid).await?;
    let rows = state
        .store
        .passkeys_of(&u.id, Some(&tenant.id))
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Json(rows.iter().map(UserPasskey::from).collect()))
}

/// `DELETE /admin/tenants/{tid}/users/{uid}/passkeys/{id}`.
pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid, id)): Path<(String, String, String)>,
) -> Result<StatusCode, Problem> {
    let (tenant, u, _) = member_identity(&state, &caller, &tid, &uid).await?;
    let removed = state
        .store
        .delete_passkey(&id, &u.id, Some(&tenant.id))
        .await
        .map_err(|e| store_failed(&e))?;
    if !removed {
        return Err(Problem::not_found());
    }
    tracing::info!(tenant = %tenant.id, user = %u.id, passkey = %id, by = %caller.subject(), "passkey removed");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        events::PASSKEY_CHANGE,
        json!({"action": "remove", "user": u.id, "passkey": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
