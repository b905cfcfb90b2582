//! The master key (platform admins): its section of the signing-keys page (key ids, re-wrap
//! state), "Re-wrap now" (confirmed) and the re-wrap's progress page (`keys/master-key`: rows
//! re-wrapped of the rows the run started with, rows left per table; reloads itself every
//! second while the re-wrap runs).

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use tansu_shared::admin_api::MasterKey;
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Confirmed};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{KEYS, notice};
use crate::http::redirect;
use crate::page::PlatformAdmin;
use crate::widgets::{bar, refreshing};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/keys/master-key", get(master_key))
        .route(
            "/keys/master-key/rewrap",
            get(rewrap_confirm).post(start_rewrap),
        )
}

/// Unix milliseconds (a run's times) → RFC 3339.
fn from_ms(ms: Option<i64>) -> String {
    ms.and_then(|ms| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
    })
    .and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// The master-key card of the signing-keys page: key ids, re-wrap state.
pub(crate) fn section(base: &str, mk: Result<MasterKey, String>) -> AnyView {
    let mk = match mk {
        Ok(v) => v,
        Err(e) => {
            return view! {
                <h2>"Master key"</h2>
                {notice("error", format!("The master-key state is unavailable: {e}"))}
            }
            .into_any();
        }
    };
    let previous = Some(mk.previous_key_ids.join(", "))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "none".into());
    let action = (mk.state != "running").then(|| {
        view! { <a class="button danger" id="rewrap-now" href=format!("{base}keys/master-key/rewrap")>"Re-wrap now…"</a> " " }
    });
    view! {
        <h2>"Master key"</h2>
        <div class="card" id="master-key">
            <dl class="detail">
                <dt>"Current key"</dt><dd><code>{mk.current_key_id.clone()}</code></dd>
                <dt>"Previous keys"</dt><dd><code>{previous}</code></dd>
                <dt>"Re-wrap"</dt><dd>{rewrap_badge(&mk.state)} " " {format!("{} rows under a previous key", mk.remaining)}</dd>
            </dl>
            <p>{action}<a class="button secondary" id="master-key-status" href=format!("{base}keys/master-key")>"Re-wrap status"</a></p>
        </div>
    }
    .into_any()
}

fn rewrap_badge(state: &str) -> AnyView {
    let class = match state {
        "done" => "badge ok",
        "running" | "pending" => "badge warn",
        _ => "badge bad",
    };
    view! { <span class=class id="rewrap-state">{state.to_owned()}</span> }.into_any()
}

