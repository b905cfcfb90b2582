//! `/admin/tenants/{tid}/users/{uid}/roles…`: a member's roles (set all, assign one, revoke
//! one). Roles are ordered (Owner > Admin > member): only an Owner grants or takes `Owner`, and
//! an Admin cannot change an Owner's roles ([`crate::http::Action::SetRoles`]).

use crate::AppState;
use crate::admin::audit;
use crate::admin::users::check_roles;
use crate::admin::users::member;
use crate::admin::users::member_view;
use crate::admin::users::target;
use crate::admin::{json_body, store_failed};
use crate::events::ROLE_CHANGE;
use crate::http::{Action, Caller, Rank};
use crate::store::tenants::MembershipRow;
use crate::store::users::UserRow;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::Member;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolesBody {
    /// The member's roles, replacing those they had.
    roles: Vec<String>,
}

pub(crate) fn dedup(roles: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in roles {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

pub(crate) async fn save_roles(
    state: &AppState,
    caller: &Caller,
    u: &UserRow,
    mut m: MembershipRow,
    roles: Vec<String>,
) -> Result<Json<Member>, Problem> {
    caller.may(&Action::SetRoles {
        tid: &m.tenant_id,
        target: target(u, &m),
        new_rank: Rank::of(&roles),
    })?;
    check_roles(state, &m.tenant_id, &roles).await?;
    m.roles = dedup(roles);
    state
        .store
        .upsert_membership(&m)
        .await
        .map_err(|e| store_failed(&e))?;
    tracing::info!(tenant = %m.tenant_id, user = %u.id, roles = ?m.roles, by = %caller.subject(), "roles changed");
    audit(
        state,
        caller,
        Some(&m.tenant_id),
        ROLE_CHANGE,
        json!({"user": u.id, "roles": m.roles}),
    )
    .await;
    Ok(Json(member_view(u, &m)))
}

pub(crate) async fn set_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Member>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let b: RolesBody = json_body(body).await?;
    save_roles(&state, &caller, &u, m, b.roles).await
}

pub(crate) async fn assign_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid, role)): Path<(String, String, String)>,
) -> Result<Json<Member>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let mut roles = m.roles.clone();
    roles.push(role);
    save_roles(&state, &caller, &u, m, roles).await
}

pub(crate) async fn revoke_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, uid, role)): Path<(String, String, String)>,
) -> Result<Json<Member>, Problem> {
    let (_, u, m) = member(&state, &caller, &tid, &uid).await?;
    let roles: Vec<String> = m.roles.iter().filter(|r| **r != role).cloned().collect();
    save_roles(&state, &caller, &u, m, roles).await
}
