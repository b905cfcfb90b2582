//! Reporting security events to identity: services post their access denials (and other
//! events) to `POST {issuer}admin/security-events/ingest` with a client-credentials token
//! (scope `events.write`).
//!
//! [`EventReporter::report`] never blocks and never fails the request it describes: the event
//! goes into a bounded in-memory queue; one background task sends it in batches, retrying with
//! exponential backoff (capped at 30 s) while identity is unreachable or failing. Nothing is
//! lost within the bound: an event leaves the queue only once identity acknowledged the batch
//! (202), or identity refused the batch itself as malformed (4xx other than 401/403/408/429,
//! which would never succeed: logged and counted). A full queue refuses the newest event
//! (counted in `tansu_security_events_dropped_total`). Every event carries a UUIDv7 chosen
//! here, so a batch resent after a lost answer is stored once.
//!
//! [`report_denials`] is the axum middleware that reports every 401 and 403 a service answers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument as _;

use http::StatusCode;
use serde::Serialize;
use url::Url;

use crate::config::Secret;
use crate::token_source::{ClientCredentials, TokenSource};

mod denials;
pub use denials::report_denials;

/// `[<service>.events]`: where a service reports its security events. Reporting is off while
/// `identity_url` is empty.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventReporting {
    /// identity's base URL as this service reaches it (its internal address), ending in '/';
    /// the token endpoint is `connect/token` below it.
    pub identity_url: String,
    /// A client allowed `events.write` (client_credentials).
    pub client_id: String,
    pub client_secret: Secret,
    /// Read the secret from this file's first line instead (when `client_secret` is empty),
    /// at the first token request.
    pub client_secret_file: Option<std::path::PathBuf>,
}

impl EventReporting {
    /// The reporter, or `None` when reporting is off.
    pub fn start(&self, service: &str) -> anyhow::Result<Option<EventReporter>> {
        if self.identity_url.is_empty() {
            return Ok(None);
        }
        let base = Url::parse(&self.identity_url)
            .map_err(|e| anyhow::anyhow!("events.identity_url: {e}"))?;
        anyhow::ensure!(
            !self.client_id.is_empty(),
            "events.client_id is required with events.identity_url"
        );
        let creds = ClientCredentials {
            token_endpoint: base.join("connect/token")?,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            scope: "events.write".into(),
        };
        let tokens = if self.client_secret.is_empty() {
            let file = self.client_secret_file.clone().ok_or_else(|| {
                anyhow::anyhow!("events: client_secret or client_secret_file is required")
            })?;
            Tokens::FromFile {
                creds: Box::new(creds),
                file,
                source: tokio::sync::OnceCell::new(),
            }
        } else {
            Tokens::Ready(TokenSource::new(creds))
        };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(EventReporter::spawn(
            ReporterConfig::new(&base, service)?,
            tokens,
            http,
        )))
    }
}

/// Where the sender gets its tokens.
enum Tokens {
    Ready(TokenSource),
    /// The secret is in a file that may not exist yet (written by identity at its first start).
    FromFile {
        creds: Box<ClientCredentials>,
        file: std::path::PathBuf,
        source: tokio::sync::OnceCell<TokenSource>,
    },
}

impl Tokens {
    async fn source(&self) -> Result<&TokenSource, String> {
        match self {
            Tokens::Ready(s) => Ok(s),
            Tokens::FromFile {
                creds,
                file,
                source,
            } => {
                source
                    .get_or_try_init(|| async {
                        let text = tokio::fs::read_to_string(file)
                            .await
                            .map_err(|e| format!("reading {}: {e}", file.display()))?;
                        let secret = text.lines().next().unwrap_or("").trim().to_owned();
                        if secret.is_empty() {
                            return Err(format!("{} is empty", file.display()));
                        }
                        Ok(TokenSource::new(ClientCredentials {
                            client_secret: Secret::new(secret),
                            ..(**creds).clone()
                        }))
                    })
                    .await
            }
        }
    }
}

/// How a reporter sends.
#[derive(Debug, Clone)]
pub struct ReporterConfig {
    /// `…/admin/security-events/ingest` of the issuer.
    pub ingest_url: Url,
    /// The service's name, put in every event's details (`service`).
    pub service: String,
    /// Events held while identity is unreachable.
    pub capacity: usize,
    /// Most events per request (identity accepts up to 1000).
    pub batch: usize,
    /// Longest an event waits before its batch is sent.
    pub linger: Duration,
    /// Timeout of one ingest request.
    pub request_timeout: Duration,
}

impl ReporterConfig {
    /// Defaults: 10,000 events held, batches of up to 500, sent within 200 ms.
    pub fn new(issuer: &Url, service: &str) -> Result<Self, url::ParseError> {
        Ok(Self {
            ingest_url: issuer.join("admin/security-events/ingest")?,
            service: service.to_owned(),
            capacity: 10_000,
            batch: 500,
            linger: Duration::from_millis(200),
            request_timeout: Duration::from_secs(10),
        })
    }
}

/// One event as identity's ingest endpoint takes it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedEvent {
    pub id: uuid::Uuid,
    /// RFC 3339.
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub ip: String,
    pub user_agent: String,
    pub trace_id: String,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ReportedEvent {
    /// A new event (fresh UUIDv7, time now) of `kind` with `outcome`.
    pub fn new(kind: &str, outcome: &str) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            time: now_rfc3339(),
            tenant: None,
            kind: kind.to_owned(),
            actor: None,
            outcome: outcome.to_owned(),
            ip: String::new(),
            user_agent: String::new(),
            trace_id: String::new(),
            details: serde_json::Map::new(),
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

struct Inner {
    config: ReporterConfig,
    queue: Mutex<VecDeque<ReportedEvent>>,
    wake: tokio::sync::Notify,
    /// Signalled whenever the queue shrinks (for [`EventReporter::flush`]).
    drained: tokio::sync::Notify,
}

/// The reporting handle. Cheap to clone; the sender task stops when the last handle is dropped.
#[derive(Clone)]
pub struct EventReporter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReporter")
            .field("ingest_url", &self.inner.config.ingest_url.as_str())
            .field("pending", &self.pending())
            .finish()
    }
}

