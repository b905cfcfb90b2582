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

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};
use serde::Serialize;
use url::Url;

use crate::config::Secret;
use crate::token_source::{ClientCredentials, TokenSource};

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

/// The `error` of a `WWW-Authenticate: Bearer … error="…"` header.
fn bearer_error(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::WWW_AUTHENTICATE)?.to_str().ok()?;
    let start = v.find("error=\"")? + 7;
    let end = v[start..].find('"')? + start;
    Some(v[start..end].to_owned())
}

/// The acting services, nearest first (`orders acting for` … `for the user`), bounded.
fn actors(act: &crate::auth::Act) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(act);
    while let Some(a) = next.filter(|_| out.len() < 8) {
        out.push(a.sub.chars().take(128).collect());
        next = a.act.as_deref();
    }
    out
}

fn header_text(headers: &HeaderMap, name: &str, max: usize) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().filter(|c| !c.is_control()).take(max).collect())
        .unwrap_or_default()
}

/// axum middleware: every 401/403 the service answers becomes an `access.denied` event
/// (client IP the gateway's rightmost `X-Forwarded-For` entry, user agent, W3C trace id,
/// method, path without the query, status and the bearer `error`).
///
/// Only a refusal of a caller the service verified in this request (a 403 after the
/// [`crate::auth::Principal`] extractor, which fills the request's
/// [`crate::auth::VerifiedCaller`]) is charged to the tenant of `X-Tansu-Tenant` and names
/// the verified token's `sub` as the actor and the services acting for it (`act`, token
/// exchange) as the detail `act`. Any other refusal — a 401, or a 403 before any token was
/// verified (a bad presigned URL) — was asked for by whoever sent it: the tenant it names is
/// only the detail `claimed_tenant`, and it names no actor, so nobody can write into a
/// tenant's log, or put a name there, without that tenant's valid token.
/// Install with `axum::middleware::from_fn_with_state(reporter, report_denials)`.
pub async fn report_denials(
    State(reporter): State<EventReporter>,
    mut request: Request,
    next: Next,
) -> Response {
    let verified = crate::auth::VerifiedCaller::default();
    request.extensions_mut().insert(verified.clone());
    let method = request.method().to_string();
    let path: String = request.uri().path().chars().take(512).collect();
    let headers = request.headers();
    let tenant = Some(header_text(headers, crate::TENANT_HEADER, 128)).filter(|t| !t.is_empty());
    let ip = header_text(headers, "x-forwarded-for", 512)
        .rsplit(',')
        .next()
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let user_agent = header_text(headers, "user-agent", 256);
    let trace_id = header_text(headers, "traceparent", 55)
        .split('-')
        .nth(1)
        .filter(|t| t.len() == 32)
        .map(str::to_owned)
        .unwrap_or_default();
    let response = next.run(request).await;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let mut event = ReportedEvent::new("access.denied", "denied");
        match verified.get() {
            Some(caller) if status == StatusCode::FORBIDDEN => {
                event.tenant = tenant;
                event.actor = Some(caller.sub.chars().take(128).collect());
                if let Some(act) = &caller.act {
                    event.details.insert("act".into(), actors(act).into());
                }
            }
            _ => {
                if let Some(claimed) = tenant {
                    event
                        .details
                        .insert("claimed_tenant".into(), claimed.into());
                }
            }
        }
        event.ip = ip;
        event.user_agent = user_agent;
        event.trace_id = trace_id;
        event.details.insert("method".into(), method.into());
        event.details.insert("path".into(), path.into());
        event
            .details
            .insert("status".into(), status.as_u16().into());
        if let Some(error) = bearer_error(response.headers()) {
            event.details.insert("error".into(), error.into());
        }
        reporter.report(event);
    }
    response
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

    /// A reporter whose identity is unreachable: what it was given stays queued, to be read.
    fn held_reporter() -> EventReporter {
        let issuer = Url::parse("http://127.0.0.1:9/").unwrap();
        let tokens = TokenSource::new(ClientCredentials {
            token_endpoint: issuer.join("connect/token").unwrap(),
            client_id: "test".into(),
            client_secret: Secret::default(),
            scope: String::new(),
        });
        let config = ReporterConfig::new(&issuer, "test").unwrap();
        EventReporter::start(config, tokens, reqwest::Client::new())
    }

    fn held(reporter: &EventReporter) -> Vec<ReportedEvent> {
        let q = reporter.inner.queue.lock().unwrap();
        q.iter().cloned().collect()
    }

    #[tokio::test]
    async fn only_a_verified_caller_is_charged_to_a_tenant_and_named() {
        use axum::routing::get;
        use tower::ServiceExt as _;
        let reporter = held_reporter();
        let claims: crate::auth::AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "https://issuer.test/", "sub": "verified-user", "aud": "tansu.storage",
            "exp": 2_000_000_000, "iat": 1_000_000_000, "jti": "j", "client_id": "c",
            "act": {"sub": "orders-backend"},
        }))
        .unwrap();
        let app = axum::Router::new()
            // Refused before any token was verified (a bad presigned URL, say).
            .route("/unverified", get(|| async { StatusCode::FORBIDDEN }))
            // Refused after the Principal extractor verified the caller (it fills the slot).
            .route(
                "/verified",
                get(move |req: Request| async move {
                    let slot = req
                        .extensions()
                        .get::<crate::auth::VerifiedCaller>()
                        .unwrap();
                    slot.fill(crate::auth::Principal(Arc::new(claims)));
                    StatusCode::FORBIDDEN
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                reporter.clone(),
                report_denials,
            ));
        // A made-up token naming a victim and a service, and the victim tenant's header.
        let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ2aWN0aW0iLCJhY3QiOnsic3ViIjoiYmlsbGluZyJ9fQ.x";
        for path in ["/unverified", "/verified"] {
            let request = http::Request::builder()
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {forged}"))
                .header(crate::TENANT_HEADER, "0190f5a0-0000-7000-8000-000000000001")
                .body(axum::body::Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        let events = held(&reporter);
        assert_eq!(events.len(), 2, "{events:?}");
        let (unverified, verified) = (&events[0], &events[1]);
        assert_eq!(unverified.tenant, None);
        assert_eq!(unverified.actor, None);
        assert_eq!(
            unverified.details["claimed_tenant"],
            "0190f5a0-0000-7000-8000-000000000001"
        );
        assert!(!unverified.details.contains_key("act"));
        assert_eq!(
            verified.tenant.as_deref(),
            Some("0190f5a0-0000-7000-8000-000000000001")
        );
        assert_eq!(verified.actor.as_deref(), Some("verified-user"));
        assert_eq!(
            verified.details["act"],
            serde_json::json!(["orders-backend"])
        );
    }

    #[test]
    fn bearer_errors_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"tansu\", error=\"insufficient_scope\", scope=\"db.write\""
                .parse()
                .unwrap(),
        );
        assert_eq!(bearer_error(&h).as_deref(), Some("insufficient_scope"));
        assert_eq!(bearer_error(&HeaderMap::new()), None);
    }
}
