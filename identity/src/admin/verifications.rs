//! Security-event chain verification as a background job with progress:
//! `POST /admin/security-events/verifications?tenant=…` starts the walk of
//! [`crate::events::walk_chain`] and answers 202 with a `Location` to
//! `GET /admin/security-events/verifications/{id}` (see [`crate::verifications`] for the job
//! model). Callers: as for `GET /admin/security-events/verify`.

use crate::AppState;
use crate::admin::events::{VerifyQuery, chain_tenant};
use crate::admin::store_failed;
use crate::events::walk_chain;
use crate::http::Caller;
use crate::verifications::Finished;
use crate::verifications::Job;
use crate::verifications::MAX_RUNNING;
use crate::verifications::Refused;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tansu_shared::Problem;
use tansu_shared::admin_api::Verification;

/// Walks the job's chain, publishing progress after each page.
pub(crate) async fn run(state: AppState, job: Arc<Job>) {
    let outcome = walk_chain(&state.store, &job.tenant_id, |checked| {
        job.checked.store(checked, Ordering::Release);
    })
    .await;
    job.finish(match outcome {
        Ok(result) => Finished::Done(result),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), job = %job.id, "chain verification failed");
            Finished::Failed("reading the chain failed")
        }
    });
}

fn location(state: &AppState, job: &Job) -> String {
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
        .claim(&tenant_id, (last - anchor).max(0))
        .map_err(|Refused::Busy| {
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-verifications",
                "Too many verifications running",
            )
            .with_detail(format!(
                "at most {MAX_RUNNING} chain verifications run at once; try again shortly"
            ))
        })?;
    if new {
        tracing::info!(job = %job.id, tenant = %tenant_id, by = caller.subject(), "chain verification started");
        tokio::spawn(run(state.clone(), job.clone()));
    }
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location(&state, &job))],
        Json(job.view()),
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
        .verifications
        .get(&id)
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
    Ok(Json(job.view()))
}
