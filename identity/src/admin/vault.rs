//! `/admin/tenants/{tid}/secrets…`: the tenant's vault (see [`crate::vault`]): list names and
//! versions, read, put a new version, revoke. `secrets.read` / `secrets.write` in a token of
//! the tenant (the member's role must still grant it at use), or a platform admin. Another
//! tenant's secrets answer 404. Every read and write is a security event.

use crate::AppState;
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::events::{self, Event};
use crate::http::{Action, Caller};
use crate::store::now_ms;
use crate::vault::data_key;
use crate::vault::valid_name;
use crate::vault::value_aad;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{
    Items, Secret, SecretRead, SecretStored, SecretValue, SecretVersion,
};
use zeroize::Zeroizing;

const MAX_VALUE_BYTES: usize = 32 * 1024;

/// The tenant `tid`, once the policy allows `action` on it; a suspended or deleted tenant's
/// vault is closed to all but platform administrators (404).
pub(crate) async fn tenant(
    state: &AppState,
    caller: &Caller,
    action: &Action<'_>,
    tid: &str,
) -> Result<(), Problem> {
    caller.may(action)?;
    match state.store.tenant_by_id(tid).await {
        Ok(Some(t)) if t.status == crate::tenants::STATUS_ACTIVE || caller.is_platform() => Ok(()),
        Ok(_) => Err(Problem::not_found()),
        Err(e) => Err(store_failed(&e)),
    }
}

/// Records a read or write of the vault.
pub(crate) async fn event(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    kind: &str,
    outcome: &str,
    details: serde_json::Value,
) {
    events::record(
        &state.events,
        &caller.meta,
        Event {
            tenant_id: Some(tid),
            kind,
            actor: caller.event_actor(),
            outcome,
            details,
        },
    )
    .await;
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<Items<Secret>>, Problem> {
    tenant(&state, &caller, &Action::ReadSecrets(&tid), &tid).await?;
    let rows = state
        .store
        .list_secrets(&tid)
        .await
        .map_err(|e| store_failed(&e))?;
    let mut items: Vec<Secret> = Vec::new();
    for r in rows {
        let version = SecretVersion {
            version: r.version,
            created_at: rfc3339(r.created_at),
            revoked: r.revoked_at.is_some(),
        };
        match items.last_mut() {
            Some(last) if last.name == r.name => last.versions.push(version),
            _ => items.push(Secret {
                name: r.name,
                versions: vec![version],
            }),
        }
    }
    Ok(Json(Items { items }))
}

/// Stores a new version (creating the secret, or rotating it).
pub(crate) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    tenant(&state, &caller, &Action::WriteSecrets(&tid), &tid).await?;
    if !valid_name(&name) {
        return Err(Problem::bad_request(
            "name: 1 to 128 characters of A-Z a-z 0-9 - _ .",
        ));
    }
    let b: SecretValue = json_body(body).await?;
    let value = Zeroizing::new(b.value);
    if value.len() > MAX_VALUE_BYTES {
        return Err(Problem::payload_too_large());
    }
    let dek = data_key(&state.store, state.keys.master(), &tid)
        .await
        .map_err(|e| store_failed(&e))?;
    for _ in 0..10 {
        let version = state
            .store
            .latest_secret_version(&tid, &name)
            .await
            .map_err(|e| store_failed(&e))?
            + 1;
        let sealed = dek
            .seal(value.as_bytes(), &value_aad(&tid, &name, version))
            .map_err(|e| store_failed(&e))?;
        match state
            .store
            .insert_secret(&tid, &name, version, &sealed, now_ms())
            .await
        {
            Ok(()) => {
                event(
                    &state,
                    &caller,
                    &tid,
                    events::SECRET_WRITE,
                    "success",
                    json!({"name": name, "version": version}),
                )
                .await;
                return Ok(
                    (StatusCode::CREATED, Json(SecretStored { name, version })).into_response()
                );
            }
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(store_failed(&e)),
        }
    }
    Err(Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail("retry"))
}

#[derive(Deserialize)]
pub(crate) struct ReadQuery {
    version: Option<i64>,
}

pub(crate) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<SecretRead>, Problem> {
    tenant(&state, &caller, &Action::ReadSecrets(&tid), &tid).await?;
    let row = state
        .store
        .secret(&tid, &name, q.version.filter(|v| *v > 0))
        .await
        .map_err(|e| store_failed(&e))?;
    let Some(row) = row.filter(|r| r.revoked_at.is_none()) else {
        event(
            &state,
            &caller,
            &tid,
            events::SECRET_READ,
            "failure",
            json!({"name": name, "version": q.version}),
        )
        .await;
        return Err(Problem::not_found());
    };
    let dek = data_key(&state.store, state.keys.master(), &tid)
        .await
        .map_err(|e| store_failed(&e))?;
    let plain = dek
        .open(&row.ciphertext, &value_aad(&tid, &row.name, row.version))
        .map_err(|e| store_failed(&e))?;
    let value = String::from_utf8(plain.to_vec()).map_err(|e| store_failed(&e))?;
    event(
        &state,
        &caller,
        &tid,
        events::SECRET_READ,
        "success",
        json!({"name": row.name, "version": row.version}),
    )
    .await;
    Ok(Json(SecretRead {
        name: row.name,
        version: row.version,
        value,
    }))
}

/// Revokes every version of the secret: none can be read any more.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    tenant(&state, &caller, &Action::WriteSecrets(&tid), &tid).await?;
    let n = state
        .store
        .revoke_secret(&tid, &name, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    if n == 0 {
        return Err(Problem::not_found());
    }
    event(
        &state,
        &caller,
        &tid,
        events::SECRET_WRITE,
        "success",
        json!({"name": name, "action": "revoke"}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
