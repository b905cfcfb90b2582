//! `/health/live` and `/health/ready`, the same on every service.
//!
//! Liveness says the process answers; readiness runs the service's checks (database reachable,
//! keys loaded, …) with a time bound and answers 503 while any fails, so the gateway and
//! orchestrators send traffic only to instances that can serve it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = dyn Fn() -> CheckFuture + Send + Sync;

/// A service's readiness checks.
#[derive(Clone)]
pub struct Health {
    service: &'static str,
    checks: Vec<(&'static str, Arc<CheckFn>)>,
    timeout: Duration,
}

/// The body of `/health/ready` (and of the gateway's aggregate `/health`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Readiness {
    pub service: String,
    pub status: ReadyStatus,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub checks: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReadyStatus {
    Ready,
    Unavailable,
}

impl Health {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            checks: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    /// Adds a named readiness check; it fails the readiness probe when it errs or times out.
    pub fn check<F, Fut>(mut self, name: &'static str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(f()))));
        self
    }

    pub async fn readiness(&self) -> Readiness {
        let results = futures::future::join_all(self.checks.iter().map(|(name, f)| {
            let fut = f();
            let timeout = self.timeout;
            async move {
                let outcome = match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(e)) => e,
                    Err(_) => "timed out".to_owned(),
                };
                ((*name).to_owned(), outcome)
            }
        }))
        .await;
        let ready = results.iter().all(|(_, outcome)| outcome == "ok");
        Readiness {
            service: self.service.to_owned(),
            status: if ready {
                ReadyStatus::Ready
            } else {
                ReadyStatus::Unavailable
            },
            checks: results.into_iter().collect(),
        }
    }

    /// `/health/live` and `/health/ready`, to be merged into the service's router.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new()
            .route("/health/live", get(live))
            .route("/health/ready", get(ready))
            .with_state(Arc::new(self))
    }
}

async fn live() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "live" }))
}

async fn ready(State(health): State<Arc<Health>>) -> Response {
    let r = health.readiness().await;
    let code = match r.status {
        ReadyStatus::Ready => StatusCode::OK,
        ReadyStatus::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(r)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn ready_reflects_checks() {
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        let h = Health::new("demo").check("db", move || {
            let ok = flag.load(Ordering::SeqCst);
            async move { if ok { Ok(()) } else { Err("db down".into()) } }
        });
        let r = h.readiness().await;
        assert_eq!(r.status, ReadyStatus::Unavailable);
        assert_eq!(r.checks["db"], "db down");
        up.store(true, Ordering::SeqCst);
        assert_eq!(h.readiness().await.status, ReadyStatus::Ready);
    }
}
