//! `/admin/keys…`: rotate the signing keys now, and read the rotation policies and the key
//! ring's state. Platform administrators only ([`crate::http::Action::ManageKeys`]).

use crate::AppState;
use crate::admin::audit;
use crate::admin::store_failed;
use crate::clients::rfc3339;
use crate::http::{Action, Caller};
use crate::keys::KeyState;
use crate::store::now_ms;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tansu_shared::Problem;
use tansu_shared::admin_api::{KeyPolicy, KeyRotation, PendingKey, SigningKey};

/// `POST /admin/keys/rotate-now` → 202: new keys are published now and sign after the lead
/// time; repeated or concurrent requests (on any replica) schedule one rotation.
pub(crate) async fn rotate_keys_now(
    State(state): State<AppState>,
    admin: Caller,
) -> Result<Response, Problem> {
    admin.may(&Action::ManageKeys)?;
    let rotation = state
        .keys
        .rotate_now()
        .await
        .map_err(|e| store_failed(&e))?;
    let pending: Vec<PendingKey> = rotation
        .pending
        .iter()
        .map(|(kid, alg, at)| PendingKey {
            kid: kid.clone(),
            alg: alg.as_str().to_owned(),
            signs_from: rfc3339(*at),
        })
        .collect();
    audit(
        &state,
        &admin,
        None,
        crate::events::KEY_ROTATION,
        serde_json::json!({"action": "rotate_now", "pending": &pending}),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        Json(KeyRotation {
            status: "accepted".into(),
            pending,
        }),
    )
        .into_response())
}

/// `GET /admin/keys/policies`: the rotation policy and every key's state.
pub(crate) async fn key_policies(
    State(state): State<AppState>,
    admin: Caller,
) -> Result<Json<KeyPolicy>, Problem> {
    admin.may(&Action::ManageKeys)?;
    let policy = state.keys.policy();
    let grace = i64::try_from(policy.grace.as_millis()).unwrap_or(i64::MAX);
    let now = now_ms();
    let ring = state.keys.ring();
    let keys: Vec<SigningKey> = ring
        .all()
        .iter()
        .map(|k| SigningKey {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            state: state_name(k.state(now, grace)).to_owned(),
            published_from: rfc3339(k.created_at),
            signs_from: rfc3339(k.activate_at),
            signs_until: k.retire_at.map(rfc3339),
            published_until: k.retire_at.map(|r| rfc3339(r.saturating_add(grace))),
        })
        .collect();
    Ok(Json(KeyPolicy {
        default_alg: state.config.default_alg().as_str().to_owned(),
        algorithms: policy
            .algorithms
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        rotation_period_secs: policy.period.as_secs(),
        grace_secs: policy.grace.as_secs(),
        lead_secs: policy.lead.as_secs(),
        check_interval_secs: policy.check_interval.as_secs(),
        jwks_max_age_secs: policy.jwks_max_age().as_secs(),
        keys,
    }))
}

/// A key state's name on the wire.
fn state_name(s: KeyState) -> &'static str {
    match s {
        KeyState::Next => "next",
        KeyState::Current => "current",
        KeyState::Retiring => "retiring",
        KeyState::Gone => "gone",
    }
}
