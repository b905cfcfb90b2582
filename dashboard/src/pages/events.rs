//! Security events: filters (tenant — or the platform, for platform admins — type, actor,
//! outcome, time range in UTC), cursor pages of 50 newest first, each event's detail, and the
//! chain verification on request: "Verify the chain" starts identity's verification job and
//! the page follows its progress (reloading itself every second) to the result; `verify=1`
//! verifies at once. Both read the whole chain, so neither is part of every page load.
//! A tenant admin's filters are always their own tenant (another: 404).

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use serde::Deserialize;
use tansu_shared::admin_api::{ChainCheck, Event, Page, Tenant, Verification};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::api::ApiError;
use crate::error::PageError;
use crate::frame::{EVENTS, notice};
use crate::page::AdminSession;
use crate::pages::chain::{chain_of, chain_status, verification_running, verify_link};
use crate::widgets::{ListSort, Sorts, after_param, badge, pager, sort_links, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/admin/security-events", get(events))
}

/// The events list sorts by time only (identity pages the log in id order); newest first by
/// default.
const EVENT_SORTS: Sorts = &[("time", "Time")];

/// The query of the events page and of its exports.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct EventQuery {
    #[serde(default)]
    pub tenant: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    verify: String,
    #[serde(default)]
    verification: String,
}

impl EventQuery {
    pub(crate) fn trimmed(mut self) -> Self {
        for v in [
            &mut self.tenant,
            &mut self.kind,
            &mut self.actor,
            &mut self.outcome,
            &mut self.from,
            &mut self.to,
            &mut self.after,
            &mut self.verify,
            &mut self.verification,
        ] {
            *v = v.trim().to_owned();
        }
        self
    }

    /// The filters to keep in links and forms (`tenant`, `type`, …, the non-empty ones).
    fn kept(&self) -> String {
        let mut keep: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [
            ("tenant", &self.tenant),
            ("type", &self.kind),
            ("actor", &self.actor),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                keep.push((k, v));
            }
        }
        serde_urlencoded::to_string(&keep).unwrap_or_default()
    }
}

/// `YYYY-MM-DDTHH:MM[:SS]` (a `datetime-local` value, taken as UTC) → RFC 3339.
fn utc(local: &str) -> Option<String> {
    let ok = |s: &str| {
        s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
    };
    match local.len() {
        16 if ok(local) => Some(format!("{local}:00Z")),
        19 if ok(local) => Some(format!("{local}Z")),
        _ => None,
    }
}

/// Identity's query string for the filters, and the problems with them. Tenant admins: always
/// their own tenant (another: 404).
pub(crate) fn identity_query(
    admin: &AdminSession,
    f: &EventQuery,
) -> Result<(String, Vec<String>), PageError> {
    let tenant = match admin.own_tenant() {
        Some(own) if !f.tenant.is_empty() && f.tenant != own => {
            return Err(PageError::not_found(admin, EVENTS.active));
        }
        Some(own) => own.to_owned(),
        None => f.tenant.clone(),
    };
    let mut problems = Vec::new();
    let mut params: Vec<(&str, String)> = Vec::new();
    if !tenant.is_empty() {
        params.push(("tenant", tenant));
    }
    for (k, v) in [
        ("type", &f.kind),
        ("actor", &f.actor),
        ("outcome", &f.outcome),
    ] {
        if !v.is_empty() {
            params.push((k, v.clone()));
        }
    }
    for (k, v) in [("from", &f.from), ("to", &f.to)] {
        if v.is_empty() {
            continue;
        }
        match utc(v) {
            Some(t) => params.push((k, t)),
            None => problems.push(format!("{k}: a date and time")),
        }
    }
    Ok((
        serde_urlencoded::to_string(&params).unwrap_or_default(),
        problems,
    ))
}

/// A chain verification the events page shows: a job's progress, or a synchronous answer.
enum Check {
    Job(Result<Verification, ApiError>),
    Now(Result<ChainCheck, ApiError>),
}

