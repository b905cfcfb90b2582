//! `GET /admin/stats/activity`: sign-ins, failed sign-ins and tokens issued per hour (see
//! [`crate::stats`] for how they are counted). Platform admins see all tenants (or one with
//! `tenant=<id>`, `tenant=platform` for events and tokens without a tenant); tenant admins see
//! their own tenant only (another: 404).

use crate::AppState;
use crate::admin::store_failed;
use crate::clients::rfc3339;
use crate::http::Caller;
use crate::stats::Counts;
use crate::stats::HOUR_MS;
use crate::store::now_ms;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::admin_api::{Activity, ActivityBucket};

#[derive(Debug, Deserialize)]
pub(crate) struct ActivityQuery {
    /// 1 to 168; 24 by default.
    hours: Option<i64>,
    /// Platform admins: a tenant id, or `platform`; absent: everything.
    tenant: Option<String>,
}

pub(crate) async fn activity(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Activity>, Problem> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(Problem::bad_request("hours: 1 to 168"));
    }
    let tenant = caller.records_scope(q.tenant.as_deref())?;
    if let Err(e) = state.stats.flush(&state.store).await {
        tracing::warn!(error = %e, "token statistics flush failed");
    }
    let to_hour = now_ms() / HOUR_MS;
    let from_hour = to_hour - hours + 1;
    let counts = state
        .store
        .activity(tenant.as_deref(), from_hour)
        .await
        .map_err(|e| store_failed(&e))?;
    let mut totals = Counts::default();
    let buckets: Vec<ActivityBucket> = (from_hour..=to_hour)
        .map(|h| {
            let c = counts.get(&h).copied().unwrap_or_default();
            totals.sign_ins += c.sign_ins;
            totals.failures += c.failures;
            totals.tokens += c.tokens;
            ActivityBucket {
                hour: rfc3339(h * HOUR_MS),
                counts: c,
            }
        })
        .collect();
    Ok(Json(Activity {
        hours,
        tenant,
        buckets,
        totals,
    }))
}
