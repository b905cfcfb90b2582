//! `/admin/tenants/{tid}/roles…`: a tenant's custom roles (see [`crate::roles`] for what a role
//! grants). The built-in roles are listed but cannot be changed or deleted; a role in use
//! cannot be deleted (409). Tenant admins manage their own tenant's roles only.

use crate::AppState;
use crate::admin::{audit, conflict, invalid, tenant_for};
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::events::ROLE_CHANGE;
use crate::http::{Action, Caller};
use crate::roles::valid_name;
use crate::scopes;
use crate::store::now_ms;
use crate::store::roles::RoleRow;
use crate::tenants::ROLES;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{Items, NewRole, Role, RoleUpdate};

fn view(r: &RoleRow) -> Role {
    Role {
        name: r.name.clone(),
        description: r.description.clone(),
        scopes: r.scopes.clone(),
        builtin: false,
        created_at: Some(rfc3339(r.created_at)),
        updated_at: Some(rfc3339(r.updated_at)),
    }
}

fn builtin_view(name: &str) -> Role {
    Role {
        name: name.to_owned(),
        description: format!("built-in role {name}"),
        scopes: vec!["*".into()],
        builtin: true,
        created_at: None,
        updated_at: None,
    }
}

fn role_problems(description: &str, scope_list: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        v.push("description: at most 500 characters".into());
    }
    if scope_list.len() > 64 {
        v.push("scopes: at most 64".into());
    }
    // `admin.full` is the platform's; everything else of the catalogue may be granted.
    if let Some(bad) = scope_list
        .iter()
        .find(|s| !scopes::is_known(s, false) || s.as_str() == scopes::ADMIN_FULL)
    {
        v.push(format!(
            "scopes: unknown scope {:?}",
            bad.chars().take(64).collect::<String>()
        ));
    }
    v
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub(crate) async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<Items<Role>>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageRoles(&tid), &tid).await?;
    let mut items: Vec<Role> = ROLES.iter().map(|r| builtin_view(r)).collect();
    items.extend(
        state
            .store
            .tenant_roles(&tenant.id)
            .await
            .map_err(|e| store_failed(&e))?
            .iter()
            .map(view),
    );
    Ok(Json(Items { items }))
}

pub(crate) async fn get_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
) -> Result<Json<Role>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageRoles(&tid), &tid).await?;
    if let Some(b) = ROLES.iter().find(|r| **r == name) {
        return Ok(Json(builtin_view(b)));
    }
    let role = state
        .store
        .tenant_role(&tenant.id, &name)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    Ok(Json(view(&role)))
}

pub(crate) async fn create_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageRoles(&tid), &tid).await?;
    let new: NewRole = json_body(body).await?;
    let mut problems = Vec::new();
    if !valid_name(&new.name) {
        problems
            .push("name: 1 to 64 characters of A-Z a-z 0-9 _ . -, not a built-in role".to_owned());
    }
    problems.extend(role_problems(&new.description, &new.scopes));
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let now = now_ms();
    let row = RoleRow {
        tenant_id: tenant.id.clone(),
        name: new.name,
        description: new.description.trim().to_owned(),
        scopes: dedup(new.scopes),
        created_at: now,
        updated_at: now,
    };
    match state.store.insert_tenant_role(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(conflict("the role exists")),
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %tenant.id, role = %row.name, by = %caller.subject(), "role created");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        ROLE_CHANGE,
        json!({"action": "create_role", "role": row.name, "scopes": row.scopes}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view(&row))).into_response())
}

fn builtin_refused() -> Problem {
    Problem::forbidden("built-in roles cannot be changed or deleted")
}

pub(crate) async fn update_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Role>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageRoles(&tid), &tid).await?;
    if ROLES.contains(&name.as_str()) {
        return Err(builtin_refused());
    }
    let update: RoleUpdate = json_body(body).await?;
    let mut row = state
        .store
        .tenant_role(&tenant.id, &name)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    if let Some(d) = update.description {
        row.description = d.trim().to_owned();
    }
    if let Some(s) = update.scopes {
        row.scopes = dedup(s);
    }
    let problems = role_problems(&row.description, &row.scopes);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    row.updated_at = now_ms();
    if !state
        .store
        .update_tenant_role(&row)
        .await
        .map_err(|e| store_failed(&e))?
    {
        return Err(Problem::not_found());
    }
    tracing::info!(tenant = %tenant.id, role = %row.name, by = %caller.subject(), "role updated");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        ROLE_CHANGE,
        json!({"action": "update_role", "role": row.name, "scopes": row.scopes}),
    )
    .await;
    Ok(Json(view(&row)))
}

pub(crate) async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageRoles(&tid), &tid).await?;
    if ROLES.contains(&name.as_str()) {
        return Err(builtin_refused());
    }
    match state
        .store
        .delete_tenant_role(&tenant.id, &name)
        .await
        .map_err(|e| store_failed(&e))?
    {
        None => return Err(Problem::not_found()),
        Some(false) => return Err(conflict("members still have this role")),
        Some(true) => {}
    }
    tracing::info!(tenant = %tenant.id, role = %name, by = %caller.subject(), "role deleted");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        ROLE_CHANGE,
        json!({"action": "delete_role", "role": name}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
