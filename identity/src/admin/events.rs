//! The security-event log's admin API: `GET /admin/security-events` (filtered pages),
//! `…/export` (NDJSON), `…/verify` (walks a chain) and `POST …/ingest` (events reported by the
//! other services: a platform client's own token with `events.write` only). Platform admins
//! read every chain, tenant admins their own tenant's.

use crate::AppState;
use crate::admin::store_failed;
use crate::clients::rfc3339;
use crate::events::append_batch;
use crate::events::walk_chain;
use crate::http::{Action, Caller};
use crate::store::events::{EventFilter, EventRow};
use crate::store::now_ms;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::admin_api::{ChainCheck, Event, Ingested, Page};

/// An event as the API shows it.
impl From<&EventRow> for Event {
    fn from(e: &EventRow) -> Self {
        Self {
            id: e.id.clone(),
            time: rfc3339(e.at),
            tenant_id: (!e.tenant_id.is_empty()).then(|| e.tenant_id.clone()),
            seq: e.seq,
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            outcome: e.outcome.clone(),
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            trace_id: e.trace_id.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventQuery {
    /// A tenant id, or `platform` for platform events; absent: all (platform admins).
    tenant: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    actor: Option<String>,
    outcome: Option<String>,
    /// RFC 3339 bounds (inclusive).
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
    /// `time` (the only sort key: the log is read in time order).
    sort: Option<String>,
    /// `asc` (oldest first, the default) or `desc`.
    order: Option<String>,
}

fn parse_time(v: Option<&str>, what: &str) -> Result<Option<i64>, Problem> {
    match v {
        None => Ok(None),
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)))
            .map_err(|_| Problem::bad_request(format!("{what}: an RFC 3339 time"))),
    }
}

/// The filter a caller may use: tenant admins only ever see their own tenant.
fn filter(caller: &Caller, q: &EventQuery) -> Result<EventFilter, Problem> {
    let tenant_id = caller.records_scope(q.tenant.as_deref())?;
    if q.sort.as_deref().is_some_and(|s| s != "time") {
        return Err(Problem::bad_request("sort: time"));
    }
    let desc = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(Problem::bad_request("order: asc or desc")),
    };
    Ok(EventFilter {
        desc,
        tenant_id,
        kind: q.kind.clone(),
        actor: q.actor.clone(),
        outcome: q.outcome.clone(),
        from: parse_time(q.from.as_deref(), "from")?,
        to: parse_time(q.to.as_deref(), "to")?,
        after: q.after.clone(),
    })
}

pub(crate) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Result<Json<Page<Event>>, Problem> {
    let f = filter(&caller, &q)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .query_events(&f, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let next = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(Page {
        items: rows.iter().map(Event::from).collect(),
        next_after: next,
    }))
}

