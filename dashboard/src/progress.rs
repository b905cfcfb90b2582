//! Long operations and their progress pages (issue #8: "long operations show progress").
//!
//! Every long operation starts with a CSRF-checked POST (after its confirmation page) that
//! answers 303 to a progress page. The progress page shows the operation's stage and how far
//! it is (a `<progress>` element with an accessible label and an "n of m" text) and reloads
//! itself with `<meta http-equiv="refresh">` only while the operation runs, so it works
//! without any script; once done it shows the outcome.
//!
//! - Signing-key rotation (`keys/rotation?kids=…`): the new keys are published in the JWKS at
//!   once and sign only after the lead time; the page shows each key's stage (published →
//!   waiting for the lead time, with the time left → signing).
//! - Master-key re-wrap (`keys/master-key`, platform admins): identity's
//!   `GET /admin/master-key` state, rows re-wrapped of the rows the run started with.
//! - Security-event chain verification: a background job at identity
//!   (`/admin/security-events/verifications`), shown on the events page
//!   ([`crate::admin`]'s `verify_chain`) with [`bar`].

// A `Response` is the helpers' early return (the page to send instead), as in the handlers.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde_json::Value;

use crate::AppState;
use crate::api;
use crate::session::Session;
use crate::views::{self, notice};
use crate::web::{
    api_failed, platform_form, redirect, render, render_refreshing, require_platform,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys/rotation", get(rotation))
        .route("/keys/master-key", get(master_key))
        .route(
            "/keys/master-key/rewrap",
            get(rewrap_confirm).post(start_rewrap),
        )
}

const KEYS: &str = "keys";

/// The longest a progress page waits before it reloads itself.
const MAX_REFRESH_SECS: i64 = 30;

// ---------------------------------------------------------------- shared views

/// A progress bar with its accessible label and an "n of m" text; without a known `max`
/// (0) the bar is indeterminate.
pub(crate) fn bar(id: &'static str, label: String, value: i64, max: i64, text: String) -> AnyView {
    let bar = if max > 0 {
        let value = value.clamp(0, max);
        let percent = format!("{}%", value * 100 / max);
        view! {
            <progress id=id value=value.to_string() max=max.to_string() aria-label=label.clone()>{percent}</progress>
        }
        .into_any()
    } else {
        view! { <progress id=id aria-label=label.clone()></progress> }.into_any()
    };
    view! {
        <div class="progress">
            {bar}
            <div class="muted" id=format!("{id}-text")>{text}</div>
        </div>
    }
    .into_any()
}

/// "This page refreshes itself…" below a running operation's progress.
pub(crate) fn refreshing(secs: u64, until: &'static str) -> AnyView {
    let unit = if secs == 1 { "second" } else { "seconds" };
    view! {
        <p class="muted" id="refreshing">{format!("This page reloads itself every {secs} {unit} {until}.")}</p>
    }
    .into_any()
}

