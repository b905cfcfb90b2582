//! External OIDC providers per tenant: `/admin/tenants/{tid}/providers…` (create, list, read,
//! update, enable/disable, delete, test).
//!
//! Who may call it ([`crate::http::Action::ManageProviders`]): platform admins for every
//! tenant, tenant admins for their own tenant only; any other tenant id, and any provider id of
//! another tenant, answers 404 like one that does not exist. The client secret is write-only
//! (sealed, see [`crate::providers`]); the API only ever says `has_secret`.
//!
//! `POST …/{id}/test` fetches the provider's discovery document through the guarded fetch of
//! [`crate::providers::check_discovery`]. Every outcome is a `200` with `ok: false` and a
//! reason, never a 5xx: the provider being wrong is not our failure.

use crate::AppState;
use crate::admin::{audit, found, tenant_for};
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::http::{Action, Caller};
use crate::providers::DiscoveryCheck;
use crate::providers::MAX_SECRET_BYTES;
use crate::providers::PROVIDER_CHANGE;
use crate::providers::check_discovery;
use crate::providers::default_scopes;
use crate::providers::discovery_url;
use crate::providers::issuer_problems;
use crate::providers::mapped_roles;
use crate::providers::row_problems;
use crate::providers::secret_aad;
use crate::store::providers::ProviderRow;
use crate::store::{new_id, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{NewProvider, Page, Provider, ProviderUpdate};

/// A provider as the API shows it (never the secret).
impl From<&ProviderRow> for Provider {
    fn from(p: &ProviderRow) -> Self {
        Self {
            id: p.id.clone(),
            tenant_id: p.tenant_id.clone(),
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            has_secret: p.client_secret.is_some(),
            scopes: p.scopes.clone(),
            enabled: p.enabled,
            sign_in: p.sign_in.clone(),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

fn invalid(problems: Vec<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid provider",
    )
    .with_detail(problems.join("; "))
    .with_extension("errors", problems)
}

fn conflict() -> Problem {
    Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
        .with_detail("the tenant already has a provider with this issuer")
}

pub(crate) async fn create_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    body: Body,
) -> Result<Response, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageProviders(&tid), &tid).await?;
    let new: NewProvider = json_body(body).await?;
    let now = now_ms();
    let mut row = ProviderRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        name: new.name.trim().to_owned(),
        issuer: new.issuer.trim().to_owned(),
        client_id: new.client_id.trim().to_owned(),
        client_secret: None,
        scopes: new.scopes.unwrap_or_else(default_scopes),
        enabled: new.enabled.unwrap_or(true),
        sign_in: new.sign_in.unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    let problems = row_problems(&row, state.config.dev_mode);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    crate::admin::users::check_roles(&state, &row.tenant_id, &mapped_roles(&row)).await?;
    if let Some(secret) = new.client_secret.as_deref().filter(|s| !s.is_empty()) {
        row.client_secret = Some(seal_secret(&state, &tenant.id, &row.id, secret).await?);
    }
    match state.store.insert_provider(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(conflict()),
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %tenant.id, provider = %row.id, by = %caller.subject(), "external provider created");
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        PROVIDER_CHANGE,
        json!({"action": "create", "provider": row.id, "issuer": row.issuer}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(Provider::from(&row))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    after: Option<String>,
    limit: Option<i64>,
}

pub(crate) async fn list_providers(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Provider>>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ManageProviders(&tid), &tid).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .store
        .list_providers(&tenant.id, q.after.as_deref(), limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let next = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(Page {
        items: rows.iter().map(Provider::from).collect(),
        next_after: next,
    }))
}

/// The provider `id` of tenant `tid` if the caller may manage the tenant; else 404.
pub(crate) async fn load(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    id: &str,
) -> Result<ProviderRow, Problem> {
    let tenant = tenant_for(state, caller, &Action::ManageProviders(tid), tid).await?;
    state
        .store
        .provider(&tenant.id, id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)
}

pub(crate) async fn get_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<Provider>, Problem> {
    Ok(Json(Provider::from(
        &load(&state, &caller, &tid, &id).await?,
    )))
}

