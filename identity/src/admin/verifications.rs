//! Security-event chain verification as a background job with progress:
//! `POST /admin/security-events/verifications?tenant=…` starts the walk of
//! [`crate::events::walk_chain`] and answers 202 with a `Location` to
//! `GET /admin/security-events/verifications/{id}` (see [`crate::verifications`] for the job
//! model: rows of the shared database, readable at every replica). Callers: as for `GET /admin/security-events/verify`.

use crate::AppState;
use crate::admin::events::{VerifyQuery, chain_tenant};
use crate::admin::store_failed;
use crate::http::Caller;
use crate::store::verifications::VerificationJobRow;
use crate::verifications::{MAX_RUNNING, Refused, view};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tansu_shared::Problem;
use tansu_shared::admin_api::Verification;

fn location(state: &AppState, job: &VerificationJobRow) -> String {
    format!(
        "{}admin/security-events/verifications/{}",
        state.config.issuer, job.id
    )
}

/// `POST /admin/security-events/verifications?tenant=<id|platform>` → 202 with the job and
/// its `Location` (the running job of that chain, if there is one).
pub(crate) async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, Problem> {
    let tenant_id = chain_tenant(&caller, q.tenant.as_deref())?;
    if !tenant_id.is_empty()
        && state
            .store
            .tenant_by_id(&tenant_id)
            .await
            .map_err(|e| store_failed(&e))?
            .is_none()
    {
        return Err(Problem::not_found());
    }
    // The events the chain holds now: its last sequence number past its anchor.
    let (anchor, _) = state
        .store
        .event_anchor(&tenant_id)
        .await
        .map_err(|e| store_failed(&e))?;
    let (last, _) = state
        .store
        .last_event_link(&tenant_id)
        .await
        .map_err(|e| store_failed(&e))?;
    let (job, new) = state
        .verifications
        .claim(&state.store, &tenant_id, (last - anchor).max(0))
        .await
        .map_err(|e| match e {
            Refused::Store(e) => store_failed(&e),
            Refused::Busy => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-verifications",
                "Too many verifications running",
            )
            .with_detail(format!(
                "at most {MAX_RUNNING} chain verifications run at once; try again shortly"
            )),
        })?;
    if new {
        tracing::info!(job = %job.id, tenant = %tenant_id, by = caller.subject(), "chain verification started");
        let (state, job) = (state.clone(), job.clone());
        tokio::spawn(async move { state.verifications.run(&state.store, &job).await });
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location(&state, &job))],
        Json(view(&job)),
    )
        .into_response())
}

/// `GET /admin/security-events/verifications/{id}`: the job's state and progress.
pub(crate) async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Verification>, Problem> {
    let job = state
        .store
        .verification_job(&id)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)?;
    let chain = if job.tenant_id.is_empty() {
        "platform"
    } else {
        job.tenant_id.as_str()
    };
    // Another tenant's job does not exist for the caller.
    caller
        .records_scope(Some(chain))
        .map_err(|_| Problem::not_found())?;
    Ok(Json(view(&job)))
}
