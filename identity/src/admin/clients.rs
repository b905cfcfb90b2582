//! `/admin/clients…`: OAuth clients (create, list, read, update, delete, rotate the secret).
//! A client secret is shown once, at creation or rotation; the store keeps its hash. Platform
//! administrators manage every client, a tenant's admins their tenant's clients
//! ([`crate::http::Action::ManageClients`]); a tenant client never gets platform-only scopes.

use crate::AppState;
use crate::admin::audit;
use crate::admin::json_body;
use crate::admin::store_failed;
use crate::clients::{self, Client, ClientType, ClientUpdate, ClientWithSecret, NewClient};
use crate::crypto;
use crate::http::{Action, Caller};
use crate::store::clients::ClientRow;
use crate::store::{new_id, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::admin_api::Page;

pub(crate) async fn create_client(
    State(state): State<AppState>,
    admin: Caller,
    body: Body,
) -> Result<Response, Problem> {
    admin.may(&Action::ManageClients)?;
    let new: NewClient = json_body(body).await?;
    let now = now_ms();
    let confidential = new.client_type == ClientType::Confidential;
    let jwks = new.jwks.as_ref().map(|j| j.to_string());
    let secret = if confidential && jwks.is_none() {
        Some(crypto::random_secret().map_err(|e| store_failed(&e))?)
    } else {
        None
    };
    let row = ClientRow {
        id: new_id(),
        client_id: new.client_id.unwrap_or_else(new_id),
        tenant_id: new.tenant_id.map(|t| t.to_string()),
        name: new.name,
        confidential,
        secret_hash: secret.as_deref().map(clients::hash_secret),
        grant_types: new.grant_types,
        scopes: new.scopes,
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        jwks,
        first_party: new.first_party,
        access_token_lifetime_secs: new
            .access_token_lifetime_secs
            .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
        signing_alg: new
            .signing_alg
            .unwrap_or_else(|| state.config.default_alg().as_str().to_owned()),
        allowed_origins: new.allowed_origins,
        created_at: now,
        updated_at: now,
    };
    let mut problems = clients::validate(&row, state.config.dev_mode);
    if let Some(tid) = &row.tenant_id
        && state
            .store
            .tenant_by_id(tid)
            .await
            .map_err(|e| store_failed(&e))?
            .is_none()
    {
        problems.push("tenant_id: no such tenant".into());
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    match state.store.insert_client(&row).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(Problem::new(StatusCode::CONFLICT, "conflict", "Conflict")
                .with_detail("a client with this client_id exists"));
        }
        Err(e) => return Err(store_failed(&e)),
    }
    // A token request for this id before it existed may have cached "no such client".
    state.client_changed(&row.client_id).await;
    tracing::info!(client_id = %row.client_id, "client created");
    audit(
        &state,
        &admin,
        row.tenant_id.as_deref(),
        crate::events::CLIENT_CHANGE,
        serde_json::json!({"action": "create", "client_id": row.client_id}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(with_secret(&row, secret))).into_response())
}

