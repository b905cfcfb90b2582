//! Signing keys (platform admins): the rotation policy and every key, "rotate now" (confirmed)
//! and the rotation's progress page.
//!
//! A rotation publishes its new keys in the JWKS at once; they sign only after the lead time.
//! The progress page (`keys/rotation?kids=…`) shows each new key's stage (published →
//! waiting for the lead time, with the time left → signing) and reloads itself while a key
//! waits (`<meta http-equiv="refresh">`, no script).

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{KeyPolicy, KeyRotation, MasterKey};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Confirmed};
use crate::api::Jwks;
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::KEYS;
use crate::frame::notice;
use crate::http::redirect;
use crate::page::PlatformAdmin;
use crate::widgets::{bar, days, duration_text, refreshing, status_badge};

/// The longest a progress page waits before it reloads itself.
const MAX_REFRESH_SECS: i64 = 30;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/keys", get(keys))
        .route("/keys/rotate", get(rotate_confirm).post(rotate))
        .route("/keys/rotation", get(rotation))
}

async fn keys(admin: PlatformAdmin) -> Result<Response, PageError> {
    let identity = admin.identity();
    let (policy, master_key) = tokio::join!(
        identity.get::<KeyPolicy>("admin/keys/policies"),
        identity.get::<MasterKey>("admin/master-key"),
    );
    let policy = policy.map_err(|e| PageError::api(&admin, KEYS.active, KEYS.title, e))?;
    let content = (
        keys_view(admin.base(), &policy),
        crate::pages::master_key::section(admin.base(), master_key.map_err(|e| e.to_string())),
    )
        .into_any();
    Ok(admin.render(KEYS.active, KEYS.title, content))
}

fn rotate_question() -> Confirm {
    Confirm {
        path: "keys/rotate".into(),
        fields: Vec::new(),
        title: "Rotate signing keys".into(),
        question: "Rotate the signing keys now? New keys are published at once and start signing after the lead time; the current keys retire and stay published for the grace period.".into(),
        button: "Rotate now",
        cancel: "keys".into(),
    }
}

async fn rotate_confirm(admin: PlatformAdmin) -> Response {
    rotate_question().page(&admin, KEYS)
}

