//! Security events from other services: the authenticated, batched ingest endpoint
//! (scope `events.write`; idempotent per event id; bad input answered 400/413), the shared
//! crate's reporter delivering everything queued during an identity outage, and retention that
//! purges old events while the chain still verifies — on SQLite and (when configured)
//! PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tansu_shared::events::{EventReporting, ReportedEvent};

const SUITE: &str = "identity security-event ingest";

/// A service client `name` allowed `scope`, and a token of it with that scope.
async fn client_token(id: &Instance, name: &str, scope: &str) -> (String, String) {
    let (client, secret) = id
        .create_client(json!({
            "name": name,
            "grant_types": ["client_credentials"],
            "scopes": [scope],
        }))
        .await;
    let token = id.access_token(&client, &secret, Some(scope)).await;
    (client, token)
}

/// A service client allowed `events.write`, and a token of it.
async fn service_token(id: &Instance) -> (String, String) {
    client_token(id, "reporting service", "events.write").await
}

async fn ingest(id: &Instance, token: Option<&str>, body: Vec<u8>) -> (u16, String, Value) {
    let mut req = id
        .http
        .post(id.url("/admin/security-events/ingest"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send_ok().await;
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, www, body)
}

fn event(kind: &str, tenant: Option<&str>) -> Value {
    let mut e = json!({
        "id": uuid::Uuid::now_v7().to_string(),
        "type": kind,
        "outcome": "denied",
        "ip": "203.0.113.7",
        "user_agent": "curl/8",
        "details": {"path": "/db/api/collections", "status": 403},
    });
    if let Some(t) = tenant {
        e["tenant"] = json!(t);
    }
    e
}

async fn events_of_type(id: &Instance, admin: &str, kind: &str) -> Vec<Value> {
    let (status, v) = id
        .get_as(
            &format!("/admin/security-events?type={kind}&limit=1000"),
            admin,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn ingest_is_authenticated_idempotent_and_validated() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let tenant = id.create_tenant("ingest-a").await;
        let (client, token) = service_token(&id).await;
        let batch = json!({"events": [
            event("access.denied", Some("ingest-a")),
            event("access.denied", Some(&tenant)),
            event("access.denied", Some("no-such-tenant")),
            event("access.denied", None),
        ]});
        let body = serde_json::to_vec(&batch).unwrap();

        // Who may post: a token with events.write for tansu.identity, nobody else.
        let (status, www, _) = ingest(&id, None, body.clone()).await;
        assert_eq!(status, 401, "{}", db.name());
        assert!(www.starts_with("Bearer"), "{www}");
        let (_, weak) = client_token(&id, "no events", "secrets.read").await;
        let (status, www, _) = ingest(&id, Some(&weak), body.clone()).await;
        assert_eq!(status, 403);
        assert!(www.contains("insufficient_scope"), "{www}");

        let (status, _, v) = ingest(&id, Some(&token), body.clone()).await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v, json!({"accepted": 4, "duplicates": 0}));
        // A retried batch (the answer was lost) is stored once.
        let (status, _, v) = ingest(&id, Some(&token), body).await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v, json!({"accepted": 0, "duplicates": 4}));

        let stored = events_of_type(&id, &admin, "access.denied").await;
        assert_eq!(stored.len(), 4, "{stored:?}");
        let on_tenant: Vec<&Value> = stored
            .iter()
            .filter(|e| e["tenant_id"] == json!(tenant))
            .collect();
        assert_eq!(on_tenant.len(), 2, "slug and id both resolve: {stored:?}");
        let claimed: Vec<&Value> = stored
            .iter()
            .filter(|e| e["details"]["claimed_tenant"] == "no-such-tenant")
            .collect();
        assert_eq!(claimed.len(), 1);
        assert!(claimed[0]["tenant_id"].is_null(), "platform chain");
        for e in &stored {
            assert_eq!(e["details"]["reported_by"], json!(client), "{e}");
            assert_eq!(e["outcome"], "denied");
            assert_eq!(e["ip"], "203.0.113.7");
            assert_eq!(e["actor"], "anonymous");
        }
        let (_, v) = id
            .get_as(
                &format!("/admin/security-events/verify?tenant={tenant}"),
                &admin,
            )
            .await;
        assert_eq!(v["ok"], true, "{v}");

        // Bad input: a clear 400/413, nothing stored.
        let bad_bodies: Vec<(Vec<u8>, u16)> = vec![
            (b"{not json".to_vec(), 400),
            (
                serde_json::to_vec(&json!({"events": [{"id": "x", "type": "a", "outcome": "denied"}]}))
                    .unwrap(),
                400,
            ),
            (
                serde_json::to_vec(&json!({"events": [{
                    "id": uuid::Uuid::now_v7().to_string(), "type": "a", "outcome": "maybe"}]}))
                .unwrap(),
                400,
            ),
            (
                serde_json::to_vec(&json!({"events": [{
                    "id": uuid::Uuid::now_v7().to_string(), "type": "bad type!", "outcome": "denied"}]}))
                .unwrap(),
                400,
            ),
            (
                serde_json::to_vec(&json!({"events": [{
                    "id": uuid::Uuid::now_v7().to_string(), "type": "a", "outcome": "denied",
                    "time": "2099-01-01T00:00:00Z"}]}))
                .unwrap(),
                400,
            ),
            (
                serde_json::to_vec(&json!({"events": (0..1001)
                    .map(|_| event("access.denied", None))
                    .collect::<Vec<_>>()}))
                .unwrap(),
                400,
            ),
            (vec![b' '; 1024 * 1024 + 1], 413),
        ];
        for (body, expected) in bad_bodies {
            let (status, _, v) = ingest(&id, Some(&token), body).await;
            assert_eq!(status, expected, "{v}");
            assert!(v["type"].is_string(), "problem+json: {v}");
        }
        assert_eq!(events_of_type(&id, &admin, "access.denied").await.len(), 4);
        assert_eq!(events_of_type(&id, &admin, "a").await.len(), 0);

        id.stop().await;
        db.cleanup().await;
    }
}

