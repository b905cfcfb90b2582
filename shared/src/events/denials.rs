//! [`report_denials`]: a service's 401 and 403 answers as `access.denied` security events.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};

use super::{EventReporter, ReportedEvent};

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
    use crate::config::Secret;
    use crate::events::ReporterConfig;
    use crate::token_source::{ClientCredentials, TokenSource};
    use std::sync::Arc;
    use url::Url;

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
