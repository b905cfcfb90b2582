//! Security-event chain verification as a background job with progress (long operations
//! show progress; the endpoints are [`crate::admin::verifications`]).
//!
//! `GET /admin/security-events/verify` walks a whole chain in one request (about 1.5 s per
//! 250,000 events); `POST /admin/security-events/verifications?tenant=…` starts the same walk
//! ([`crate::events::walk_chain`]) in the background and answers 202 with a `Location` to
//! `GET /admin/security-events/verifications/{id}`, which reports `state` (`running`, `done`,
//! `failed`), `checked` (events verified so far, updated after each page of the chain),
//! `total` (the events the chain held when the job started) and, when done, `result` — the
//! synchronous endpoint's answer.
//!
//! Jobs live in this process's memory: the newest [`KEPT`] are kept (the oldest are dropped),
//! at most [`MAX_RUNNING`] run at once, and a second request for a chain whose verification
//! is still running here gets that job instead of a new one. With several replicas, a job is
//! visible only on the replica that runs it. Who may start or read a job: the same callers as
//! for the synchronous endpoint — platform admins for any chain, tenant admins for their own
//! tenant's only (another tenant's job answers 404, as an unknown id does).
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tansu_shared::admin_api::{ChainCheck, Verification};

use crate::clients::rfc3339;
use crate::store::{new_id, now_ms};

/// Jobs kept in memory (running or finished); beyond them the oldest is dropped.
pub const KEPT: usize = 64;
/// Jobs running at once in this process, at most (beyond: 429).
pub const MAX_RUNNING: usize = 4;

/// How a job ended.
#[derive(Debug, Clone)]
pub(crate) enum Finished {
    Done(ChainCheck),
    Failed(&'static str),
}

/// One verification of one chain.
#[derive(Debug)]
pub struct Job {
    pub(crate) id: String,
    /// `""`: the platform's chain.
    pub(crate) tenant_id: String,
    pub(crate) started_at: i64,
    pub(crate) checked: AtomicI64,
    pub(crate) total: i64,
    finished: Mutex<Option<(i64, Finished)>>,
}

impl Job {
    pub(crate) fn finished(&self) -> Option<(i64, Finished)> {
        self.finished.lock().ok().and_then(|g| g.clone())
    }

    pub(crate) fn finish(&self, outcome: Finished) {
        if let Ok(mut g) = self.finished.lock() {
            *g = Some((now_ms(), outcome));
        }
    }

    pub(crate) fn running(&self) -> bool {
        self.finished().is_none()
    }

    /// The job as the API shows it.
    pub(crate) fn view(&self) -> Verification {
        let finished = self.finished();
        let checked = match &finished {
            Some((_, Finished::Done(r))) => r.checked,
            _ => self.checked.load(Ordering::Acquire),
        };
        let (state, result, error) = match finished.as_ref().map(|(_, f)| f) {
            None => ("running", None, None),
            Some(Finished::Done(r)) => ("done", Some(r.clone()), None),
            Some(Finished::Failed(e)) => ("failed", None, Some((*e).to_owned())),
        };
        Verification {
            id: self.id.clone(),
            tenant: if self.tenant_id.is_empty() {
                "platform".to_owned()
            } else {
                self.tenant_id.clone()
            },
            state: state.to_owned(),
            checked,
            // Events appended while the job runs are checked too: total never shows less.
            total: self.total.max(checked),
            started_at: rfc3339(self.started_at),
            finished_at: finished.map(|(at, _)| rfc3339(at)),
            result,
            error,
        }
    }
}

/// This process's verification jobs, newest last.
#[derive(Debug, Default)]
pub struct Verifications {
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

/// Why a job was not started.
pub(crate) enum Refused {
    Busy,
}

impl Verifications {
    /// The running job of the chain, or a new one (not started yet: `true`).
    pub(crate) fn claim(&self, tenant_id: &str, total: i64) -> Result<(Arc<Job>, bool), Refused> {
        let mut jobs = self.jobs.lock().map_err(|_| Refused::Busy)?;
        if let Some(job) = jobs
            .iter()
            .find(|j| j.tenant_id == tenant_id && j.running())
        {
            return Ok((job.clone(), false));
        }
        if jobs.iter().filter(|j| j.running()).count() >= MAX_RUNNING {
            return Err(Refused::Busy);
        }
        while jobs.len() >= KEPT {
            jobs.pop_front();
        }
        let job = Arc::new(Job {
            id: new_id(),
            tenant_id: tenant_id.to_owned(),
            started_at: now_ms(),
            checked: AtomicI64::new(0),
            total,
            finished: Mutex::new(None),
        });
        jobs.push_back(job.clone());
        Ok((job, true))
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.iter().find(|j| j.id == id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(checked: i64) -> Finished {
        Finished::Done(ChainCheck {
            ok: true,
            checked,
            first_broken: None,
            starts_after_seq: Some(0),
        })
    }

    #[test]
    fn jobs_are_bounded_and_one_runs_per_chain() {
        let v = Verifications::default();
        let (a, new) = v.claim("t1", 10).ok().unwrap();
        assert!(new);
        let (again, new) = v.claim("t1", 10).ok().unwrap();
        assert!(!new, "the running job of the chain is reused");
        assert_eq!(again.id, a.id);
        for t in ["t2", "t3", "t4"] {
            assert!(v.claim(t, 1).is_ok());
        }
        assert!(v.claim("t5", 1).is_err(), "at most {MAX_RUNNING} run");
        a.finish(passed(10));
        assert_eq!(a.view().state, "done");
        assert_eq!(a.view().checked, 10);
        let (b, new) = v.claim("t1", 3).ok().unwrap();
        assert!(new && b.id != a.id, "a finished job is not reused");
        for (i, job) in v.jobs.lock().unwrap().iter().enumerate() {
            job.finish(Finished::Failed("x"));
            assert_eq!(job.view().state, "failed", "{i}");
        }
        for i in 0..KEPT {
            let (job, _) = v.claim(&format!("x{i}"), 0).ok().unwrap();
            job.finish(passed(0));
        }
        assert_eq!(v.jobs.lock().unwrap().len(), KEPT);
        assert!(v.get(&a.id).is_none(), "the oldest are dropped");
    }
}
