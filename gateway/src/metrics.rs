//! The gateway's own metrics, served in the Prometheus text format at `/metrics` on the
//! internal listener (`listen_internal`) only.
//!
//! Why a separate listener: `/metrics` names routes and upstream instances and counts every
//! answer; the public listeners must not expose that, and must not even reserve the path (a
//! service behind the gateway may have its own `/metrics`, which stays unreachable from
//! outside because every public path is routed by prefix).
//!
//! Counting is a few relaxed atomic increments per request (no label maps, no allocation), so
//! it costs nothing measurable in the benchmark.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;

use crate::proxy::Gateway;

/// Request counters of one gateway.
#[derive(Debug, Default)]
pub struct Stats {
    /// Answers by status class: index 0 is 1xx … index 4 is 5xx.
    by_class: [AtomicU64; 5],
    rate_limited: AtomicU64,
}

impl Stats {
    pub fn record(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Answers of one status class (`1`…`5`).
    pub fn answered(&self, class: usize) -> u64 {
        class
            .checked_sub(1)
            .and_then(|i| self.by_class.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// The Prometheus text of the gateway's counters and upstream states.
pub fn render(gateway: &Gateway) -> String {
    let stats = gateway.stats();
    let mut s = String::new();
    s.push_str(
        "# HELP gateway_requests_total Requests answered by the gateway, by status class.\n",
    );
    s.push_str("# TYPE gateway_requests_total counter\n");
    for class in 1..=5 {
        let _ = writeln!(
            s,
            "gateway_requests_total{{class=\"{class}xx\"}} {}",
            stats.answered(class)
        );
    }
    s.push_str("# HELP gateway_rate_limited_total Requests refused with 429.\n");
    s.push_str("# TYPE gateway_rate_limited_total counter\n");
    let _ = writeln!(
        s,
        "gateway_rate_limited_total {}",
        stats.rate_limited.load(Ordering::Relaxed)
    );
    s.push_str(
        "# HELP gateway_upstream_available Whether an upstream instance is ready and not ejected.\n",
    );
    s.push_str("# TYPE gateway_upstream_available gauge\n");
    for (prefix, pool) in gateway.pools() {
        for (i, _) in pool.upstreams.iter().enumerate() {
            let _ = writeln!(
                s,
                "gateway_upstream_available{{route=\"{prefix}\",instance=\"{i}\"}} {}",
                u8::from(pool.is_available(i))
            );
        }
    }
    // Whatever else this process records through the `metrics` facade.
    s.push_str(&tansu_shared::telemetry::metrics_handle().render());
    s
}

/// The internal router: `/metrics` and `/health/live`.
pub fn internal_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let gateway = gateway.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        render(&gateway),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/health/live",
            get(|| async { axum::Json(serde_json::json!({"status": "live"})) }),
        )
}

/// Serves [`internal_router`] until `stop` changes.
pub async fn serve_internal(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let served =
        axum::serve(listener, internal_router(gateway)).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
    if let Err(e) = served.await {
        tracing::warn!(error = %e, "internal listener failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_by_class() {
        let s = Stats::default();
        s.record(StatusCode::OK);
        s.record(StatusCode::NO_CONTENT);
        s.record(StatusCode::TOO_MANY_REQUESTS);
        s.record(StatusCode::BAD_GATEWAY);
        assert_eq!(s.answered(2), 2);
        assert_eq!(s.answered(4), 1);
        assert_eq!(s.answered(5), 1);
        assert_eq!(s.answered(3), 0);
        assert_eq!(s.answered(0), 0);
        assert_eq!(s.rate_limited.load(Ordering::Relaxed), 1);
    }
}
