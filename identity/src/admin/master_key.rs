//! `GET /admin/master-key` (which keys are configured, rows still under a previous key, the
//! re-wrap's progress) and `POST /admin/master-key/rewrap` (starts it in the background).
//! Platform administrators only ([`crate::http::Action::ManageMasterKey`]).

use crate::AppState;
use crate::admin::store_failed;
use crate::http::{Action, Caller};
use crate::master_keys::REWRAP_LEASE;
use crate::master_keys::remaining;
use crate::store::now_ms;
use crate::store::sealed::SEALED_COLUMNS;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use tansu_shared::Problem;
use tansu_shared::admin_api::MasterKey;

/// The re-wrap state: `done` (nothing under a previous key), `running` (here or on another
/// replica, by the lease), or `pending` (rows remain and nothing runs: start it).
pub(crate) async fn status_json(state: &AppState) -> anyhow::Result<MasterKey> {
    let keys = state.keys.master();
    let rows = remaining(&state.store, keys.id()).await?;
    let mut by_table = BTreeMap::new();
    for col in SEALED_COLUMNS {
        let n: i64 = rows
            .iter()
            .filter(|(c, _, _)| *c == col)
            .map(|(_, _, n)| n)
            .sum();
        by_table.insert(col.table.to_owned(), n);
    }
    let total: i64 = rows.iter().map(|(_, _, n)| n).sum();
    let lease_held = state
        .store
        .lease_holder(REWRAP_LEASE)
        .await?
        .is_some_and(|(_, expires)| expires > now_ms());
    let running = state.rewrap.running.load(Ordering::Acquire) || lease_held;
    let phase = if total == 0 {
        "done"
    } else if running {
        "running"
    } else {
        "pending"
    };
    Ok(MasterKey {
        current_key_id: keys.id().to_owned(),
        previous_key_ids: keys.previous_ids().into_iter().map(str::to_owned).collect(),
        state: phase.to_owned(),
        remaining: total,
        remaining_by_table: by_table,
        last_run: state.rewrap.last(),
    })
}

/// `GET /admin/master-key`: the key ids and the re-wrap's state.
pub(crate) async fn status(
    State(state): State<AppState>,
    admin: Caller,
) -> Result<Response, Problem> {
    admin.may(&Action::ManageMasterKey)?;
    let body = status_json(&state).await.map_err(|e| store_failed(&e))?;
    Ok(Json(body).into_response())
}

/// `POST /admin/master-key/rewrap`: starts the re-wrap in the background (202; idempotent).
pub(crate) async fn start_rewrap(
    State(state): State<AppState>,
    admin: Caller,
) -> Result<Response, Problem> {
    admin.may(&Action::ManageMasterKey)?;
    let actor = admin.event_actor();
    // Already running here: nothing more to start (the request is idempotent).
    let _ = state.spawn_rewrap(actor);
    let body = status_json(&state).await.map_err(|e| store_failed(&e))?;
    let location = format!("{}admin/master-key", state.config.issuer);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}