/// `POST /keys/rotate` (confirmed): identity's rotation, then its progress page.
async fn rotate(form: CsrfForm<Confirmed, PlatformAdmin>) -> Result<Response, PageError> {
    let admin = &form.admin;
    Confirm::required(admin, &form.fields.confirm, "keys/rotate", &[])?;
    let rotated: KeyRotation = admin
        .identity()
        .call(Method::POST, "admin/keys/rotate-now", None::<&()>)
        .await
        .map_err(|e| PageError::api(admin, KEYS.active, KEYS.title, e))?;
    tracing::info!(sub = %admin.session.subject, "key rotation started from the dashboard");
    let kids: Vec<&str> = rotated.pending.iter().map(|k| k.kid.as_str()).collect();
    let q = serde_urlencoded::to_string([("kids", kids.join(","))]).unwrap_or_default();
    Ok(redirect(&format!("{}?{q}", admin.url("keys/rotation"))))
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

/// RFC 3339 → unix seconds.
fn unix(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// The keys of the rotation (`kids`; none named: every key still waiting to sign), from
/// identity's key policy and JWKS at `now` (unix seconds).
pub(crate) fn rotation_progress(
    policy: &KeyPolicy,
    jwks: &Jwks,
    kids: &[&str],
    now: i64,
) -> Vec<KeyProgress> {
    policy
        .keys
        .iter()
        .filter(|k| {
            if kids.is_empty() {
                k.state == "next"
            } else {
                kids.contains(&k.kid.as_str())
            }
        })
        .map(|k| {
            let from = unix(&k.signs_from).unwrap_or(now);
            let published_from = unix(&k.published_from).unwrap_or(from);
            KeyProgress {
                in_jwks: jwks.keys.iter().any(|j| j.kid == k.kid),
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                signs_from: k.signs_from.clone(),
                left: (from - now).max(0),
                lead: (from - published_from).max(0),
                // Identity's word (its clock), not ours: "next" waits even at 0 s left.
                signing: k.state != "next",
            }
        })
        .collect()
}

/// One key's stages: published in the JWKS → waiting for the lead time → signing.
fn key_stages(k: &KeyProgress) -> AnyView {
    let stage = |done: bool, active: bool, title: String| {
        let (class, mark) = if done {
            ("done", "✓ ")
        } else if active {
            ("active", "… ")
        } else {
            ("todo", "")
        };
        view! { <li class=class>{format!("{mark}{title}")}</li> }
    };
    let waiting = !k.signing;
    let lead = waiting.then(|| {
        let elapsed = k.lead - k.left;
        bar(
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
        )
    });
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

#[derive(Deserialize)]
struct RotationQuery {
    #[serde(default)]
    kids: String,
}

/// `GET /keys/rotation?kids=…`: the rotation's stages; reloads itself while a key waits.
async fn rotation(
    admin: PlatformAdmin,
    Query(q): Query<RotationQuery>,
) -> Result<Response, PageError> {
    let kids: Vec<&str> = q
        .kids
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .take(16)
        .collect();
    let identity = admin.identity();
    let (policy, jwks) = tokio::join!(
        identity.get::<KeyPolicy>("admin/keys/policies"),
        identity.get::<Jwks>(".well-known/jwks"),
    );
    let (policy, jwks) = match (policy, jwks) {
        (Ok(p), Ok(j)) => (p, j),
        (Err(e), _) | (_, Err(e)) => {
            return Err(PageError::api(&admin, KEYS.active, KEYS.title, e));
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let keys = rotation_progress(&policy, &jwks, &kids, now);
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
        {keys_view(admin.base(), &policy)}
    }
    .into_any();
    Ok(admin.render_with(
        KEYS.active,
        "Key rotation",
        content,
        axum::http::StatusCode::OK,
        refresh,
    ))
}

/// The rotation policy and every key, with "Rotate now…".
pub(crate) fn keys_view(base: &str, policy: &KeyPolicy) -> AnyView {
    let rows = policy
        .keys
        .iter()
        .map(|k| {
            view! {
                <tr>
                    <td><code>{k.kid.clone()}</code></td>
                    <td>{k.alg.clone()}</td>
                    <td>{status_badge(&k.state)}</td>
                    <td>{k.signs_from.clone()}</td>
                    <td>{k.signs_until.clone().unwrap_or_default()}</td>
                    <td>{k.published_until.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="card">
            <p>"Rotation period " <strong>{days(policy.rotation_period_secs)}</strong>
               ", grace " <strong>{days(policy.grace_secs)}</strong>
               ", lead " <strong>{days(policy.lead_secs)}</strong>
               ". Default algorithm " <strong>{policy.default_alg.clone()}</strong> "."</p>
            <a class="button danger" id="rotate-now" href=format!("{base}keys/rotate")>"Rotate now…"</a>
        </div>
        <div class="table"><table>
            <thead><tr><th>"Key id"</th><th>"Alg"</th><th>"State"</th><th>"Signs from"</th><th>"Signs until"</th><th>"Published until"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}

/// The key rotation policy as the settings page shows it (the identity service's config).
pub(crate) fn key_policy_view(base: &str, policy: &KeyPolicy) -> AnyView {
    view! {
        <div class="card" id="key-policy">
            <p>"Keys rotate every " <strong>{days(policy.rotation_period_secs)}</strong>
               "; a new key is published " <strong>{days(policy.lead_secs)}</strong>
               " before it signs; a retired key stays published for " <strong>{days(policy.grace_secs)}</strong>
               ". Default algorithm " <strong>{policy.default_alg.clone()}</strong>
               ". The policy is the identity service's configuration (key_rotation_*)."</p>
            <a class="button secondary" href=format!("{base}keys")>"Signing keys"</a>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn html(v: AnyView) -> String {
        leptos::prelude::RenderHtml::to_html(v)
    }

    fn key(kid: &str, state: &str, published: &str, signs: &str) -> serde_json::Value {
        json!({"kid": kid, "alg": "RS256", "state": state, "published_from": published,
               "signs_from": signs, "signs_until": null, "published_until": null})
    }

    fn policy(keys: Vec<serde_json::Value>) -> KeyPolicy {
        serde_json::from_value(json!({
            "default_alg": "RS256", "algorithms": ["RS256"], "rotation_period_secs": 1,
            "grace_secs": 1, "lead_secs": 1, "check_interval_secs": 1, "jwks_max_age_secs": 1,
            "keys": keys,
        }))
        .unwrap()
    }

    #[test]
    fn rotation_stages_follow_the_lead_time() {
        let mut policy = policy(vec![
            key(
                "old",
                "current",
                "2026-11-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
            ),
            key(
                "new",
                "next",
                "2026-11-26T00:00:00Z",
                "2026-11-27T00:00:00Z",
            ),
        ]);
        let jwks: Jwks =
            serde_json::from_value(json!({"keys": [{"kid": "old"}, {"kid": "new"}]})).unwrap();
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
        policy.keys[1].state = "current".into();
        policy.keys[0].state = "retiring".into();
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
}
