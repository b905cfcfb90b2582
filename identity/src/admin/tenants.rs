//! `/admin/tenants…`: tenants (create, list, read, update the name and policy, suspend,
//! activate, delete). A tenant's users are [`super::users`].
//!
//! Who may call it is decided by [`crate::http::policy`] (written down in
//! `docs/authorization.md`): platform administrators everything; a tenant's Owners and Admins
//! (`admin.tenant`) their own tenant only — any other tenant id answers 404 exactly like a
//! tenant that does not exist.

// `Problem` is the handlers' error type, returned by the helpers too.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;
use tansu_shared::Problem;

use crate::AppState;
use crate::admin::audit;
use crate::admin::conflict;
use crate::admin::invalid;
use crate::admin::tenant_for;
use crate::admin::{json_body, store_failed};
use crate::events::TENANT_CHANGE;
use crate::http::{Action, Caller};
use crate::paging::{Sort, SortQuery, next_cursor};
use crate::store::tenants::TenantRow;
use crate::store::{new_id, now_ms};
use crate::tenants::{self, STATUS_ACTIVE, STATUS_DELETED, STATUS_SUSPENDED, Tenant, TenantPolicy};
use serde_json::json;
use tansu_shared::admin_api::{NewTenant, Page, TenantUpdate};

// ---------------------------------------------------------------- tenants

fn tenant_problems(t: &TenantRow, policy: &TenantPolicy) -> Vec<String> {
    let mut v = Vec::new();
    if !tenants::valid_slug(&t.slug) {
        v.push("slug: 3 to 63 characters of a-z 0-9 -, not a UUID".into());
    }
    if !tenants::valid_name(&t.name) {
        v.push("name: required, at most 200 characters".into());
    }
    if ![STATUS_ACTIVE, STATUS_SUSPENDED, STATUS_DELETED].contains(&t.status.as_str()) {
        v.push("status: active, suspended or deleted".into());
    }
    v.extend(tenants::policy_problems(policy));
    v
}

pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(&Action::CreateTenant)?;
    let new: NewTenant = json_body(body).await?;
    let policy = new.policy.unwrap_or_default();
    let now = now_ms();
    let row = TenantRow {
        id: new_id(),
        slug: new.slug,
        name: new.name.trim().to_owned(),
        status: STATUS_ACTIVE.into(),
        policy: serde_json::to_string(&policy).map_err(|e| store_failed(&e))?,
        created_at: now,
        updated_at: now,
    };
    let problems = tenant_problems(&row, &policy);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    match state.store.insert_tenant(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(conflict("a tenant with this slug exists"));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    // A gateway asked for this slug before it existed may have cached "no such tenant".
    state.tenant_changed(&row.id, &row.slug).await;
    tracing::info!(tenant = %row.id, slug = %row.slug, "tenant created");
    audit(
        &state,
        &caller,
        Some(&row.id),
        TENANT_CHANGE,
        json!({"action": "create", "slug": row.slug}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(Tenant::from(&row))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) after: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) search: Option<String>,
    pub(crate) sort: Option<String>,
    pub(crate) order: Option<String>,
}

impl PageQuery {
    pub(crate) fn limit(&self) -> i64 {
        self.limit.unwrap_or(100).clamp(1, 500)
    }