/// `n h m min`, `m min s s` or `s s`.
pub(crate) fn duration_text(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// RFC 3339 → unix seconds.
fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix milliseconds (identity's `last_run` times) → RFC 3339.
fn from_ms(v: Option<&Value>) -> String {
    v.and_then(Value::as_i64)
        .and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        })
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn text(v: &Value, key: &str) -> String {
    crate::admin_views::s(v, key)
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

// ---------------------------------------------------------------- key rotation

/// The `kid`s of the keys listed under `key` (identity's `pending`, a JWKS' `keys`).
fn kids_of<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.get("kid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// Where "Rotate now" lands: the rotation's progress page for the keys identity made pending.
pub(crate) fn rotation_url(state: &AppState, rotated: &Value) -> String {
    let kids = kids_of(rotated, "pending");
    let q = serde_urlencoded::to_string([("kids", kids.join(","))]).unwrap_or_default();
    format!("{}?{q}", state.url("keys/rotation"))
}

/// Where a key is in its rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyProgress {
    pub kid: String,
    pub alg: String,
    pub in_jwks: bool,
    pub signs_from: String,
    /// Seconds until it signs (0: it signs).
    pub left: i64,
    /// The lead time in seconds (publication to first signature).
    pub lead: i64,
    pub signing: bool,
}

/// The keys of the rotation (`kids`; none named: every key still waiting to sign), from
/// identity's key policy and JWKS at `now` (unix seconds).
pub(crate) fn rotation_progress(
    policy: &Value,
    jwks: &Value,
    kids: &[&str],
    now: i64,
) -> Vec<KeyProgress> {
    let published = kids_of(jwks, "keys");
    policy
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|k| {
            let kid = k.get("kid").and_then(Value::as_str).unwrap_or("");
            if kids.is_empty() {
                k.get("state").and_then(Value::as_str) == Some("next")
            } else {
                kids.contains(&kid)
            }
        })
        .map(|k| {
            let kid = text(k, "kid");
            let from = unix(&text(k, "signs_from")).unwrap_or(now);
            let published_from = unix(&text(k, "published_from")).unwrap_or(from);
            let state = text(k, "state");
            KeyProgress {
                in_jwks: published.contains(&kid.as_str()),
                kid,
                alg: text(k, "alg"),
                signs_from: text(k, "signs_from"),
                left: (from - now).max(0),
                lead: (from - published_from).max(0),
                // Identity's word (its clock), not ours: "next" waits even at 0 s left.
                signing: state != "next",
            }
        })
        .collect()
}

/// One key's stages: published in the JWKS → waiting for the lead time → signing.
fn key_stages(k: &KeyProgress) -> AnyView {
    let stage = |done: bool, active: bool, title: String| {
        let class = if done {
            "done"
        } else if active {
            "active"
        } else {
            "todo"
        };
        let mark = if done {
            "✓ "
        } else if active {
            "… "
        } else {
            ""
        };
        view! { <li class=class>{format!("{mark}{title}")}</li> }
    };
    let waiting = !k.signing;
    let lead = if waiting {
        let elapsed = k.lead - k.left;
        Some(bar(
            "lead-progress",
            format!("Lead time of key {} elapsed", k.kid),
            elapsed,
            k.lead,
            format!(
                "{} of {} lead time elapsed; {} left (signs from {})",
                duration_text(elapsed),
                duration_text(k.lead),
                duration_text(k.left),
                k.signs_from
            ),
        ))
    } else {
        None
    };
    view! {
        <div class="card rotation-key">
            <p><strong>"Key "</strong><code>{k.kid.clone()}</code>{format!(" ({})", k.alg)}</p>
            <ol class="stages">
                {stage(k.in_jwks, !k.in_jwks, "Published in the JWKS".to_owned())}
                {stage(k.signing, waiting, if waiting {
                    format!("Waiting for the lead time: {} left", duration_text(k.left))
                } else {
                    "Lead time over".to_owned()
                })}
                {stage(k.signing, false, format!("Signing (from {})", k.signs_from))}
            </ol>
            {lead}
        </div>
    }
    .into_any()
}

/// `GET /keys/rotation?kids=…`: the rotation's stages; reloads itself while a key waits.
async fn rotation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let s = match require_platform(&state, &headers, "/keys/rotation", KEYS) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let kids: Vec<&str> = query
        .get("kids")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .take(16)
        .collect();
    let (policy, jwks) = tokio::join!(
        api::get(&state, &s.access_token, "admin/keys/policies"),
        api::get(&state, &s.access_token, ".well-known/jwks"),
    );
    let (policy, jwks) = match (policy, jwks) {
        (Ok(p), Ok(j)) => (p, j),
        (Err(e), _) | (_, Err(e)) => return api_failed(&state, &s, KEYS, "Signing keys", e),
    };
    let keys = rotation_progress(&policy, &jwks, &kids, now());
    let waiting: Option<i64> = keys.iter().filter(|k| !k.signing).map(|k| k.left).min();
    let refresh = waiting.map(|left| left.clamp(1, MAX_REFRESH_SECS).unsigned_abs());
    let summary = if keys.is_empty() {
        notice(
            "",
            "No rotation is pending: no key waits for its lead time.".into(),
        )
    } else {
        let names: Vec<String> = keys
            .iter()
            .map(|k| format!("{} ({}) signs from {}", k.kid, k.alg, k.signs_from))
            .collect();
        let status = if refresh.is_some() {
            "Rotation scheduled, waiting for the lead time"
        } else {
            "Rotation complete: the new keys sign"
        };
        notice(
            if refresh.is_some() { "" } else { "success" },
            format!("{status}. New keys: {}", names.join("; ")),
        )
    };
    let stages = keys.iter().map(key_stages).collect_view();
    let note = refresh.map(|secs| refreshing(secs, "until the new keys sign"));
    let content = view! {
        <div id="rotation-status">{summary}</div>
        {stages}
        {note}
        <h2>"All signing keys"</h2>
        {views::keys(state.base(), &policy)}
    }
    .into_any();
    render_refreshing(&state, &s, KEYS, "Key rotation", content, refresh)
}

// ---------------------------------------------------------------- master key