/// NDJSON, one event per line; at most `limit` (default and maximum 10,000) per request,
/// continue with `after` = the last id.
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Result<Response, Problem> {
    let f = filter(&caller, &q)?;
    let limit = q.limit.unwrap_or(10_000).clamp(1, 10_000);
    let rows = state
        .store
        .query_events(&f, limit)
        .await
        .map_err(|e| store_failed(&e))?;
    let mut body = String::new();
    for r in &rows {
        body.push_str(&serde_json::to_string(&Event::from(r)).map_err(|e| store_failed(&e))?);
        body.push('\n');
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyQuery {
    pub tenant: Option<String>,
}

/// The chain a caller may verify: `tenant` = a tenant id or `platform` (platform admins must
/// name one); tenant admins only their own (another: 404). `""` is the platform's chain.
pub(crate) fn chain_tenant(caller: &Caller, tenant: Option<&str>) -> Result<String, Problem> {
    caller
        .records_scope(tenant)?
        .ok_or_else(|| Problem::bad_request("tenant: a tenant id or `platform`"))
}

/// Walks a tenant's chain (`tenant` = id or `platform`; tenant admins: their own) and names
/// the first event whose link does not hold, in one request; a long chain is better verified
/// as a background job with progress ([`crate::verifications`]).
pub(crate) async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<ChainCheck>, Problem> {
    let tenant_id = chain_tenant(&caller, q.tenant.as_deref())?;
    walk_chain(&state.store, &tenant_id, |_| {})
        .await
        .map(Json)
        .map_err(|e| store_failed(&format!("{e:#}")))
}

/// Most events one ingest request may carry.
pub const INGEST_MAX_EVENTS: usize = 1000;

/// Largest ingest body.
pub const INGEST_MAX_BYTES: usize = 1024 * 1024;

/// An event another service reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestEvent {
    /// Chosen by the reporter (a UUID), so a retried batch is stored once.
    id: uuid::Uuid,
    /// When it happened (RFC 3339); default: when it arrives.
    time: Option<String>,
    /// The tenant the request was for (id or slug); unknown or absent: the platform chain.
    tenant: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    actor: Option<String>,
    outcome: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestBatch {
    events: Vec<IngestEvent>,
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// `POST /admin/security-events/ingest`: other services' events (access denials), batched.
/// The caller is a platform client's own client-credentials token (no user, no tenant) with
/// scope `events.write` for `tansu.identity`;
/// what it reports is recorded with `details.reported_by` = its client id (not trusted from
/// the body). Idempotent per event id: a retried batch is stored once. 202 with counts.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Response, Response> {
    caller
        .may(&Action::IngestEvents)
        .map_err(IntoResponse::into_response)?;
    let claims = caller.claims;
    let bytes = axum::body::to_bytes(body, INGEST_MAX_BYTES)
        .await
        .map_err(|_| {
            Problem::payload_too_large()
                .with_detail(format!("at most {INGEST_MAX_BYTES} bytes"))
                .into_response()
        })?;
    let batch: IngestBatch = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request(format!("not an event batch: {e}")).into_response())?;
    if batch.events.len() > INGEST_MAX_EVENTS {
        return Err(Problem::bad_request(format!(
            "at most {INGEST_MAX_EVENTS} events per request"
        ))
        .into_response());
    }
    let now = now_ms();
    let ids: Vec<String> = batch.events.iter().map(|e| e.id.to_string()).collect();
    let stored = state
        .store
        .existing_event_ids(&ids)
        .await
        .map_err(|e| store_failed(&e).into_response())?;
    let mut tenants: std::collections::HashMap<String, Option<String>> =
        std::collections::HashMap::new();
    let mut rows = Vec::with_capacity(batch.events.len());
    let mut seen = std::collections::HashSet::new();
    for (i, e) in batch.events.into_iter().enumerate() {
        let id = e.id.to_string();
        if stored.contains(&id) || !seen.insert(id.clone()) {
            continue;
        }
        let bad = |what: &str| Problem::bad_request(format!("events[{i}]: {what}")).into_response();
        if e.kind.is_empty()
            || e.kind.len() > 64
            || !e
                .kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(bad("type: 1 to 64 of a-z, 0-9, '.', '_', '-'"));
        }
        if !["success", "failure", "denied"].contains(&e.outcome.as_str()) {
            return Err(bad("outcome: success, failure or denied"));
        }
        let at = match parse_time(e.time.as_deref(), "time").map_err(|_| bad("time: RFC 3339"))? {
            // Not in the future (beyond clock skew), and not older than a day.
            Some(t) if t <= now + 300_000 && t >= now - 86_400_000 => t,
            Some(_) => return Err(bad("time: within the last day")),
            None => now,
        };
        let mut details = e.details;
        details.insert("reported_by".into(), claims.client_id.clone().into());
        let tenant_id = match e.tenant.as_deref().filter(|t| !t.is_empty()) {
            None => String::new(),
            Some(t) => {
                if !tenants.contains_key(t) {
                    let found = state
                        .store
                        .tenant_by_ref(t)
                        .await
                        .map_err(|e| store_failed(&e).into_response())?;
                    tenants.insert(t.to_owned(), found.map(|row| row.id));
                }
                match tenants.get(t).cloned().flatten() {
                    Some(id) => id,
                    None => {
                        details.insert("claimed_tenant".into(), bounded(t, 128).into());
                        String::new()
                    }
                }
            }
        };
        let actor = e
            .actor
            .as_deref()
            .map_or_else(|| "anonymous".to_owned(), |a| bounded(a, 256));
        let details = serde_json::Value::Object(details).to_string();
        if details.len() > 8192 {
            return Err(bad("details: at most 8 KiB"));
        }
        rows.push(EventRow {
            id,
            tenant_id,
            seq: 0,
            at,
            kind: e.kind,
            actor,
            ip: bounded(&e.ip, 64),
            user_agent: bounded(&e.user_agent, 256),
            outcome: e.outcome,
            details,
            trace_id: bounded(&e.trace_id, 32),
            prev_hash: String::new(),
            hash: String::new(),
        });
    }
    let accepted = rows.len();
    append_batch(&state.events, rows)
        .await
        .map_err(|e| store_failed(&format!("{e:#}")).into_response())?;
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(Ingested {
            accepted,
            duplicates: ids.len() - accepted,
        }),
    )
        .into_response())
}