fn with_secret(row: &ClientRow, secret: Option<String>) -> ClientWithSecret {
    ClientWithSecret {
        client: Client::from(row),
        client_secret: secret,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    after: Option<String>,
    limit: Option<i64>,
}

pub(crate) async fn list_clients(
    State(state): State<AppState>,
    admin: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<Client>>, Problem> {
    admin.may(&Action::ManageClients)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = state
        .store
        .list_clients(q.after.as_deref(), limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let next = if i64::try_from(rows.len()).unwrap_or(0) == limit {
        rows.last().map(|r| r.client_id.clone())
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.iter().map(Client::from).collect(),
        next_after: next,
    }))
}

pub(crate) async fn load(state: &AppState, client_id: &str) -> Result<ClientRow, Problem> {
    state
        .store
        .client_by_client_id(client_id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)
}

pub(crate) async fn get_client(
    State(state): State<AppState>,
    admin: Caller,
    Path(client_id): Path<String>,
) -> Result<Json<Client>, Problem> {
    admin.may(&Action::ManageClients)?;
    Ok(Json(Client::from(&load(&state, &client_id).await?)))
}

pub(crate) async fn update_client(
    State(state): State<AppState>,
    admin: Caller,
    Path(client_id): Path<String>,
    body: Body,
) -> Result<Json<Client>, Problem> {
    admin.may(&Action::ManageClients)?;
    let update: ClientUpdate = json_body(body).await?;
    let mut row = load(&state, &client_id).await?;
    if let Some(v) = update.name {
        row.name = v;
    }
    if let Some(v) = update.grant_types {
        row.grant_types = v;
    }
    if let Some(v) = update.scopes {
        row.scopes = v;
    }
    if let Some(v) = update.redirect_uris {
        row.redirect_uris = v;
    }
    if let Some(v) = update.post_logout_redirect_uris {
        row.post_logout_redirect_uris = v;
    }
    if let Some(v) = update.first_party {
        row.first_party = v;
    }
    if let Some(v) = update.jwks {
        if row.jwks.is_none() {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "not-private-key-jwt",
                "Not a private_key_jwt client",
            )
            .with_detail("only a client registered with jwks can change them"));
        }
        row.jwks = Some(v.to_string());
    }
    if let Some(v) = update.access_token_lifetime_secs {
        row.access_token_lifetime_secs = v.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    }
    if let Some(v) = update.signing_alg {
        row.signing_alg = v;
    }
    if let Some(v) = update.allowed_origins {
        row.allowed_origins = v;
    }
    row.updated_at = now_ms();
    let problems = clients::validate(&row, state.config.dev_mode);
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    save(&state, &admin, &row, "update").await?;
    Ok(Json(Client::from(&row)))
}

pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    admin: Caller,
    Path(client_id): Path<String>,
) -> Result<Json<ClientWithSecret>, Problem> {
    admin.may(&Action::ManageClients)?;
    let mut row = load(&state, &client_id).await?;
    if !row.confidential || row.jwks.is_some() {
        return Err(
            Problem::new(StatusCode::CONFLICT, "no-secret", "Client has no secret")
                .with_detail("public and private_key_jwt clients have no secret"),
        );
    }
    let secret = crypto::random_secret().map_err(|e| store_failed(&e))?;
    row.secret_hash = Some(clients::hash_secret(&secret));
    row.updated_at = now_ms();
    save(&state, &admin, &row, "rotate_secret").await?;
    Ok(Json(with_secret(&row, Some(secret))))
}

pub(crate) async fn delete_client(
    State(state): State<AppState>,
    admin: Caller,
    Path(client_id): Path<String>,
) -> Result<StatusCode, Problem> {
    admin.may(&Action::ManageClients)?;
    let deleted = state
        .store
        .delete_client(&client_id)
        .await
        .map_err(|e| store_failed(&e))?;
    state.client_changed(&client_id).await;
    if deleted {
        tracing::info!(client_id = %client_id, "client deleted");
        audit(
            &state,
            &admin,
            None,
            crate::events::CLIENT_CHANGE,
            serde_json::json!({"action": "delete", "client_id": client_id}),
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found())
    }
}

fn invalid(problems: Vec<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid client",
    )
    .with_detail(problems.join("; "))
    .with_extension("errors", problems)
}

/// Stores a changed client (404 when it is gone), drops it from the token endpoint's cache, and
/// records the change (`action`) as a security event.
async fn save(
    state: &AppState,
    admin: &Caller,
    row: &ClientRow,
    action: &str,
) -> Result<(), Problem> {
    let updated = state
        .store
        .update_client(row)
        .await
        .map_err(|e| store_failed(&e))?;
    state.client_changed(&row.client_id).await;
    if !updated {
        return Err(Problem::not_found());
    }
    tracing::info!(client_id = %row.client_id, action, "client changed");
    audit(
        state,
        admin,
        row.tenant_id.as_deref(),
        crate::events::CLIENT_CHANGE,
        serde_json::json!({"action": action, "client_id": row.client_id}),
    )
    .await;
    Ok(())
}
