//! Security-event chain verification as a background job with progress (long operations
//! show progress; the endpoints are [`crate::admin::verifications`]).
//!
//! `GET /admin/security-events/verify` walks a whole chain in one request (about 1.5 s per
//! 250,000 events); `POST /admin/security-events/verifications?tenant=…` starts the same walk
//! ([`crate::events::walk_chain`]) in the background and answers 202 with a `Location` to
//! `GET /admin/security-events/verifications/{id}`, which reports `state` (`running`, `done`,
//! `failed`), `checked` (events verified so far), `total` (the events the chain held when the
//! job started) and, when done, `result` — the synchronous endpoint's answer.
//!
//! Jobs are rows of the shared database (`verification_jobs`), so every replica answers for
//! every job. At most one job per chain runs on the whole platform (a second request, at any
//! replica, gets the running job); a replica runs at most [`MAX_RUNNING`] at once (beyond: 429).
//! The replica walking a chain publishes `checked` and a heartbeat every [`HEARTBEAT`]; a running
//! job whose heartbeat is older than [`STALE_MS`] (its replica stopped) is ended as `failed` by
//! the next start on any replica, and a new job can run. The newest [`KEPT`] jobs per chain are
//! kept. Who may start or read a job: the same callers as for the synchronous endpoint — platform
//! admins for any chain, tenant admins for their own tenant's only (another tenant's job answers
//! 404, as an unknown id does).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tansu_shared::admin_api::{ChainCheck, Verification};

use crate::clients::rfc3339;
use crate::events::walk_chain;
use crate::store::verifications::VerificationJobRow;
use crate::store::{Store, StoreError, new_id, now_ms};

/// Finished jobs kept per chain (the newest); older ones are deleted when a job starts.
pub const KEPT: i64 = 16;
/// Jobs one replica runs at once, at most (beyond: 429).
pub const MAX_RUNNING: i64 = 4;
/// How often the walking replica publishes progress.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A running job without a heartbeat for this long is abandoned (ms).
pub const STALE_MS: i64 = 15_000;

const ABANDONED: &str = "the replica running the verification stopped; start it again";

/// Why a job was not started.
#[derive(Debug)]
pub(crate) enum Refused {
    /// This replica runs [`MAX_RUNNING`] jobs already.
    Busy,
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Store(e)
    }
}

/// This replica's side of the jobs: its holder id.
#[derive(Debug)]
pub struct Verifications {
    holder: String,
}

impl Default for Verifications {
    fn default() -> Self {
        Self { holder: new_id() }
    }
}

impl Verifications {
    /// The id this replica's running jobs carry.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The chain's running job, or a new one run by this replica (not started yet: `true`).
    pub(crate) async fn claim(
        &self,
        store: &Store,
        tenant_id: &str,
        total: i64,
    ) -> Result<(VerificationJobRow, bool), Refused> {
        let now = now_ms();
        store
            .abandon_verifications(now - STALE_MS, now, ABANDONED)
            .await?;
        if let Some(job) = store.running_verification(tenant_id).await? {
            return Ok((job, false));
        }
        if store.running_verifications_of(&self.holder).await? >= MAX_RUNNING {
            return Err(Refused::Busy);
        }
        let job = VerificationJobRow {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            holder: self.holder.clone(),
            state: "running".to_owned(),
            checked: 0,
            total,
            started_at: now,
            heartbeat_at: now,
            finished_at: None,
            result: None,
            error: None,
        };
        match store.insert_verification_job(&job).await {
            Ok(()) => {}
            // Another replica started the chain's job between the look and the insert.
            Err(e) if e.is_unique_violation() => {
                return match store.running_verification(tenant_id).await? {
                    Some(running) => Ok((running, false)),
                    None => Err(Refused::Store(e)),
                };
            }
            Err(e) => return Err(e.into()),
        }
        store.trim_verifications(tenant_id, KEPT).await?;
        Ok((job, true))
    }

    /// Walks the job's chain ([`walk_chain`]), publishing progress and a heartbeat every
    /// [`HEARTBEAT`], then its outcome.
    pub(crate) async fn run(&self, store: &Store, job: &VerificationJobRow) {
        let checked = AtomicI64::new(0);
        let walk = walk_chain(store, &job.tenant_id, |n| {
            checked.store(n, Ordering::Release);
        });
        tokio::pin!(walk);
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.tick().await;
        let outcome = loop {
            tokio::select! {
                outcome = &mut walk => break outcome,
                _ = beat.tick() => {
                    let n = checked.load(Ordering::Acquire);
                    match store.verification_progress(&job.id, &self.holder, n, now_ms()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = %job.id, "chain verification abandoned by another replica; stopping");
                            return;
                        }
                        // Progress is best effort; the outcome below is what counts.
                        Err(e) => tracing::warn!(error = %e, job = %job.id, "publishing verification progress failed"),
                    }
                }
            }
        };
        let finished = match outcome {
            Ok(result) => {
                let json = serde_json::to_string(&result).ok();
                (("done", result.checked), (json, None))
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), job = %job.id, "chain verification failed");
                let n = checked.load(Ordering::Acquire);
                (("failed", n), (None, Some("reading the chain failed")))
            }
        };
        let ((state, n), (result, error)) = finished;
        if let Err(e) = store
            .finish_verification(
                &job.id,
                &self.holder,
                (state, n),
                (result.as_deref(), error),
                now_ms(),
            )
            .await
        {
            tracing::error!(error = %e, job = %job.id, "recording the verification's outcome failed");
        }
    }
}

/// A job as the API shows it.
pub(crate) fn view(job: &VerificationJobRow) -> Verification {
    let result = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<ChainCheck>(r).ok());
    Verification {
        id: job.id.clone(),
        tenant: if job.tenant_id.is_empty() {
            "platform".to_owned()
        } else {
            job.tenant_id.clone()
        },
        state: job.state.clone(),
        checked: job.checked,
        // Events appended while the job runs are checked too: total never shows less.
        total: job.total.max(job.checked),
        started_at: rfc3339(job.started_at),
        finished_at: job.finished_at.map(rfc3339),
        result,
        error: job.error.clone(),
    }
}
