//! The change feed: pages after a position, or a stream of server-sent events.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::auth::scopes::DbRead;

use super::access::Scoped;
use super::store;
use crate::AppState;
use crate::body::QueryParams;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ChangeParams {
    since: Option<i64>,
    limit: Option<i64>,
}

pub(super) async fn changes(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
    QueryParams(p): QueryParams<ChangeParams>,
) -> Result<Response, Problem> {
    let since = p.since.unwrap_or(0);
    let max = i64::from(s.config.max_page);
    let limit = p.limit.unwrap_or(max);
    if since < 0 || !(1..=max).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "since must be >= 0 and limit between 1 and {max}"
        )));
    }
    let list = store(&s, &tenant).await?.changes(since, limit).await?;
    let next = list.last().map(|c| c.seq).unwrap_or(since);
    Ok(Json(json!({ "changes": list, "next_since": next })).into_response())
}

/// Server-sent events: every change after `since` (or `Last-Event-ID`), then new ones as
/// they commit. Each event's `id` is its sequence number, so a reconnecting client resumes
/// exactly where it stopped. The stream ends at the token's `exp` and when the tenant stops
/// being active ([`crate::stream`]).
pub(super) async fn changes_stream(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
    QueryParams(p): QueryParams<ChangeParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = last_event.or(p.since).unwrap_or(0).max(0);
    if let Some(directory) = &s.directory {
        directory.require_active(tenant.id).await?;
    }
    // Read before the tenant's store is: a deprovision after this point is noticed.
    let deprovisions = s.tenants.deprovisions();
    let st = store(&s, &tenant).await?;
    // A position behind the retained range is refused before the stream starts.
    st.changes(since, 1).await?;
    let stream = crate::stream::Follower {
        store: st,
        tenants: s.tenants.clone(),
        tenant: tenant.id,
        directory: s.directory.clone(),
        notify: s.tenants.notifier(tenant.id),
        closing: s.tenants.closing(),
        since,
        batch: i64::from(s.config.max_page),
        expires_ms: tenant.principal.exp.saturating_mul(1000),
        deprovisions,
        pending: Default::default(),
        ended: false,
    }
    .into_events();
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
