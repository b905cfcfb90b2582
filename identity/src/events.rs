//! Security events: an append-only log, hash-chained per tenant.
//!
//! Each event carries its tenant's sequence number, the hash of the previous event of that
//! tenant (`prev_hash`, "" for the first) and its own `hash` = hex SHA-256 of
//! `prev_hash + "\n" + canonical JSON` (the fields in a fixed order, `details` as the stored
//! text). Changing, removing or reordering a stored event breaks the chain at that event, which
//! `GET /admin/security-events/verify` reports. Appends race on the unique `(tenant_id, seq)`
//! and retry, so the chain stays linear with several writers or replicas.
//!
//! Recording never fails the request it describes: a store failure is logged and counted.

// `Problem` is the handlers' error type, returned by the helpers too.
#![allow(clippy::result_large_err)]

use serde::Serialize;

use tansu_shared::admin_api::{BrokenLink, ChainCheck};

use crate::event_log::EventLog;
use crate::store::events::EventRow;
use crate::store::{new_id, now_ms};

pub const SIGN_IN: &str = "sign_in";
pub const LOCKOUT: &str = "sign_in.locked";
pub const REFRESH_REUSE: &str = "refresh.reuse_detected";
pub const KEY_ROTATION: &str = "keys.rotate";
pub const CLIENT_CHANGE: &str = "client.change";
pub const TENANT_CHANGE: &str = "tenant.change";
pub const USER_CHANGE: &str = "user.change";
pub const ROLE_CHANGE: &str = "role.change";
pub const SECRET_READ: &str = "secret.read";
pub const SECRET_WRITE: &str = "secret.write";
pub const MFA_ENROL: &str = "mfa.enrol";
pub const MFA_VERIFY: &str = "mfa.verify";
pub const MFA_RECOVERY: &str = "mfa.recovery_code";
pub const MFA_RESET: &str = "mfa.reset";
/// A passkey registered, renamed or removed (`details.action`).
pub const PASSKEY_CHANGE: &str = "passkey.change";
/// A passkey whose signature counter did not grow: a cloned authenticator, refused.
pub const PASSKEY_CLONED: &str = "passkey.cloned";

/// Where a request came from: client IP, user agent and trace id.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub ip: String,
    pub user_agent: String,
    pub trace_id: String,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub tenant_id: Option<&'a str>,
    pub kind: &'a str,
    /// `user:<id>`, `client:<client_id>` or `system`.
    pub actor: String,
    pub outcome: &'a str,
    pub details: serde_json::Value,
}

#[derive(Serialize)]
struct Canonical<'a> {
    id: &'a str,
    tenant_id: &'a str,
    seq: i64,
    at: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    actor: &'a str,
    ip: &'a str,
    user_agent: &'a str,
    outcome: &'a str,
    details: &'a str,
    trace_id: &'a str,
}

/// The hash an event must carry given its fields and `prev_hash`.
pub fn link_hash(e: &EventRow) -> String {
    let canonical = Canonical {
        id: &e.id,
        tenant_id: &e.tenant_id,
        seq: e.seq,
        at: e.at,
        kind: &e.kind,
        actor: &e.actor,
        ip: &e.ip,
        user_agent: &e.user_agent,
        outcome: &e.outcome,
        details: &e.details,
        trace_id: &e.trace_id,
    };
    let json = serde_json::to_string(&canonical).unwrap_or_default();
    let mut input = Vec::with_capacity(e.prev_hash.len() + 1 + json.len());
    input.extend_from_slice(e.prev_hash.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(json.as_bytes());
    crate::crypto::sha256(&input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends an event to its tenant's chain. Never fails the caller: errors are logged.
pub async fn record(log: &EventLog, meta: &Meta, event: Event<'_>) {
    if let Err(e) = append_batch(log, vec![row(meta, event)]).await {
        metrics::counter!("identity_security_event_failures_total").increment(1);
        tracing::error!(error = %e, "recording a security event failed");
    }
}

/// The row of an event, not linked yet (`seq`, `prev_hash` and `hash` empty).
pub fn row(meta: &Meta, event: Event<'_>) -> EventRow {
    EventRow {
        id: new_id(),
        tenant_id: event.tenant_id.unwrap_or("").to_owned(),
        seq: 0,
        at: now_ms(),
        kind: event.kind.to_owned(),
        actor: event.actor,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        outcome: event.outcome.to_owned(),
        details: event.details.to_string(),
        trace_id: meta.trace_id.clone(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends already-described events to their tenants' chains, all or none per tenant, through
/// the process's group-commit writer ([`crate::event_log`]). `rows` carry everything but
/// `seq`, `prev_hash` and `hash`.
pub async fn append_batch(log: &EventLog, rows: Vec<EventRow>) -> anyhow::Result<()> {
    log.append(rows).await
}

/// Retention: purges events older than `days` (see [`crate::store::Store::purge_events`]).
pub async fn purge_old(store: &crate::store::Store, days: u64) {
    let keep_ms = i64::try_from(days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let now = now_ms();
    match store.purge_events(now.saturating_sub(keep_ms), now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, days, "security events past retention purged"),
        Err(e) => tracing::warn!(error = %e, "purging old security events failed"),
    }
}

/// Events read per page while walking a chain.
pub(crate) const CHAIN_PAGE: i64 = 1000;

/// Walks a tenant's chain (`""`: the platform's) from its anchor and names the first event
/// whose link does not hold; `on_page` hears the number of events checked so far after each
/// page. The answer of `GET /admin/security-events/verify`.
pub(crate) async fn walk_chain(
    store: &crate::store::Store,
    tenant_id: &str,
    mut on_page: impl FnMut(i64),
) -> anyhow::Result<ChainCheck> {
    // After a retention purge the chain starts at its anchor (the last purged link).
    let (anchor_seq, mut prev_hash) = store.event_anchor(tenant_id).await?;
    let mut expected_seq = anchor_seq + 1;
    let mut checked: i64 = 0;
    loop {
        let page = store
            .chain_page(tenant_id, expected_seq - 1, CHAIN_PAGE)
            .await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            let reason = if e.seq != expected_seq {
                Some("an event is missing before this one")
            } else if e.prev_hash != prev_hash {
                Some("prev_hash does not match the previous event")
            } else if link_hash(e) != e.hash {
                Some("the event's content does not match its hash")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(ChainCheck {
                    ok: false,
                    checked,
                    first_broken: Some(BrokenLink {
                        id: e.id.clone(),
                        seq: e.seq,
                        reason: reason.to_owned(),
                    }),
                    starts_after_seq: None,
                });
            }
            prev_hash = e.hash.clone();
            expected_seq += 1;
            checked += 1;
        }
        on_page(checked);
    }
    Ok(ChainCheck {
        ok: true,
        checked,
        first_broken: None,
        starts_after_seq: Some(anchor_seq),
    })
}
