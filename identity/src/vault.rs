//! The secrets vault (issue #4): per-tenant named secrets with versions.
//!
//! Envelope encryption: each tenant has a random 256-bit data key, stored only sealed with
//! AES-256-GCM under the master key (AAD `tansu-dek:<tenant>`); every secret version is sealed
//! under the tenant's data key (AAD `<tenant>\n<name>\n<version>`, so a ciphertext moved to
//! another row does not open). Values never appear in listings or logs. A master-key rotation
//! re-wraps only the data keys ([`crate::master_keys`]); the values stay as they are.
//!
//! Access: `secrets.read` (list, read) and `secrets.write` (put = new version, revoke) in a
//! token whose `tid` is the tenant — e.g. a tenant's client-credentials client — or a platform
//! admin. Another tenant's secrets answer 404. Every read and write is a security event.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use zeroize::Zeroizing;

use crate::AppState;
use crate::admin::{json_body, store_failed};
use crate::clients::rfc3339;
use crate::crypto::{self, MasterKey};
use crate::events::{self, Event};
use crate::http::{Action, Caller};
use crate::store::now_ms;

pub const SECRETS_READ: &str = "secrets.read";
pub const SECRETS_WRITE: &str = "secrets.write";
const MAX_VALUE_BYTES: usize = 32 * 1024;

pub fn router() -> crate::http::Routes<AppState> {
    crate::http::Routes::new()
        .route("/admin/tenants/{tid}/secrets", get(list))
        .route("/admin/tenants/{tid}/secrets/{name}", get(read).put(put))
        .route("/admin/tenants/{tid}/secrets/{name}/revoke", post(revoke))
}

/// The tenant `tid`, once the policy allows `action` on it; a suspended or deleted tenant's
/// vault is closed to all but platform administrators (404).
async fn tenant(
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
async fn event(
    state: &AppState,
    caller: &Caller,
    tid: &str,
    kind: &str,
    outcome: &str,
    details: serde_json::Value,
) {
    events::record(
        state,
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

fn valid_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(crate) fn dek_aad(tid: &str) -> Vec<u8> {
    format!("tansu-dek:{tid}").into_bytes()
}

fn value_aad(tid: &str, name: &str, version: i64) -> Vec<u8> {
    format!("{tid}\n{name}\n{version}").into_bytes()
}

/// A new tenant's vault, sealed before it is stored (registration stores it in the same
/// transaction as the tenant).
pub struct SealedVault {
    pub wrapped_key: Vec<u8>,
    pub master_key_id: String,
    /// (name, version 1, ciphertext)
    pub secrets: Vec<(String, i64, Vec<u8>)>,
}

/// Seals the first version of each secret of a tenant that has no data key yet, under a new
/// data key.
pub fn seal_new_tenant(
    state: &AppState,
    tid: &str,
    secrets: &[(&str, &[u8])],
) -> anyhow::Result<SealedVault> {
    let master = state.keys.master();
    let raw = Zeroizing::new(crypto::random_bytes(32)?);
    let wrapped_key = master.seal(&raw, &dek_aad(tid))?;
    let dek = MasterKey::from_bytes(&raw)?;
    let mut sealed = Vec::with_capacity(secrets.len());
    for (name, value) in secrets {
        anyhow::ensure!(valid_name(name), "invalid secret name");
        sealed.push((
            (*name).to_owned(),
            1,
            dek.seal(value, &value_aad(tid, name, 1))?,
        ));
    }
    Ok(SealedVault {
        wrapped_key,
        master_key_id: master.id().to_owned(),
        secrets: sealed,
    })
}

/// The tenant's data key, created on first use.
pub(crate) async fn data_key(state: &AppState, tid: &str) -> anyhow::Result<MasterKey> {
    let master = state.keys.master();
    for _ in 0..3 {
        if let Some((wrapped, master_id)) = state.store.data_key(tid).await? {
            let raw = master.open(&master_id, &wrapped, &dek_aad(tid))?;
            return MasterKey::from_bytes(&raw);
        }
        let raw = Zeroizing::new(crypto::random_bytes(32)?);
        let wrapped = master.seal(&raw, &dek_aad(tid))?;
        match state
            .store
            .insert_data_key(tid, &wrapped, master.id(), now_ms())
            .await
        {
            Ok(()) => return MasterKey::from_bytes(&raw),
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not create the tenant's data key")
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    tenant(&state, &caller, &Action::ReadSecrets(&tid), &tid).await?;
    let rows = state
        .store
        .list_secrets(&tid)
        .await
        .map_err(|e| store_failed(&e))?;
    let mut items: Vec<serde_json::Value> = Vec::new();
    for r in rows {
        let version = json!({
            "version": r.version,
            "created_at": rfc3339(r.created_at),
            "revoked": r.revoked_at.is_some(),
        });
        match items.last_mut() {
            Some(last) if last["name"] == r.name.as_str() => {
                if let Some(v) = last["versions"].as_array_mut() {
                    v.push(version);
                }
            }
            _ => items.push(json!({ "name": r.name, "versions": [version] })),
        }
    }
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
}

/// Stores a new version (creating the secret, or rotating it).
async fn put(
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
    let b: PutBody = json_body(body).await?;
    let value = Zeroizing::new(b.value);
    if value.len() > MAX_VALUE_BYTES {
        return Err(Problem::payload_too_large());
    }
    let dek = data_key(&state, &tid).await.map_err(|e| store_failed(&e))?;
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
                return Ok((
                    StatusCode::CREATED,
                    Json(json!({"name": name, "version": version})),
                )
                    .into_response());
            }
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(store_failed(&e)),
        }
    }
    Err(Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail("retry"))
}

#[derive(Deserialize)]
struct ReadQuery {
    version: Option<i64>,
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, name)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
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
    let dek = data_key(&state, &tid).await.map_err(|e| store_failed(&e))?;
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
    Ok(Json(
        json!({"name": row.name, "version": row.version, "value": value}),
    ))
}

/// Revokes every version of the secret: none can be read any more.
async fn revoke(
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