/// The re-wrap's progress page content and whether it still runs.
pub(crate) fn rewrap_progress(base: &str, mk: &MasterKey) -> (AnyView, bool) {
    let remaining = mk.remaining;
    let run = mk.last_run.clone();
    let this_run_active = run.as_ref().is_some_and(|r| r.finished_at.is_none());
    let r = run.clone().unwrap_or_default();
    let (rewrapped, total, failed) = (r.rewrapped, r.total_at_start, r.failed);
    let running = mk.state == "running";
    let by_table = mk
        .remaining_by_table
        .iter()
        .map(|(table, n)| view! { <tr><td><code>{table.clone()}</code></td><td>{n.to_string()}</td></tr> })
        .collect_view();
    let headline = match mk.state.as_str() {
        "running" => notice(
            "",
            "Re-wrapping: rows sealed under a previous master key are being moved under the current one.".into(),
        ),
        "done" if failed > 0 || r.error.is_some() => notice(
            "error",
            format!(
                "The last re-wrap ended with {failed} rows that could not be opened{}.",
                r.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
        ),
        "done" => notice(
            "success",
            format!(
                "Re-wrap done: every row is sealed under the current master key {}.",
                mk.current_key_id
            ),
        ),
        _ => notice(
            "error",
            format!("{remaining} rows are still sealed under a previous master key and no re-wrap runs: start it."),
        ),
    };
    let (rewrapped, total) = (
        i64::try_from(rewrapped).unwrap_or(i64::MAX),
        i64::try_from(total).unwrap_or(i64::MAX),
    );
    let progress = if running && this_run_active {
        Some(bar(
            "rewrap-progress",
            "Master-key re-wrap progress".into(),
            rewrapped,
            total,
            format!("{rewrapped} of {total} rows re-wrapped; {remaining} remaining"),
        ))
    } else if running {
        // Another replica holds the re-wrap: only the rows left are known here.
        Some(bar(
            "rewrap-progress",
            "Master-key re-wrap progress".into(),
            0,
            0,
            format!("{remaining} rows remaining (re-wrapping on another replica)"),
        ))
    } else {
        None
    };
    let last = run.map(|run| {
        view! {
            <h2>"Last run on this replica"</h2>
            <dl class="detail" id="last-run">
                <dt>"Started"</dt><dd>{from_ms(Some(run.started_at))}</dd>
                <dt>"Finished"</dt><dd>{from_ms(run.finished_at)}</dd>
                <dt>"Rows re-wrapped"</dt><dd>{format!("{rewrapped} of {total}")}</dd>
                <dt>"Rows that could not be opened"</dt><dd>{failed}</dd>
            </dl>
        }
    });
    let content = view! {
        <div id="rewrap-status">{headline}</div>
        {progress}
        <div class="card">
            <p>"State " {rewrap_badge(&mk.state)} " · current key " <code>{mk.current_key_id.clone()}</code></p>
            <div class="table"><table>
                <thead><tr><th>"Table"</th><th>"Rows under a previous key"</th></tr></thead>
                <tbody>{by_table}</tbody>
            </table></div>
            {last}
            <p><a class="button secondary" href=format!("{base}keys")>"Signing keys"</a></p>
        </div>
    }
    .into_any();
    (content, running)
}

/// `GET /keys/master-key`: the re-wrap's state and progress; reloads itself while it runs.
async fn master_key(admin: PlatformAdmin) -> Result<Response, PageError> {
    let mk: MasterKey = admin
        .identity()
        .get("admin/master-key")
        .await
        .map_err(|e| PageError::api(&admin, KEYS.active, "Master-key re-wrap", e))?;
    let (content, running) = rewrap_progress(admin.base(), &mk);
    let content = (
        content,
        running.then(|| refreshing(1, "while the re-wrap runs")),
    );
    Ok(admin.render_with(
        KEYS.active,
        "Master-key re-wrap",
        content.into_any(),
        StatusCode::OK,
        running.then_some(1),
    ))
}

async fn rewrap_confirm(admin: PlatformAdmin) -> Response {
    Confirm {
        path: "keys/master-key/rewrap".into(),
        fields: Vec::new(),
        title: "Re-wrap under the current master key".into(),
        question: "Re-wrap every row sealed under a previous master key (signing keys, tenants' data keys, TOTP secrets) with the current master key now? It runs in the background in batches; the service keeps working meanwhile.".into(),
        button: "Re-wrap now",
        cancel: "keys".into(),
    }
    .page(&admin, KEYS)
}

/// `POST /keys/master-key/rewrap` (confirmed): starts identity's re-wrap, then its progress.
async fn start_rewrap(form: CsrfForm<Confirmed, PlatformAdmin>) -> Result<Response, PageError> {
    let admin = &form.admin;
    Confirm::required(admin, &form.fields.confirm, "keys/master-key/rewrap", &[])?;
    let _: MasterKey = admin
        .identity()
        .call(Method::POST, "admin/master-key/rewrap", None::<&()>)
        .await
        .map_err(|e| PageError::api(admin, KEYS.active, "Master-key re-wrap", e))?;
    tracing::info!(sub = %admin.session.subject, "master-key re-wrap started from the dashboard");
    Ok(redirect(&admin.url("keys/master-key")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn html(v: AnyView) -> String {
        leptos::prelude::RenderHtml::to_html(v)
    }

    #[test]
    fn rewrap_progress_shows_rows_of_the_run() {
        let mk: MasterKey = serde_json::from_value(json!({
            "current_key_id": "mk-b", "previous_key_ids": ["mk-a"], "state": "running",
            "remaining": 30, "remaining_by_table": {"signing_keys": 10, "mfa_totp": 20},
            "last_run": {"started_at": 1_764_000_000_000_i64, "finished_at": null,
                         "total_at_start": 100, "rewrapped": 70, "failed": 0,
                         "complete": false, "error": null},
        }))
        .unwrap();
        let (content, running) = rewrap_progress("https://gw.test/dashboard/", &mk);
        let page = html(content);
        assert!(running);
        assert!(
            page.contains(r#"value="70" max="100" aria-label="Master-key re-wrap progress""#),
            "{page}"
        );
        assert!(
            page.contains("70 of 100 rows re-wrapped; 30 remaining"),
            "{page}"
        );
        let done: MasterKey = serde_json::from_value(json!({"current_key_id": "mk-b",
            "previous_key_ids": [], "state": "done", "remaining": 0, "remaining_by_table": {},
            "last_run": null}))
        .unwrap();
        let (content, running) = rewrap_progress("https://gw.test/dashboard/", &done);
        let page = html(content);
        assert!(!running && !page.contains("<progress"), "{page}");
        assert!(page.contains("Re-wrap done"), "{page}");
        let section = html(section("https://gw.test/dashboard/", Ok(mk)));
        assert!(section.contains("mk-a") && section.contains("30 rows under a previous key"));
        assert!(
            !section.contains("rewrap-now"),
            "no second start while it runs"
        );
    }
}
