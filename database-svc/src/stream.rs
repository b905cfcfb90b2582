//! The change feed as server-sent events: every change after a position, then new ones as
//! they commit, for as long as the access that opened the stream holds.
//!
//! A stream outlives the checks its request passed (the token's verification, the gateway's
//! tenant check), so it re-checks what could end that access and ends itself, saying why in
//! a last `event: end` (`data: {"reason": …}`, no `id`, so `Last-Event-ID` stays at the last
//! change):
//!
//! - `token-expired` — at the token's `exp` (the token's lifetime bounds the stream's; a
//!   revoked token therefore stops streaming at its `exp` at the latest: resource servers
//!   verify tokens locally and learn nothing of revocations);
//! - `tenant-deprovisioned` — the tenant's database was deprovisioned (at once on this
//!   replica);
//! - `tenant-suspended` / `tenant-unknown` — identity's tenant directory says the tenant is
//!   suspended or deleted (when `tenant_directory` is configured: checked before every event
//!   and at least every [`POLL`], answers cached for its `cache_ms`);
//! - `tenant-status-unavailable` — the directory could not be asked for longer than its
//!   stale window (fail closed, as the gateway does).
//!
//! A follower that fell behind the retention gets `event: gone` and the end; a service
//! shutting down ends streams without an event. Clients reconnect with a valid token and
//! `Last-Event-ID` and continue exactly after the last change they saw.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use serde_json::json;
use tansu_shared::tenant_directory::{TenantDirectory, TenantStatus};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::store::{Change, Store, StoreError};
use crate::tenants::Tenants;

/// Another replica's writes do not notify this one: look again this often (and re-check the
/// tenant's status).
pub const POLL: Duration = Duration::from_secs(2);

/// One open stream's position and what it re-checks.
pub struct Follower {
    pub store: Store,
    pub tenants: Arc<Tenants>,
    pub tenant: Uuid,
    pub directory: Option<TenantDirectory>,
    pub notify: Arc<Notify>,
    pub closing: watch::Receiver<bool>,
    pub since: i64,
    pub batch: i64,
    /// The token's `exp`, in milliseconds since the epoch.
    pub expires_ms: i64,
    /// [`Tenants::deprovisions`] when the stream's tenant was last known to be active.
    pub deprovisions: u64,
    pub pending: VecDeque<Change>,
    pub ended: bool,
}

use tansu_shared::clock::now_ms;

fn end(reason: &str) -> Event {
    Event::default()
        .event("end")
        .json_data(json!({ "reason": reason }))
        .unwrap_or_else(|_| Event::default().event("end"))
}

impl Follower {
    /// The stream's events, ending as described in the module documentation.
    pub fn into_events(
        self,
    ) -> impl futures::Stream<Item = Result<Event, std::convert::Infallible>> {
        futures::stream::unfold(self, |mut f| async move {
            let ev = f.next_event().await?;
            Some((Ok(ev), f))
        })
    }

    /// Why the stream must end now, if it must.
    async fn end_reason(&mut self) -> Option<&'static str> {
        if now_ms() >= self.expires_ms {
            return Some("token-expired");
        }
        let d = self.tenants.deprovisions();
        if d != self.deprovisions {
            match self.tenants.is_active(self.tenant).await {
                Ok(true) => self.deprovisions = d,
                Ok(false) => return Some("tenant-deprovisioned"),
                Err(e) => {
                    tracing::warn!(error = %e, "change stream: the tenant's status is unknown");
                    return Some("tenant-status-unavailable");
                }
            }
        }
        if let Some(directory) = &self.directory {
            match directory.status(self.tenant).await {
                Ok(TenantStatus::Active) => {}
                Ok(TenantStatus::Suspended) => return Some("tenant-suspended"),
                Ok(TenantStatus::Unknown) => return Some("tenant-unknown"),
                Err(e) => {
                    tracing::warn!(error = %e, "change stream: tenant directory unavailable");
                    return Some("tenant-status-unavailable");
                }
            }
        }
        None
    }

    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(reason) = self.end_reason().await {
                self.ended = true;
                return Some(end(reason));
            }
            if let Some(c) = self.pending.pop_front() {
                self.since = c.seq;
                return Some(
                    Event::default()
                        .id(c.seq.to_string())
                        .event("change")
                        .json_data(&c)
                        .unwrap_or_else(|_| Event::default().comment("unserialisable change")),
                );
            }
            // Register for wake-ups before looking, so a commit in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.store.changes(self.since, self.batch).await {
                Ok(list) if !list.is_empty() => self.pending = list.into(),
                Ok(_) => {
                    if *self.closing.borrow() {
                        return None;
                    }
                    let to_expiry = Duration::from_millis(
                        u64::try_from(self.expires_ms.saturating_sub(now_ms())).unwrap_or(0),
                    );
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(POLL.min(to_expiry)) => {}
                        _ = self.closing.changed() => return None,
                    }
                }
                Err(StoreError::Gone { floor }) => {
                    // Fell behind the retention while streaming: say so, then end.
                    self.ended = true;
                    return Some(
                        Event::default()
                            .event("gone")
                            .json_data(json!({ "oldest_since": floor }))
                            .unwrap_or_else(|_| Event::default().event("gone")),
                    );
                }
                // The pool was closed under the stream: deprovisioned (said so at the next
                // check) or shutting down.
                Err(StoreError::Db(sqlx::Error::PoolClosed)) => {
                    if let Ok(false) = self.tenants.is_active(self.tenant).await {
                        self.ended = true;
                        return Some(end("tenant-deprovisioned"));
                    }
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change stream stopped");
                    return None;
                }
            }
        }
    }
}