    /// The validated sort of the page (`allowed`: name → SQL expression).
    pub(crate) fn sort(&self, allowed: &[(&str, &'static str)]) -> Result<Sort, Problem> {
        Sort::parse(
            &SortQuery {
                sort: self.sort.clone(),
                order: self.order.clone(),
                after: self.after.clone(),
            },
            allowed,
        )
    }
}

/// A page of a sorted list and the cursor of the next one.
fn page_of<R, V>(
    rows: &[R],
    limit: i64,
    sort: &Sort,
    key_and_id: impl Fn(&R) -> (String, String),
    view: impl Fn(&R) -> V,
) -> Json<Page<V>> {
    let next_after = next_cursor(rows, limit, sort, key_and_id);
    Json(Page {
        items: rows.iter().map(view).collect(),
        next_after,
    })
}

/// The sort keys of the tenant list (`created` = id, UUIDv7 creation order). Raw columns, so
/// a cursor holds exactly the stored value the keyset compares with.
const TENANT_SORTS: &[(&str, &str)] = &[
    ("created", ""),
    ("name", "name"),
    ("slug", "slug"),
    ("status", "status"),
];

pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Tenant>>, Problem> {
    caller.may(&Action::ListTenants)?;
    let (limit, sort) = (q.limit(), q.sort(TENANT_SORTS)?);
    let rows = state
        .store
        .list_tenants(&sort, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let key = q.sort.clone().unwrap_or_default();
    Ok(page_of(
        &rows,
        limit,
        &sort,
        |r| {
            let k = match key.as_str() {
                "name" => r.name.clone(),
                "slug" => r.slug.clone(),
                "status" => r.status.clone(),
                _ => String::new(),
            };
            (k, r.id.clone())
        },
        |r| Tenant::from(r),
    ))
}

pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(Tenant::from(
        &tenant_for(&state, &caller, &Action::ReadTenant(&tid), &tid).await?,
    )))
}

pub(crate) async fn save_tenant(
    state: &AppState,
    caller: &Caller,
    mut row: TenantRow,
    update: TenantUpdate,
) -> Result<TenantRow, Problem> {
    let mut policy = tenants::policy_of(&row);
    if let Some(v) = update.slug {
        row.slug = v;
    }
    if let Some(v) = update.name {
        row.name = v.trim().to_owned();
    }
    if let Some(v) = update.status {
        row.status = v;
    }
    if let Some(v) = update.policy {
        policy = v;
    }
    row.policy = serde_json::to_string(&policy).map_err(|e| store_failed(&e))?;
    row.updated_at = now_ms();
    let problems = tenant_problems(&row, &policy);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let updated = state.store.update_tenant(&row).await;
    state.tenant_changed(&row.id, &row.slug).await;
    match updated {
        Ok(true) => {}
        Ok(false) => return Err(Problem::not_found()),
        Err(e) if e.is_unique_violation() => {
            return Err(conflict("a tenant with this slug exists"));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %row.id, status = %row.status, "tenant updated");
    audit(
        state,
        caller,
        Some(&row.id),
        TENANT_CHANGE,
        json!({"action": "update", "status": row.status, "slug": row.slug}),
    )
    .await;
    Ok(row)
}

/// Platform admins change anything; a tenant's own admins (Owner/Admin) change only its
/// policy: name, slug and status stay the platform's (a tenant cannot reactivate or rename
/// itself). Another tenant answers 404, as everywhere.
pub(crate) async fn update_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Json<Tenant>, Problem> {
    let row = tenant_for(&state, &caller, &Action::UpdateTenantPolicy(&tid), &tid).await?;
    let update: TenantUpdate = json_body(body).await?;
    if update.slug.is_some() || update.name.is_some() || update.status.is_some() {
        caller.may(&Action::ChangeTenantIdentity).map_err(|_| {
            Problem::forbidden("tenant administrators change only their tenant's policy")
        })?;
    }
    let row = save_tenant(&state, &caller, row, update).await?;
    Ok(Json(Tenant::from(&row)))
}

/// The route setting the tenant's status (platform admins only): suspend, activate and
/// delete (marks the tenant deleted: its rows stay for the record; it signs nobody in).
pub(crate) fn set_status(method: MethodFilter, status: &'static str) -> MethodRouter<AppState> {
    on(
        method,
        move |State(state): State<AppState>, caller: Caller, Path(tid): Path<String>| async move {
            let row = tenant_for(&state, &caller, &Action::ChangeTenantIdentity, &tid).await?;
            let update = TenantUpdate {
                status: Some(status.into()),
                ..TenantUpdate::default()
            };
            let row = save_tenant(&state, &caller, row, update).await?;
            Ok::<_, Problem>(Json(Tenant::from(&row)))
        },
    )
}

// ---------------------------------------------------------------- users