/// The shared crate's reporter against the real identity: events reported while identity is
/// down are delivered, every one exactly once, when it comes back on the same address.
#[tokio::test]
async fn reporter_delivers_what_was_queued_during_an_outage() {
    for db in backends(SUITE).await {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = test_config(&db, &format!("http://{addr}/"), &addr.to_string());
        tansu_shared::install_crypto_provider();
        let state = tansu_identity::AppState::new(config.clone()).await.unwrap();
        let server = tansu_shared::testing::TestServer::start_on(
            listener,
            tansu_identity::router(state.clone()),
        );
        let id = Instance {
            server,
            state,
            issuer: format!("http://{addr}/"),
            http: reqwest::Client::new(),
        };
        let (client, secret) = id
            .create_client(json!({
                "name": "reporting service",
                "grant_types": ["client_credentials"],
                "scopes": ["events.write"],
            }))
            .await;
        id.stop().await;

        // Identity is down: everything waits in the reporter's queue.
        let reporter = EventReporting {
            identity_url: format!("http://{addr}/"),
            client_id: client.clone(),
            client_secret: tansu_shared::config::Secret::new(secret),
            client_secret_file: None,
        }
        .start("test-service")
        .unwrap()
        .expect("reporting is configured");
        for i in 0..1200 {
            let mut e = ReportedEvent::new("access.denied", "denied");
            e.details.insert("n".into(), i.into());
            assert!(reporter.report(e));
        }
        assert!(!reporter.flush(Duration::from_millis(500)).await);
        assert_eq!(reporter.pending(), 1200);

        // Identity is back on the same address (same database): the queue drains.
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let state = tansu_identity::AppState::new(config).await.unwrap();
        let server = tansu_shared::testing::TestServer::start_on(
            listener,
            tansu_identity::router(state.clone()),
        );
        let id = Instance {
            server,
            state,
            issuer: format!("http://{addr}/"),
            http: reqwest::Client::new(),
        };
        assert!(
            reporter.flush(Duration::from_secs(60)).await,
            "delivered after the outage"
        );
        let admin = id.admin_token().await;
        let mut seen = std::collections::BTreeSet::new();
        let mut after = String::new();
        loop {
            let (status, v) = id
                .get_as(
                    &format!("/admin/security-events?type=access.denied&limit=1000&after={after}"),
                    &admin,
                )
                .await;
            assert_eq!(status, 200);
            for e in v["items"].as_array().unwrap() {
                assert_eq!(e["details"]["service"], "test-service");
                assert!(
                    seen.insert(e["details"]["n"].as_i64().unwrap()),
                    "once: {e}"
                );
            }
            match v["next_after"].as_str() {
                Some(next) => after = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen.len(), 1200);
        assert_eq!(seen.last(), Some(&1199));
        let (_, v) = id
            .get_as("/admin/security-events/verify?tenant=platform", &admin)
            .await;
        assert_eq!(v["ok"], true, "{v}");
        id.stop().await;
        db.cleanup().await;
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Retention: old events go, each chain keeps its newest event and an anchor, the chain still
/// verifies, appends continue it, and tampering after a purge is still found.
#[tokio::test]
async fn retention_purges_old_events_and_the_chain_still_verifies() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let tenant = id.create_tenant("retained").await;
        let (_, token) = service_token(&id).await;
        let batch = |n: usize| {
            serde_json::to_vec(&json!({"events": (0..n)
                .map(|_| event("access.denied", Some("retained")))
                .collect::<Vec<_>>()}))
            .unwrap()
        };
        assert_eq!(ingest(&id, Some(&token), batch(10)).await.0, 202);
        let verify = async || {
            id.get_as(
                &format!("/admin/security-events/verify?tenant={tenant}"),
                &admin,
            )
            .await
            .1
        };
        let before = verify().await;
        assert_eq!(before["ok"], true, "{before}");
        let total = before["checked"].as_i64().unwrap();
        assert!(total >= 10, "{before}");
        // Nothing is a year old: the service's retention removes nothing.
        tansu_identity::events::purge_old(&id.state.store, 365).await;
        assert_eq!(verify().await["checked"], total);

        // Everything older than now goes, but the newest event stays (it links the next).
        let first_cut = now_ms() + 1;
        let purged = id
            .state
            .store
            .purge_events(first_cut, now_ms())
            .await
            .unwrap();
        assert_eq!(i64::try_from(purged).unwrap(), total - 1);
        let v = verify().await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], 1, "the newest event stays: {v}");
        assert_eq!(v["starts_after_seq"], total - 1);

        // New events continue the chain after the purge.
        assert_eq!(ingest(&id, Some(&token), batch(5)).await.0, 202);
        let v = verify().await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], 6);
        // A second purge moves the anchor on.
        id.state
            .store
            .purge_events(first_cut, now_ms())
            .await
            .unwrap();
        let v = verify().await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["checked"], 5);
        assert_eq!(v["starts_after_seq"], total);

        // Tampering with a remaining event is still found at that event.
        let (_, page) = id
            .get_as(
                &format!("/admin/security-events?tenant={tenant}&limit=10"),
                &admin,
            )
            .await;
        let victim = page["items"][2]["id"].as_str().unwrap().to_owned();
        const SQL: &str = "UPDATE security_events SET ip = '198.51.100.1' WHERE id = $1";
        raw_exec(&id.state.store, SQL, &[&victim]).await;
        let v = verify().await;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["first_broken"]["id"], json!(victim));

        id.stop().await;
        db.cleanup().await;
    }
}
