//! The chain verification of the security events page: a tenant's (or the platform's) event
//! chain is read whole, so it is verified on request only — "Verify the chain" starts
//! identity's verification job, and the events page shows its progress (reloading itself
//! every second) and then the result. A tenant admin verifies their own tenant's chain only.

use axum::response::Response;
use axum::routing::post;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{ChainCheck, Verification};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::api::ApiError;
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{EVENTS, notice};
use crate::http::redirect;
use crate::page::AdminSession;
use crate::widgets::{bar, hidden, refreshing, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/admin/security-events/verify", post(verify_chain))
}

/// The chain to verify: the tenant admin's own, or the platform admin's choice.
pub(crate) fn chain_of(admin: &AdminSession, tenant: &str) -> Option<(String, String)> {
    match (admin.own_tenant(), tenant) {
        (Some(own), _) => Some((own.to_owned(), "your tenant".to_owned())),
        (None, "") => None,
        (None, "platform") => Some(("platform".to_owned(), "the platform".to_owned())),
        (None, t) => Some((t.to_owned(), format!("tenant {t}"))),
    }
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    tenant: String,
    /// The events page's filters (a query string) to return to.
    #[serde(default)]
    filters: String,
}

/// The filters a form carries back to the events page, limited to the page's own parameters.
fn kept_filters(filters: &str) -> String {
    const KEYS: &[&str] = &[
        "tenant", "type", "actor", "outcome", "from", "to", "sort", "order",
    ];
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(filters).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| KEYS.contains(&k.as_str()) && v.len() <= 200)
        .collect();
    serde_urlencoded::to_string(&kept).unwrap_or_default()
}

/// `POST /admin/security-events/verify`: starts identity's verification job of the chosen
/// chain (the tenant admin's own; the platform admin's choice), then shows its progress on
/// the events page (`verification=<id>`), which reloads itself until the job is done.
async fn verify_chain(form: CsrfForm<VerifyForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tenant = f.tenant.trim();
    if admin
        .own_tenant()
        .is_some_and(|own| !tenant.is_empty() && tenant != own)
    {
        return Err(PageError::not_found(admin, EVENTS.active));
    }
    let here = format!("{}?{}", admin.url(EVENTS.active), kept_filters(&f.filters));
    let Some((chain, _)) = chain_of(admin, tenant) else {
        return Ok(redirect(&here));
    };
    let path = format!(
        "admin/security-events/verifications?tenant={}",
        urlencode(&chain)
    );
    match admin
        .identity()
        .call::<_, Verification>(Method::POST, &path, None::<&()>)
        .await
    {
        Ok(job) => Ok(redirect(&format!(
            "{here}&verification={}",
            urlencode(&job.id)
        ))),
        Err(ApiError::Status(429, detail)) => Ok(admin.render_with(
            EVENTS.active,
            EVENTS.title,
            notice("error", format!("Not started: {detail}")),
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            None,
        )),
        Err(e) => Err(PageError::api(admin, EVENTS.active, EVENTS.title, e)),
    }
}

/// Chain verification on request (it reads the whole chain): a form starting identity's
/// verification job; the events page (with `filters`, a query string) then shows its progress.
pub(crate) fn verify_link(
    what: &str,
    action: String,
    csrf: &str,
    tenant: &str,
    filters: &str,
) -> AnyView {
    view! {
        <div class="notice" id="chain-status">{format!("Event chain of {what}: not verified yet. ")}
            <form class="inline" method="post" action=action>
                {hidden("csrf", csrf)}
                {hidden("tenant", tenant)}
                {hidden("filters", filters)}
                <button class="secondary" type="submit" id="verify-chain">"Verify the chain"</button>
            </form>
        </div>
    }
    .into_any()
}

/// A running verification job: events checked of the chain's events when it started.
pub(crate) fn verification_running(what: &str, job: &Verification) -> AnyView {
    let (checked, total) = (job.checked, job.total);
    view! {
        <div class="notice" id="chain-status">
            {format!("Verifying the event chain of {what}…")}
            {bar(
                "chain-progress",
                format!("Chain verification of {what}"),
                checked,
                total,
                format!("{checked} of {total} events checked"),
            )}
            {refreshing(1, "until the verification is done")}
        </div>
    }
    .into_any()
}

pub(crate) fn chain_status(what: &str, v: Result<&ChainCheck, String>) -> AnyView {
    match v {
        Ok(v) if v.ok => view! {
            <div class="notice success" id="chain-status">{format!("Event chain of {what}: intact ({} events checked).", v.checked)}</div>
        }
        .into_any(),
        Ok(v) => {
            let (id, seq, reason) = v
                .first_broken
                .as_ref()
                .map(|b| (b.id.clone(), b.seq.to_string(), b.reason.clone()))
                .unwrap_or_default();
            view! {
                <div class="notice error" id="chain-status">{format!(
                    "Event chain of {what}: BROKEN at event {id} (seq {seq}): {reason}"
                )}</div>
            }
            .into_any()
        }
        Err(e) => view! { <div class="notice" id="chain-status">{format!("Chain verification unavailable: {e}")}</div> }.into_any(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_running_verification_shows_events_checked() {
        let job: Verification = serde_json::from_value(json!({
            "id": "j", "tenant": "t1", "state": "running", "checked": 2000, "total": 250_000,
            "started_at": "x", "finished_at": null, "result": null, "error": null,
        }))
        .unwrap();
        let page = leptos::prelude::RenderHtml::to_html(verification_running("tenant t1", &job));
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