impl EventReporter {
    /// Starts the sender task on the current runtime.
    pub fn start(config: ReporterConfig, tokens: TokenSource, http: reqwest::Client) -> Self {
        Self::spawn(config, Tokens::Ready(tokens), http)
    }

    fn spawn(config: ReporterConfig, tokens: Tokens, http: reqwest::Client) -> Self {
        let inner = Arc::new(Inner {
            config,
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            drained: tokio::sync::Notify::new(),
        });
        tokio::spawn(send_loop(Arc::downgrade(&inner), tokens, http));
        Self { inner }
    }

    /// Queues `event` (the service name is added to its details). `false` when the queue is
    /// full and the event was dropped.
    pub fn report(&self, mut event: ReportedEvent) -> bool {
        event
            .details
            .insert("service".into(), self.inner.config.service.clone().into());
        let queued = {
            let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= self.inner.config.capacity {
                false
            } else {
                q.push_back(event);
                true
            }
        };
        if queued {
            self.inner.wake.notify_one();
        } else {
            metrics::counter!("tansu_security_events_dropped_total").increment(1);
            tracing::warn!("security event queue full; event dropped");
        }
        queued
    }

    /// Events not yet acknowledged by identity.
    pub fn pending(&self) -> usize {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Waits until every queued event was delivered, at most `within`; whether it was.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let drained = self.inner.drained.notified();
            if self.pending() == 0 {
                return true;
            }
            self.inner.wake.notify_one();
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.pending() == 0;
            }
        }
    }
}

#[derive(Serialize)]
struct Batch<'a> {
    events: &'a [ReportedEvent],
}

enum Sent {
    Delivered,
    /// Identity refused the batch itself; it would never be accepted.
    Rejected(String),
    Retry(String),
}

async fn send_once(
    inner: &Inner,
    tokens: &Tokens,
    http: &reqwest::Client,
    batch: &[ReportedEvent],
) -> Sent {
    let tokens = match tokens.source().await {
        Ok(t) => t,
        Err(e) => return Sent::Retry(format!("client secret: {e}")),
    };
    let token = match tokens.token().await {
        Ok(t) => t,
        Err(e) => return Sent::Retry(format!("token: {e}")),
    };
    let (span, trace) = crate::telemetry::client_call("POST identity event ingest");
    let resp = http
        .post(inner.config.ingest_url.clone())
        .bearer_auth(&*token)
        .headers(trace)
        .timeout(inner.config.request_timeout)
        .json(&Batch { events: batch })
        .send()
        .instrument(span)
        .await;
    match resp {
        Err(e) => Sent::Retry(format!("ingest: {e}")),
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => {
            let status = r.status();
            if status == StatusCode::UNAUTHORIZED {
                tokens.invalidate().await;
            }
            let retry = status.is_server_error()
                || [
                    StatusCode::UNAUTHORIZED,
                    StatusCode::FORBIDDEN,
                    StatusCode::REQUEST_TIMEOUT,
                    StatusCode::TOO_MANY_REQUESTS,
                ]
                .contains(&status);
            let body = r.text().await.unwrap_or_default();
            let why = format!("ingest answered {status}: {}", &body[..body.len().min(300)]);
            if retry {
                Sent::Retry(why)
            } else {
                Sent::Rejected(why)
            }
        }
    }
}

async fn send_loop(inner: std::sync::Weak<Inner>, tokens: Tokens, http: reqwest::Client) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let Some(me) = inner.upgrade() else {
            return;
        };
        let batch: Vec<ReportedEvent> = {
            let q = me.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.iter().take(me.config.batch).cloned().collect()
        };
        if batch.is_empty() {
            // Wake up for new events, and now and then to notice the last handle is gone (the
            // strong reference held here ends with this iteration).
            let _ = tokio::time::timeout(Duration::from_secs(1), me.wake.notified()).await;
            tokio::time::sleep(me.config.linger).await;
            continue;
        }
        match send_once(&me, &tokens, &http, &batch).await {
            Sent::Delivered => {
                backoff = Duration::from_millis(250);
                metrics::counter!("tansu_security_events_reported_total")
                    .increment(batch.len() as u64);
                pop_front(&me, batch.len());
            }
            Sent::Rejected(why) => {
                metrics::counter!("tansu_security_events_rejected_total")
                    .increment(batch.len() as u64);
                tracing::error!(events = batch.len(), reason = %why, "identity refused a security-event batch; dropped");
                pop_front(&me, batch.len());
            }
            Sent::Retry(why) => {
                tracing::warn!(events = batch.len(), pending = me.queue.lock().map(|q| q.len()).unwrap_or(0), reason = %why, retry_in = ?backoff, "security events not delivered yet");
                drop(me);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Removes the `n` events just sent (only the sender removes, from the front).
fn pop_front(inner: &Inner, n: usize) {
    {
        let mut q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = n.min(q.len());
        q.drain(..n);
    }
    inner.drained.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        let year: i32 = t[..4].parse().unwrap();
        assert!((2024..2200).contains(&year), "{t}");
    }
}
