//! Invitations: adding an account that exists already creates a pending invitation (202, with
//! nothing about the account), accepted or declined by the invitee at `/account/invitations`.
//! `GET /admin/tenants/{tid}/invitations` lists a tenant's pending ones,
//! `DELETE …/{id}` withdraws one. Invitations expire after 14 days.

use crate::AppState;
use crate::admin::audit;
use crate::admin::found;
use crate::admin::store_failed;
use crate::admin::tenant_for;
use crate::clients::rfc3339;
use crate::events::USER_CHANGE;
use crate::http::{Action, Caller};
use crate::store::invitations::InvitationRow;
use crate::store::tenants::TenantRow;
use crate::store::{new_id, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{AddedMember, Invitation, Items};

/// How long an invitation waits for its invitee.
const INVITATION_LIFETIME_MS: i64 = 14 * 24 * 3600 * 1000;

/// An invitation as the tenant's admin API shows it.
impl From<&InvitationRow> for Invitation {
    fn from(i: &InvitationRow) -> Self {
        Self {
            id: i.id.clone(),
            tenant_id: i.tenant_id.clone(),
            email: i.email.clone(),
            roles: i.roles.clone(),
            status: "pending".into(),
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
        }
    }
}

/// Invites the account with `email` (which exists): 202 with the invitation. The answer is
/// the same whoever the account is (a platform administrator's invitation is stored like any
/// other, and can never be accepted), and says nothing about it.
pub(crate) async fn invite(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantRow,
    email: String,
    roles: Vec<String>,
) -> Result<Response, Problem> {
    let now = now_ms();
    let row = InvitationRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        email,
        roles,
        invited_by: caller.event_actor(),
        created_at: now,
        expires_at: now + INVITATION_LIFETIME_MS,
    };
    state
        .store
        .upsert_invitation(&row)
        .await
        .map_err(|e| store_failed(&e))?;
    audit(
        state,
        caller,
        Some(&tenant.id),
        USER_CHANGE,
        json!({"action": "invite", "invitation": row.id, "roles": row.roles}),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(AddedMember::Invited(Invitation::from(&row))),
    )
        .into_response())
}

pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<Items<Invitation>>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ReadMembers(&tid), &tid).await?;
    let rows = state
        .store
        .tenant_invitations(&tenant.id, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    Ok(Json(Items {
        items: rows.iter().map(Invitation::from).collect(),
    }))
}

pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let add = Action::AddMember {
        tid: &tid,
        grants_owner: false,
    };
    let tenant = tenant_for(&state, &caller, &add, &tid).await?;
    found(state.store.delete_invitation(&tenant.id, &id).await)?;
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        USER_CHANGE,
        json!({"action": "revoke_invitation", "invitation": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