/// The master-key card of the signing-keys page (platform admins): key ids, re-wrap state.
pub(crate) fn master_key_section(base: &str, mk: Result<&Value, String>) -> AnyView {
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
    let state = text(mk, "state");
    let previous = Some(crate::admin_views::list(mk, "previous_key_ids"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "none".into());
    let action = (state != "running").then(|| {
        view! { <a class="button danger" id="rewrap-now" href=format!("{base}keys/master-key/rewrap")>"Re-wrap now…"</a> " " }
    });
    view! {
        <h2>"Master key"</h2>
        <div class="card" id="master-key">
            <dl class="detail">
                <dt>"Current key"</dt><dd><code>{text(mk, "current_key_id")}</code></dd>
                <dt>"Previous keys"</dt><dd><code>{previous}</code></dd>
                <dt>"Re-wrap"</dt><dd>{rewrap_badge(&state)} " " {format!("{} rows under a previous key", int(mk, "remaining"))}</dd>
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
pub(crate) fn rewrap_progress(base: &str, mk: &Value) -> (AnyView, bool) {
    let state = text(mk, "state");
    let remaining = int(mk, "remaining");
    let run = mk.get("last_run").cloned().unwrap_or(Value::Null);
    let this_run_active = !run.is_null() && run.get("finished_at").is_none_or(Value::is_null);
    let rewrapped = int(&run, "rewrapped");
    let total = int(&run, "total_at_start");
    let failed = int(&run, "failed");
    let running = state == "running";
    let by_table = mk
        .get("remaining_by_table")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(table, n)| view! { <tr><td><code>{table.clone()}</code></td><td>{n.to_string()}</td></tr> })
                .collect_view()
        });
    let headline = match state.as_str() {
        "running" => notice(
            "",
            "Re-wrapping: rows sealed under a previous master key are being moved under the current one.".into(),
        ),
        "done" if failed > 0 || !run.get("error").is_none_or(Value::is_null) => notice(
            "error",
            format!(
                "The last re-wrap ended with {failed} rows that could not be opened{}.",
                run.get("error")
                    .and_then(Value::as_str)
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
        ),
        "done" => notice(
            "success",
            format!(
                "Re-wrap done: every row is sealed under the current master key {}.",
                text(mk, "current_key_id")
            ),
        ),
        _ => notice(
            "error",
            format!("{remaining} rows are still sealed under a previous master key and no re-wrap runs: start it."),
        ),
    };
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
    let last = (!run.is_null()).then(|| {
        view! {
            <h2>"Last run on this replica"</h2>
            <dl class="detail" id="last-run">
                <dt>"Started"</dt><dd>{from_ms(run.get("started_at"))}</dd>
                <dt>"Finished"</dt><dd>{from_ms(run.get("finished_at"))}</dd>
                <dt>"Rows re-wrapped"</dt><dd>{format!("{rewrapped} of {total}")}</dd>
                <dt>"Rows that could not be opened"</dt><dd>{failed}</dd>
            </dl>
        }
    });
    let content = view! {
        <div id="rewrap-status">{headline}</div>
        {progress}
        <div class="card">
            <p>"State " {rewrap_badge(&state)} " · current key " <code>{text(mk, "current_key_id")}</code></p>
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
async fn master_key(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require_platform(&state, &headers, "/keys/master-key", KEYS) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match api::get(&state, &s.access_token, "admin/master-key").await {
        Ok(mk) => {
            let (content, running) = rewrap_progress(state.base(), &mk);
            let content = (
                content,
                running.then(|| refreshing(1, "while the re-wrap runs")),
            );
            render_refreshing(
                &state,
                &s,
                KEYS,
                "Master-key re-wrap",
                content.into_any(),
                running.then_some(1),
            )
        }
        Err(e) => api_failed(&state, &s, KEYS, "Master-key re-wrap", e),
    }
}

async fn rewrap_confirm(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let s = match require_platform(&state, &headers, "/keys/master-key/rewrap", KEYS) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let content = views::confirm(
        state.url("keys/master-key/rewrap"),
        &s.csrf,
        "Re-wrap every row sealed under a previous master key (signing keys, tenants' data keys, TOTP secrets) with the current master key now? It runs in the background in batches; the service keeps working meanwhile.".into(),
        "Re-wrap now",
        state.url("keys"),
    );
    render(
        &state,
        &s,
        KEYS,
        "Re-wrap under the current master key",
        content,
    )
}

/// `POST /keys/master-key/rewrap` (confirmed): starts identity's re-wrap, then its progress.
async fn start_rewrap(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let s = match platform_form(
        &state,
        &headers,
        &body,
        KEYS,
        Some("keys/master-key/rewrap"),
    ) {
        Ok((s, _)) => s,
        Err(r) => return *r,
    };
    start(
        &state,
        &s,
        "admin/master-key/rewrap",
        "Master-key re-wrap",
        |_| state.url("keys/master-key"),
    )
    .await
}

/// Starts a long operation of the keys section at identity (a POST to `path`) and answers 303
/// to its progress page (`progress` of identity's answer); a failure is shown on the page.
pub(crate) async fn start(
    state: &AppState,
    s: &Session,
    path: &str,
    title: &str,
    progress: impl FnOnce(&Value) -> String,
) -> Response {
    match api::call(state, &s.access_token, Method::POST, path, None).await {
        Ok(started) => {
            tracing::info!(sub = %s.subject, operation = path, "long operation started from the dashboard");
            redirect(&progress(&started))
        }
        Err(e) => api_failed(state, s, KEYS, title, e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn html(v: AnyView) -> String {
        leptos::prelude::RenderHtml::to_html(v)
    }

    #[test]
    fn rotation_stages_follow_the_lead_time() {
        let policy = json!({"keys": [
            {"kid": "old", "alg": "RS256", "state": "current",
             "published_from": "2026-11-01T00:00:00Z", "signs_from": "2026-11-01T00:00:00Z"},
            {"kid": "new", "alg": "RS256", "state": "next",
             "published_from": "2026-11-26T00:00:00Z", "signs_from": "2026-11-27T00:00:00Z"},
        ]});
        let jwks = json!({"keys": [{"kid": "old"}, {"kid": "new"}]});
        let at = unix("2026-11-26T18:00:00Z").unwrap();
        let keys = rotation_progress(&policy, &jwks, &[], at);
        assert_eq!(keys.len(), 1, "unnamed: the keys still waiting");
        let k = &keys[0];
        assert_eq!((k.kid.as_str(), k.in_jwks, k.signing), ("new", true, false));
        assert_eq!((k.left, k.lead), (6 * 3600, 24 * 3600));
        let page = html(key_stages(k));
        assert!(page.contains("✓ Published in the JWKS"), "{page}");
        assert!(
            page.contains("Waiting for the lead time: 6 h 0 min left"),
            "{page}"
        );
        assert!(
            page.contains(r#"value="64800" max="86400" aria-label="Lead time of key new elapsed""#),
            "{page}"
        );
        // Identity's state decides: past the lead time but not yet reported signing, the key
        // still waits (0 s left); named keys are followed to the end, once identity says so.
        let later = unix("2026-11-27T00:00:01Z").unwrap();
        let keys = rotation_progress(&policy, &jwks, &["new"], later);
        assert!(!keys[0].signing && keys[0].left == 0);
        let mut policy = policy;
        policy["keys"][1]["state"] = json!("current");
        policy["keys"][0]["state"] = json!("retiring");
        let keys = rotation_progress(&policy, &jwks, &["new"], later);
        assert!(keys[0].signing && keys[0].left == 0);
        assert!(rotation_progress(&policy, &jwks, &[], later).is_empty());
        let page = html(key_stages(&keys[0]));
        assert!(
            !page.contains("<progress") && page.contains("✓ Signing"),
            "{page}"
        );
        assert_eq!(duration_text(61), "1 min 1 s");
        assert_eq!(duration_text(-5), "0 s");
    }

    #[test]
    fn rewrap_progress_shows_rows_of_the_run() {
        let mk = json!({
            "current_key_id": "mk-b", "previous_key_ids": ["mk-a"], "state": "running",
            "remaining": 30, "remaining_by_table": {"signing_keys": 10, "mfa_totp": 20},
            "last_run": {"started_at": 1_764_000_000_000_i64, "finished_at": null,
                         "total_at_start": 100, "rewrapped": 70, "failed": 0,
                         "complete": false, "error": null},
        });
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
        let done = json!({"current_key_id": "mk-b", "previous_key_ids": [], "state": "done",
                          "remaining": 0, "remaining_by_table": {}, "last_run": null});
        let (content, running) = rewrap_progress("https://gw.test/dashboard/", &done);
        let page = html(content);
        assert!(!running && !page.contains("<progress"), "{page}");
        assert!(page.contains("Re-wrap done"), "{page}");
        let section = html(master_key_section("https://gw.test/dashboard/", Ok(&mk)));
        assert!(section.contains("mk-a") && section.contains("30 rows under a previous key"));
        assert!(
            !section.contains("rewrap-now"),
            "no second start while it runs"
        );
    }

    #[test]
    fn a_running_verification_shows_events_checked() {
        let job = json!({"id": "j", "tenant": "t1", "state": "running", "checked": 2000, "total": 250_000});
        let page = html(crate::admin_views::verification_running("tenant t1", &job));
        assert!(
            page.contains(
                r#"value="2000" max="250000" aria-label="Chain verification of tenant t1""#
            ),
            "{page}"
        );
        assert!(page.contains("2000 of 250000 events checked"), "{page}");
        assert!(page.contains("reloads itself every 1 second"), "{page}");
    }
}