pub(crate) async fn save(
    state: &AppState,
    caller: &Caller,
    mut row: ProviderRow,
    update: ProviderUpdate,
    action: &str,
) -> Result<Json<Provider>, Problem> {
    if let Some(v) = update.name {
        row.name = v.trim().to_owned();
    }
    if let Some(v) = update.issuer {
        row.issuer = v.trim().to_owned();
    }
    if let Some(v) = update.client_id {
        row.client_id = v.trim().to_owned();
    }
    if let Some(v) = update.scopes {
        row.scopes = v;
    }
    if let Some(v) = update.enabled {
        row.enabled = v;
    }
    if let Some(v) = update.sign_in {
        row.sign_in = v;
    }
    let problems = row_problems(&row, state.config.dev_mode);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    crate::admin::users::check_roles(state, &row.tenant_id, &mapped_roles(&row)).await?;
    let secret_changed = match (update.client_secret.as_deref(), update.remove_secret) {
        (Some(s), _) if !s.is_empty() => {
            row.client_secret = Some(seal_secret(state, &row.tenant_id, &row.id, s).await?);
            true
        }
        (_, Some(true)) => {
            row.client_secret = None;
            true
        }
        _ => false,
    };
    row.updated_at = now_ms();
    match state.store.update_provider(&row).await {
        Ok(true) => {}
        Ok(false) => return Err(Problem::not_found()),
        Err(e) if e.is_unique_violation() => return Err(conflict()),
        Err(e) => return Err(store_failed(&e)),
    }
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, action, by = %caller.subject(), "external provider changed");
    audit(
        state,
        caller,
        Some(&row.tenant_id),
        PROVIDER_CHANGE,
        json!({"action": action, "provider": row.id, "issuer": row.issuer,
               "enabled": row.enabled, "secret_changed": secret_changed}),
    )
    .await;
    Ok(Json(Provider::from(&row)))
}

pub(crate) async fn update_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Provider>, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    let update: ProviderUpdate = json_body(body).await?;
    save(&state, &caller, row, update, "update").await
}

/// `POST …/disable` or `…/enable` (`enabled`).
pub(crate) fn set_enabled(enabled: bool) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              caller: Caller,
              Path((tid, id)): Path<(String, String)>| async move {
            let row = load(&state, &caller, &tid, &id).await?;
            let update = ProviderUpdate {
                enabled: Some(enabled),
                ..ProviderUpdate::default()
            };
            let action = if enabled { "enable" } else { "disable" };
            save(&state, &caller, row, update, action).await
        },
    )
}

pub(crate) async fn delete_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    found(state.store.delete_provider(&row.tenant_id, &row.id).await)?;
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, by = %caller.subject(), "external provider deleted");
    audit(
        &state,
        &caller,
        Some(&row.tenant_id),
        PROVIDER_CHANGE,
        json!({"action": "delete", "provider": row.id, "issuer": row.issuer}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tests the provider's discovery document; the result is JSON (`ok`, `reason`, endpoints).
pub(crate) async fn test_provider(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, id)): Path<(String, String)>,
) -> Result<Json<DiscoveryCheck>, Problem> {
    let row = load(&state, &caller, &tid, &id).await?;
    // Re-checked at use: the stored URL may predate a change of mode.
    if let Some(problem) = issuer_problems(&row.issuer, state.config.dev_mode)
        .into_iter()
        .next()
    {
        return Ok(Json(DiscoveryCheck {
            ok: false,
            discovery_url: discovery_url(&row.issuer),
            reason: Some(problem),
            http_status: None,
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            elapsed_ms: 0,
        }));
    }
    let mut check = check_discovery(&row.issuer, state.config.dev_mode).await;
    tracing::info!(tenant = %row.tenant_id, provider = %row.id, ok = check.ok, "external provider discovery tested");
    if !caller.is_platform() {
        // No oracle for a tenant: neither the upstream's status, nor its timing, nor why a
        // connection failed.
        check.http_status = None;
        check.elapsed_ms = 0;
        if check.issuer.is_none() && !check.ok {
            check.reason = Some("the provider's discovery document could not be fetched".into());
        }
    }
    Ok(Json(check))
}

async fn seal_secret(
    state: &AppState,
    tid: &str,
    id: &str,
    secret: &str,
) -> Result<Vec<u8>, Problem> {
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(invalid(vec![format!(
            "client_secret: 1 to {MAX_SECRET_BYTES} bytes"
        )]));
    }
    let dek = crate::vault::data_key(&state.store, state.keys.master(), tid)
        .await
        .map_err(|e| store_failed(&e))?;
    dek.seal(secret.as_bytes(), &secret_aad(tid, id))
        .map_err(|e| store_failed(&e))
}
