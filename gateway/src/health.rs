//! The gateway's own `GET /health`: every route's upstreams' `/health/ready`, probed now, in
//! one JSON report. 200 when every instance is ready, 503 otherwise.
//!
//! The report is public, so it names routes, services and instance numbers, never the
//! internal addresses or error texts (those are logged).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tansu_shared::health::ReadyStatus;

use crate::proxy::Client;
use crate::upstream::{Pool, probe};

#[derive(Debug, Serialize)]
pub struct InstanceHealth {
    pub route: String,
    /// The instance's position in the route's upstream list.
    pub instance: usize,
    /// The service's own name from its readiness report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub status: ReadyStatus,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub service: &'static str,
    pub status: ReadyStatus,
    pub services: Vec<InstanceHealth>,
}

pub async fn aggregate(
    routes: &[(String, Arc<Pool>)],
    client: &Client,
    timeout: Duration,
) -> Report {
    let probes = routes.iter().flat_map(|(prefix, pool)| {
        pool.upstreams
            .iter()
            .enumerate()
            .map(move |(i, u)| async move {
                let p = probe(client, u, timeout).await;
                if let Some(e) = &p.error {
                    tracing::info!(upstream = %u.url, error = %e, "upstream not ready");
                }
                InstanceHealth {
                    route: prefix.clone(),
                    instance: i,
                    service: p.readiness.map(|r| r.service),
                    status: if p.ready {
                        ReadyStatus::Ready
                    } else {
                        ReadyStatus::Unavailable
                    },
                }
            })
    });
    let services = futures::future::join_all(probes).await;
    let status = if services.iter().all(|s| s.status == ReadyStatus::Ready) {
        ReadyStatus::Ready
    } else {
        ReadyStatus::Unavailable
    };
    Report {
        service: "gateway",
        status,
        services,
    }
}