async fn events(admin: AdminSession, Query(q): Query<EventQuery>) -> Result<Response, PageError> {
    let f = q.trimmed();
    let (qs, problems) = identity_query(&admin, &f)?;
    let sort = ListSort::parse(&f.sort, &f.order, EVENT_SORTS, true)
        .ok_or_else(|| PageError::invalid_sort(&admin, EVENTS, EVENT_SORTS))?;
    let path = format!(
        "admin/security-events?limit=50&{qs}&{}{}",
        sort.query(),
        after_param(&f.after)
    );
    let identity = admin.identity();
    let chain = chain_of(&admin, &f.tenant);
    let verify_call = async {
        if !f.verification.is_empty() {
            let path = format!(
                "admin/security-events/verifications/{}",
                urlencode(&f.verification)
            );
            return Some(Check::Job(identity.get(&path).await));
        }
        match &chain {
            Some((t, _)) if f.verify == "1" => Some(Check::Now(
                identity
                    .get(&format!(
                        "admin/security-events/verify?tenant={}",
                        urlencode(t)
                    ))
                    .await,
            )),
            _ => None,
        }
    };
    let tenants_call = async {
        if admin.is_platform() {
            identity
                .get::<Page<Tenant>>("admin/tenants?limit=500")
                .await
                .map(|p| p.items)
                .unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let (list, verified, tenants) = tokio::join!(
        identity.get::<Page<Event>>(&path),
        verify_call,
        tenants_call
    );
    let list = match list {
        Ok(v) => v,
        Err(ApiError::Status(400, detail)) => {
            return Err(PageError::invalid(
                &admin,
                EVENTS.active,
                EVENTS.title,
                format!("The filter is invalid: {detail}"),
            ));
        }
        Err(e) => return Err(PageError::api(&admin, EVENTS.active, EVENTS.title, e)),
    };
    let keep_qs = f.kept();
    let here = format!("{}?{keep_qs}", admin.url(EVENTS.active));
    let first = format!("{here}&{}", sort.query());
    let next = list
        .next_after
        .as_ref()
        .map(|n| format!("{first}{}", after_param(n)));
    let verify_form = |what: &str| {
        verify_link(
            what,
            admin.url("admin/security-events/verify"),
            admin.csrf(),
            &f.tenant,
            &keep_qs,
        )
    };
    let mut refresh = None;
    let verify_view = match (&chain, verified) {
        (_, Some(Check::Job(Ok(job)))) => {
            let what = chain_of(&admin, &job.tenant).map_or_else(String::new, |(_, w)| w);
            match (job.state.as_str(), &job.result) {
                ("running", _) => {
                    refresh = Some(1);
                    verification_running(&what, &job)
                }
                ("done", Some(result)) => chain_status(&what, Ok(result)),
                _ => (
                    chain_status(&what, Err(job.error.clone().unwrap_or_default())),
                    verify_form(&what),
                )
                    .into_any(),
            }
        }
        (chain, Some(Check::Job(Err(ApiError::Status(404, _))))) => (
            notice(
                "error",
                "That chain verification is not known (anymore): identity keeps recent verifications in memory, per replica. Start it again.".into(),
            ),
            chain.as_ref().map(|(_, what)| verify_form(what)),
        )
            .into_any(),
        (Some((_, what)), Some(Check::Job(Err(e)) | Check::Now(Err(e)))) => {
            chain_status(what, Err(e.to_string()))
        }
        (Some((_, what)), Some(Check::Now(Ok(v)))) => chain_status(what, Ok(&v)),
        (Some((_, what)), None) => verify_form(what),
        (None, _) => notice(
            "",
            "Choose a tenant (or the platform) to verify its event chain.".into(),
        ),
    };
    let tenant_choice = admin
        .is_platform()
        .then(|| event_tenant_choice(&tenants, &f.tenant));
    let problems = (!problems.is_empty()).then(|| notice("error", problems.join("; ")));
    let content = (
        problems,
        view(
            admin.base(),
            &f,
            tenant_choice,
            &list.items,
            verify_view,
            pager(first, next),
            sort_links(&here, EVENT_SORTS, &sort),
            &format!("?{keep_qs}"),
        ),
    )
        .into_any();
    Ok(admin.render_with(
        EVENTS.active,
        EVENTS.title,
        content,
        axum::http::StatusCode::OK,
        refresh,
    ))
}

pub const EVENT_TYPES: &[&str] = &[
    "sign_in",
    "sign_in.locked",
    "refresh.reuse_detected",
    "keys.rotate",
    "client.change",
    "tenant.change",
    "user.change",
    "role.change",
    "provider.change",
    "secret.read",
    "secret.write",
];

#[allow(clippy::too_many_arguments)]
fn view(
    base: &str,
    f: &EventQuery,
    tenant_choice: Option<AnyView>,
    items: &[Event],
    verify: AnyView,
    pager: AnyView,
    sorts: AnyView,
    export_query: &str,
) -> AnyView {
    let types = EVENT_TYPES
        .iter()
        .map(|t| view! { <option value=*t selected={f.kind == *t}>{*t}</option> })
        .collect_view();
    let rows = items
        .iter()
        .map(|e| {
            let details = serde_json::to_string_pretty(&e.details).unwrap_or_default();
            let tenant = e.tenant_id.clone().unwrap_or_else(|| "platform".to_owned());
            view! {
                <tr class="event">
                    <td class="nowrap">{e.time.clone()}</td>
                    <td><code>{e.kind.clone()}</code></td>
                    <td>{badge(&e.outcome)}</td>
                    <td><code>{e.actor.clone()}</code></td>
                    <td>
                        <details>
                            <summary>"Detail"</summary>
                            <dl class="detail">
                                <dt>"Id"</dt><dd><code>{e.id.clone()}</code></dd>
                                <dt>"Tenant"</dt><dd><code>{tenant}</code></dd>
                                <dt>"Sequence"</dt><dd>{e.seq.to_string()}</dd>
                                <dt>"IP"</dt><dd>{e.ip.clone()}</dd>
                                <dt>"User agent"</dt><dd>{e.user_agent.clone()}</dd>
                                <dt>"Trace id"</dt><dd><code>{e.trace_id.clone()}</code></dd>
                                <dt>"Hash"</dt><dd><code>{e.hash.clone()}</code></dd>
                                <dt>"Previous hash"</dt><dd><code>{e.prev_hash.clone()}</code></dd>
                            </dl>
                            <pre>{details}</pre>
                        </details>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let outcome_opt = |v: &'static str, label: &'static str| {
        view! { <option value=v selected={f.outcome == v}>{label}</option> }
    };
    view! {
        {verify}
        <form class="card filters" method="get" action=format!("{base}admin/security-events")>
            {tenant_choice}
            <div class="grid">
                <div>
                    <label for="type">"Type"</label>
                    <select id="type" name="type">
                        <option value="" selected=f.kind.is_empty()>"any"</option>
                        {types}
                    </select>
                </div>
                <div>
                    <label for="actor">"Actor (user:<id>, client:<id>, system)"</label>
                    <input type="text" id="actor" name="actor" value=f.actor.clone() maxlength="200"/>
                </div>
                <div>
                    <label for="outcome">"Outcome"</label>
                    <select id="outcome" name="outcome">
                        {outcome_opt("", "any")}
                        {outcome_opt("success", "success")}
                        {outcome_opt("failure", "failure")}
                    </select>
                </div>
                <div>
                    <label for="from">"From (UTC)"</label>
                    <input type="datetime-local" id="from" name="from" value=f.from.clone()/>
                </div>
                <div>
                    <label for="to">"To (UTC)"</label>
                    <input type="datetime-local" id="to" name="to" value=f.to.clone()/>
                </div>
            </div>
            <p><button type="submit" id="filter-events">"Filter"</button> " "
               <a class="button secondary" id="export-ndjson" href=format!("{base}admin/security-events/export.ndjson{export_query}")>"Export NDJSON"</a> " "
               <a class="button secondary" id="export-csv" href=format!("{base}admin/security-events/export.csv{export_query}")>"Export CSV"</a></p>
        </form>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Time"</th><th>"Type"</th><th>"Outcome"</th><th>"Actor"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
    }
    .into_any()
}

/// The tenant filter of platform admins: all, the platform's own events, or one tenant.
fn event_tenant_choice(tenants: &[Tenant], current: &str) -> AnyView {
    let options = tenants
        .iter()
        .map(|t| {
            let selected = t.id == current;
            let label = format!("{} ({})", t.name, t.slug);
            view! { <option value=t.id.clone() selected=selected>{label}</option> }
        })
        .collect_view();
    view! {
        <label for="tenant">"Tenant"</label>
        <select id="tenant" name="tenant">
            <option value="" selected=current.is_empty()>"all"</option>
            <option value="platform" selected={current == "platform"}>"platform"</option>
            {options}
        </select>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_become_rfc3339() {
        assert_eq!(utc("2026-11-26T10:05").unwrap(), "2026-11-26T10:05:00Z");
        assert_eq!(utc("2026-11-26T10:05:09").unwrap(), "2026-11-26T10:05:09Z");
        for bad in [
            "",
            "yesterday",
            "2026-11-26 10:05",
            "2026-11-26T10:05Z",
            "2026-11-26T10:05:00&x=1",
        ] {
            assert!(utc(bad).is_none(), "{bad}");
        }
    }
}
