//! The security events of a filter as files: identity's NDJSON, and CSV (cells that a
//! spreadsheet would run as a formula are defused). Up to 10,000 events per file.

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use reqwest::Method;
use tansu_shared::admin_api::Event;
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::error::PageError;
use crate::frame::EVENTS;
use crate::http::download;
use crate::page::AdminSession;
use crate::pages::events::{EventQuery, identity_query};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/admin/security-events/export.ndjson", get(export_ndjson))
        .route("/admin/security-events/export.csv", get(export_csv))
}

/// Up to 10,000 events of the filter as identity's NDJSON (the dashboard's own limit per file).
async fn export_lines(admin: &AdminSession, q: &EventQuery) -> Result<String, PageError> {
    let (qs, _) = identity_query(admin, q)?;
    admin
        .identity()
        .send(
            Method::GET,
            &format!("admin/security-events/export?limit=10000&{qs}"),
            None::<&()>,
        )
        .await
        .map_err(|e| PageError::api(admin, EVENTS.active, EVENTS.title, e))
}

async fn export_ndjson(
    admin: AdminSession,
    Query(q): Query<EventQuery>,
) -> Result<Response, PageError> {
    let body = export_lines(&admin, &q.trimmed()).await?;
    Ok(download(
        body,
        "application/x-ndjson",
        "attachment; filename=\"security-events.ndjson\"",
    ))
}

async fn export_csv(
    admin: AdminSession,
    Query(q): Query<EventQuery>,
) -> Result<Response, PageError> {
    let body = export_lines(&admin, &q.trimmed()).await?;
    Ok(download(
        ndjson_to_csv(&body),
        "text/csv; charset=utf-8",
        "attachment; filename=\"security-events.csv\"",
    ))
}

/// A CSV field (RFC 4180), neutralising spreadsheet formulas.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// The export's columns: every field of an [`Event`].
const COLUMNS: &[&str] = &[
    "id",
    "time",
    "tenant_id",
    "seq",
    "type",
    "actor",
    "ip",
    "user_agent",
    "outcome",
    "details",
    "trace_id",
    "prev_hash",
    "hash",
];

fn row(e: &Event) -> Vec<String> {
    let details = if e.details.is_null() {
        String::new()
    } else {
        e.details.to_string()
    };
    [
        e.id.clone(),
        e.time.clone(),
        e.tenant_id.clone().unwrap_or_default(),
        e.seq.to_string(),
        e.kind.clone(),
        e.actor.clone(),
        e.ip.clone(),
        e.user_agent.clone(),
        e.outcome.clone(),
        details,
        e.trace_id.clone(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
    .iter()
    .map(|v| csv_field(v))
    .collect()
}

pub(crate) fn ndjson_to_csv(ndjson: &str) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for line in ndjson.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(e) = serde_json::from_str::<Event>(line) else {
            continue;
        };
        out.push_str(&row(&e).join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_export_escapes_and_defuses_formulas() {
        let nd = concat!(
            r#"{"id":"1","time":"t","tenant_id":null,"seq":1,"type":"sign_in","actor":"=cmd()","ip":"1.2.3.4","user_agent":"a, \"b\"","outcome":"success","details":{"x":1},"trace_id":"","prev_hash":"","hash":"h"}"#,
            "\n\nnot json\n"
        );
        let csv = ndjson_to_csv(nd);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with("id,time,tenant_id"));
        assert!(lines[1].contains(",'=cmd(),"), "{csv}");
        assert!(lines[1].contains(r#""a, ""b""""#), "{csv}");
        assert!(lines[1].contains(r#""{""x"":1}""#), "{csv}");
        assert_eq!(lines.len(), 3, "{csv}");
    }
}
