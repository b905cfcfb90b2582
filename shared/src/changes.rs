//! Changes pushed between replicas over Redis pub/sub: when identity suspends, resumes, renames
//! or deletes a tenant, or changes a client, it publishes a [`Change`] on [`CHANNEL`]; every
//! gateway drops its cached answer for that tenant, every identity replica its cached row and
//! every database-svc and storage-svc replica its cached tenant status; when database-svc
//! deprovisions a tenant's database, the other database-svc replicas close its pool. The change
//! holds everywhere at once instead of after the caches' time bounds.
//!
//! Push is an accelerator, not the guarantee: while Redis is away nothing is pushed and the
//! caches' time bounds (`tenant_cache_ms` at the gateways, `client_cache_ms` in identity) still
//! hold. A subscriber that (re)subscribes first expires everything it cached, since it may have
//! missed changes while it was not listening.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The one channel of the platform's changes. Platforms sharing one Redis see each other's
/// changes only as cache expiries: harmless, answers are fetched again.
pub const CHANNEL: &str = "tansu:changes";

/// One change. Unknown kinds are ignored by subscribers (newer publishers, older readers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A tenant's status or slug changed, or it was created or deleted.
    Tenant { id: String, slug: String },
    /// A client's settings, secret or status changed.
    Client { id: String },
    /// A tenant's database was deprovisioned (database-svc): other database-svc replicas close
    /// its pool and end its change streams.
    Database { tenant: String },
}

/// Publishes changes; without a Redis URL it does nothing (single replica, or caches only).
pub struct Publisher {
    client: Option<redis::Client>,
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("enabled", &self.client.is_some())
            .finish()
    }
}

/// How long a publish may take before it is given up (the change still holds after the
/// subscribers' cache bounds).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

impl Publisher {
    /// `url` empty: a publisher that does nothing. An invalid URL is an error at start.
    pub fn new(url: &str) -> Result<Self, String> {
        let client = if url.is_empty() {
            None
        } else {
            Some(redis::Client::open(url).map_err(|_| "not a valid Redis URL".to_owned())?)
        };
        Ok(Self {
            client,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// Publishes `change` (connecting first if needed), bounded by a timeout; a failure is
    /// logged and counted, never returned: the caller's change has already happened.
    pub async fn publish(&self, change: &Change) {
        let Some(client) = &self.client else {
            return;
        };
        let Ok(payload) = serde_json::to_string(change) else {
            return;
        };
        let mut slot = self.conn.lock().await;
        let attempt = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            if slot.is_none() {
                *slot = Some(client.get_multiplexed_async_connection().await?);
            }
            let conn = slot.as_mut().expect("connected above");
            redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&payload)
                .query_async::<i64>(conn)
                .await
        })
        .await;
        match attempt {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                *slot = None;
                metrics::counter!("tansu_changes_publish_failures_total").increment(1);
                tracing::warn!(error = %e, "change not pushed; replicas see it within their cache bounds");
            }
            Err(_) => {
                *slot = None;
                metrics::counter!("tansu_changes_publish_failures_total").increment(1);
                tracing::warn!(
                    "change not pushed (Redis did not answer); replicas see it within their cache bounds"
                );
            }
        }
    }
}

/// Follows the changes for a service that caches identity's tenant status (database-svc,
/// storage-svc): a pushed tenant change expires that tenant's cached status, a (re)subscription
/// every status, and `on_database` hears deprovisioned tenant databases. Runs until `stop`.
pub async fn follow_tenants(
    url: &str,
    directory: Option<crate::tenant_directory::TenantDirectory>,
    on_database: impl Fn(uuid::Uuid) + Send,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    let all = directory.clone();
    subscribe(
        url,
        move || {
            if let Some(d) = &all {
                d.expire_all();
            }
        },
        move |change| match change {
            Change::Tenant { id, .. } => {
                if let (Some(d), Ok(id)) = (&directory, id.parse()) {
                    d.expire(id);
                }
            }
            Change::Database { tenant } => {
                if let Ok(id) = tenant.parse() {
                    on_database(id);
                }
            }
            Change::Client { .. } => {}
        },
        stop,
    )
    .await;
}

/// Receives changes until `stop` resolves: calls `on_subscribed` each time a subscription
/// starts (expire what may have been missed) and `on_change` for each change. Reconnects with
/// a bounded backoff (250 ms doubling to 5 s) while Redis is away.
pub async fn subscribe(
    url: &str,
    on_subscribed: impl Fn() + Send,
    on_change: impl Fn(Change) + Send,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    use futures::StreamExt as _;
    let client = match redis::Client::open(url) {
        Ok(c) => c,
        Err(_) => {
            tracing::error!("changes: not a valid Redis URL; caches rely on their time bounds");
            return;
        }
    };
    let mut stop = std::pin::pin!(stop);
    let mut delay = Duration::from_millis(250);
    loop {
        let session = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            on_subscribed();
            tracing::info!("changes: subscribed");
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Change>(&payload) {
                    Ok(change) => on_change(change),
                    Err(_) => tracing::debug!("changes: a message of an unknown kind ignored"),
                }
            }
            Ok::<(), redis::RedisError>(())
        };
        let started = tokio::time::Instant::now();
        tokio::select! {
            outcome = session => {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis(), "changes: not subscribed");
                } else {
                    tracing::warn!("changes: subscription ended; subscribing again");
                }
            }
            () = &mut stop => return,
        }
        // A subscription that lasted resets the backoff.
        if started.elapsed() > Duration::from_secs(10) {
            delay = Duration::from_millis(250);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut stop => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_have_a_stable_wire_form() {
        let t = Change::Tenant {
            id: "0193".into(),
            slug: "acme".into(),
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"kind":"tenant","id":"0193","slug":"acme"}"#
        );
        let c: Change = serde_json::from_str(r#"{"kind":"client","id":"app"}"#).unwrap();
        assert_eq!(c, Change::Client { id: "app".into() });
        assert!(serde_json::from_str::<Change>(r#"{"kind":"role","id":"x"}"#).is_err());
    }

    #[tokio::test]
    async fn an_empty_url_publishes_nothing_and_a_bad_one_is_refused() {
        Publisher::new("")
            .unwrap()
            .publish(&Change::Client { id: "x".into() })
            .await;
        assert!(Publisher::new("not a url").is_err());
    }
}
