//! The change feed: every write exactly once, in commit order, without gaps — under
//! concurrent writers, across a restart of the service, and as server-sent events.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;

const T: uuid::Uuid = TENANT_A;

/// Reads the feed from `since` until it is empty; returns the changes.
async fn drain(env: &Env, mut since: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "feed drained within 60 s");
        let page: Value = env
            .get_json(T, &format!("/api/changes?since={since}&limit=7"))
            .await;
        let changes = page["changes"].as_array().unwrap().clone();
        if changes.is_empty() {
            return out;
        }
        since = page["next_since"].as_i64().unwrap();
        out.extend(changes);
    }
}

/// Concurrent writes; returns how many changes they made.
async fn write_burst(env: &Env, tag: &str) -> usize {
    let inserts = (0..16).map(|i| {
        env.as_tenant(
            Method::PUT,
            &format!("/api/collections/c/documents/{tag}-{i}"),
            T,
        )
        .json(&json!({"i": i}))
        .send()
    });
    for r in futures::future::join_all(inserts).await {
        assert_eq!(r.unwrap().status(), StatusCode::CREATED);
    }
    let patches = (0..8).map(|i| {
        env.as_tenant(
            Method::PATCH,
            &format!("/api/collections/c/documents/{tag}-{i}"),
            T,
        )
        .json(&json!({"patched": true}))
        .send()
    });
    for r in futures::future::join_all(patches).await {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        env.delete(T, &format!("/api/collections/c/documents/{tag}-15"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(env
        .post(T, "/api/collections/c/bulk", &json!({"documents": [{"id": format!("{tag}-b1"), "data": {}}, {"id": format!("{tag}-b2"), "data": {}}]})).await.status(), StatusCode::CREATED);
    16 + 8 + 1 + 2
}

fn check_exactly_once_in_order(changes: &[Value], expected: usize, what: &str) {
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    let want: Vec<i64> = (1..=expected as i64).collect();
    assert_eq!(seqs, want, "{what}: contiguous, ordered, no duplicates");
    // Each (document, version) appears exactly once.
    let mut seen = BTreeMap::new();
    for c in changes.iter().filter(|c| c["id"].is_string()) {
        let key = (
            c["id"].as_str().unwrap().to_owned(),
            c["version"].as_i64().unwrap(),
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{what}: {seen:?}");
}

#[tokio::test]
async fn feed_is_exactly_once_in_order_across_a_restart() {
    for mut env in envs("database changes").await {
        let n = env.ready(T, "c").await;
        let mut expected = 1; // create_collection
        // A follower polls while writers run: what it sees must have no gaps.
        let (written, followed) = tokio::join!(write_burst(&env, "one"), async {
            let mut seen = Vec::new();
            let mut since = 0;
            let deadline = Instant::now() + Duration::from_secs(30);
            while seen.len() < 1 + 27 && Instant::now() < deadline {
                let page: Value = env
                    .get_json(T, &format!("/api/changes?since={since}"))
                    .await;
                for c in page["changes"].as_array().unwrap() {
                    seen.push(c.clone());
                }
                since = page["next_since"].as_i64().unwrap();
                tokio::task::yield_now().await;
            }
            seen
        });
        expected += written;
        check_exactly_once_in_order(&followed, expected, &format!("{n}: live follower"));
        let before = drain(&env, 0).await;
        check_exactly_once_in_order(&before, expected, n);
        assert_eq!(before[0]["op"], "create_collection");
        assert!(before.iter().any(|c| c["op"] == "delete"));
        assert!(before.iter().any(|c| c["op"] == "update"));
        let last = before.last().unwrap()["seq"].as_i64().unwrap();

        // Restart on the same data.
        env.stop().await;
        env.start().await;
        assert!(
            drain(&env, last).await.is_empty(),
            "{n}: nothing new after restart"
        );
        expected += write_burst(&env, "two").await;
        let after = drain(&env, last).await;
        let all: Vec<Value> = before.into_iter().chain(after).collect();
        check_exactly_once_in_order(&all, expected, &format!("{n}: across restart"));
        env.finish().await;
    }
}

/// Reads SSE events until `count` have arrived (bounded in time); returns their ids.
async fn read_events(resp: &mut reqwest::Response, buf: &mut String, count: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .expect("events within 20 s")
            .unwrap()
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(id) = event.lines().find_map(|l| l.strip_prefix("id:")) {
                ids.push(id.trim().parse().unwrap());
            }
        }
    }
    ids
}

#[tokio::test]
async fn server_sent_events_follow_new_writes() {
    for env in envs("database change stream").await {
        let n = env.ready(T, "c").await;
        env.put(T, "/api/collections/c/documents/x", &json!({"v": 1}))
            .await;
        let mut resp = env.get(T, "/api/changes/stream?since=0").await;
        assert_eq!(resp.status(), 200, "{n}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut buf = String::new();
        assert_eq!(read_events(&mut resp, &mut buf, 2).await, [1, 2], "{n}");
        for v in 2..=3 {
            env.put(T, "/api/collections/c/documents/x", &json!({"v": v}))
                .await;
        }
        assert_eq!(read_events(&mut resp, &mut buf, 2).await, [3, 4], "{n}");
        // Resuming with Last-Event-ID continues after it.
        drop(resp);
        let mut resp = env
            .as_tenant(Method::GET, "/api/changes/stream", T)
            .header("last-event-id", "3")
            .send_ok()
            .await;
        let mut buf = String::new();
        assert_eq!(read_events(&mut resp, &mut buf, 1).await, [4], "{n}");
        // An open stream does not hold up a graceful shutdown (`stop` is bounded).
        let mut env = env;
        env.stop().await;
        let rest = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await;
        assert!(
            matches!(rest, Ok(Ok(None)) | Ok(Err(_))),
            "{n}: stream ended"
        );
        env.finish().await;
    }
}

/// Compaction: with a retention of the newest 5 changes, a compaction removes the older
/// ones; a follower whose `since` is behind the retained range gets `410 Gone` problem+json
/// (polling and streaming), one within it continues without a gap.
#[tokio::test]
async fn compacted_feed_answers_gone_behind_the_retained_range() {
    for env in envs_with("database compaction", |c| c.change_retention_count = 5).await {
        let n = env.ready(T, "c").await; // change 1
        for i in 0..11 {
            assert_eq!(
                env.put(
                    T,
                    &format!("/api/collections/c/documents/d{i}"),
                    &json!({"i": i}),
                )
                .await
                .status(),
                StatusCode::CREATED
            );
        }
        // 12 changes; nothing compacted yet (compaction runs on a timer, on open, or now).
        assert_eq!(drain(&env, 0).await.len(), 12, "{n}");
        let resp = env
            .req(Method::POST, "/provision/compact", &env.rw(T), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{n}: platform only");
        let resp = env
            .req(Method::POST, "/provision/compact", &env.platform(), None)
            .send_ok()
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{n}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["removed"], 7, "{n}: {body}");

        // Behind the retained range (changes 8..=12 remain; the floor is 7).
        for since in [0, 3, 6] {
            let resp = env.get(T, &format!("/api/changes?since={since}")).await;
            let p = problem(resp, StatusCode::GONE, n).await;
            assert_eq!(p["type"], "urn:tansu:problem:changes-compacted", "{n}");
            assert_eq!(p["oldest_since"], 7, "{n}");
        }
        let resp = env.get(T, "/api/changes/stream?since=2").await;
        problem(resp, StatusCode::GONE, n).await;
        // At the floor and after: every retained change, in order, no gap.
        let seqs: Vec<i64> = drain(&env, 7)
            .await
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, [8, 9, 10, 11, 12], "{n}");
        assert_eq!(drain(&env, 10).await.len(), 2, "{n}");
        // Compaction is idempotent, and the floor survives a restart.
        let body: Value = env
            .req(Method::POST, "/provision/compact", &env.platform(), None)
            .send_json()
            .await;
        assert_eq!(body["removed"], 0, "{n}");
        let mut env = env;
        env.stop().await;
        env.start().await;
        let resp = env.get(T, "/api/changes?since=1").await;
        problem(resp, StatusCode::GONE, n).await;
        assert_eq!(drain(&env, 7).await.len(), 5, "{n}");
        env.finish().await;
    }
}

/// One server-sent event: its `event:` name, `id:` and `data:`.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<i64>,
    data: String,
}

/// Reads events until the server ends the stream (bounded by `limit`; a stream still open
/// then fails the test); returns them.
async fn read_to_end(resp: &mut reqwest::Response, limit: Duration) -> Vec<Sse> {
    let deadline = Instant::now() + limit;
    let mut buf = String::new();
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("the stream did not end within {limit:?}"));
        let Ok(Some(chunk)) = chunk else {
            return events;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let raw: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                raw.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            if raw.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                continue; // keep-alive comment
            }
            events.push(Sse {
                event: field("event:").unwrap_or_else(|| "message".into()),
                id: field("id:").and_then(|v| v.parse().ok()),
                data: field("data:").unwrap_or_default(),
            });
        }
    }
}

/// The stream lives no longer than the token that opened it: at its `exp` the server says
/// why and ends it; the client resumes with a new token and `Last-Event-ID`, missing nothing.
#[tokio::test]
async fn stream_ends_at_the_token_expiry_and_resumes_with_a_new_token() {
    for env in envs("database change stream expiry").await {
        let n = env.ready(T, "c").await; // change 1
        env.put(T, "/api/collections/c/documents/x", &json!({"v": 1}))
            .await; // change 2
        let mut claims = env
            .issuer
            .claims_for("tansu.db", Some(&T.to_string()), "db.read");
        let exp = tansu_shared::testing::issuer::now() + 3;
        claims.exp = exp;
        let short = tansu_shared::testing::issuer::sign(&env.key, &claims);
        let mut resp = env
            .req(Method::GET, "/api/changes/stream?since=0", &short, Some(T))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "{n}");
        let events = read_to_end(&mut resp, Duration::from_secs(20)).await;
        let ended_at = tansu_shared::testing::issuer::now();
        assert!(
            ended_at >= exp,
            "{n}: ended at {ended_at}, before exp {exp}"
        );
        let ids: Vec<i64> = events.iter().filter_map(|e| e.id).collect();
        assert_eq!(ids, [1, 2], "{n}: {events:?}");
        let last = events.last().unwrap();
        assert_eq!(last.event, "end", "{n}: {events:?}");
        let why: Value = serde_json::from_str(&last.data).unwrap();
        assert_eq!(why["reason"], "token-expired", "{n}: {why}");

        // Written while no stream was open; a new token resumes right after the last id.
        env.put(T, "/api/collections/c/documents/x", &json!({"v": 2}))
            .await; // change 3
        let mut resp = env
            .as_tenant(Method::GET, "/api/changes/stream", T)
            .header("last-event-id", "2")
            .send_ok()
            .await;
        let mut buf = String::new();
        assert_eq!(read_events(&mut resp, &mut buf, 1).await, [3], "{n}");
        env.finish().await;
    }
}

/// A deprovisioned tenant's open streams end at once, saying why.
#[tokio::test]
async fn stream_ends_when_the_tenant_is_deprovisioned() {
    for env in envs("database change stream deprovision").await {
        let n = env.ready(T, "c").await; // change 1
        let mut resp = env.get(T, "/api/changes/stream?since=0").await;
        assert_eq!(resp.status(), 200, "{n}");
        let mut buf = String::new();
        assert_eq!(read_events(&mut resp, &mut buf, 1).await, [1], "{n}");
        let gone = env
            .req(
                Method::DELETE,
                &format!("/provision/{T}"),
                &env.platform(),
                None,
            )
            .send_ok()
            .await;
        assert_eq!(gone.status(), StatusCode::ACCEPTED, "{n}");
        let events = read_to_end(&mut resp, Duration::from_secs(10)).await;
        let last = events.last().unwrap_or_else(|| panic!("{n}: no end event"));
        assert_eq!(last.event, "end", "{n}: {events:?}");
        let why: Value = serde_json::from_str(&last.data).unwrap();
        assert_eq!(why["reason"], "tenant-deprovisioned", "{n}: {why}");
        // And it cannot be reopened.
        let resp = env.get(T, "/api/changes/stream?since=0").await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        env.finish().await;
    }
}

/// With identity's tenant directory configured, a suspended (or deleted) tenant's streams end
/// within the poll interval, and a new one is refused before it starts.
#[tokio::test]
async fn stream_ends_when_the_tenant_is_suspended() {
    let directory = tansu_shared::testing::directory::FakeDirectory::start().await;
    let config = directory.config(0);
    for env in envs_with("database change stream suspension", |c| {
        c.tenant_directory = config.clone();
    })
    .await
    {
        directory.set(&T.to_string(), Some("active"));
        let n = env.ready(T, "c").await; // change 1
        let mut resp = env.get(T, "/api/changes/stream?since=0").await;
        assert_eq!(resp.status(), 200, "{n}");
        let mut buf = String::new();
        assert_eq!(read_events(&mut resp, &mut buf, 1).await, [1], "{n}");
        directory.set(&T.to_string(), Some("suspended"));
        let events = read_to_end(&mut resp, Duration::from_secs(10)).await;
        let last = events.last().unwrap_or_else(|| panic!("{n}: no end event"));
        assert_eq!(last.event, "end", "{n}: {events:?}");
        let why: Value = serde_json::from_str(&last.data).unwrap();
        assert_eq!(why["reason"], "tenant-suspended", "{n}: {why}");
        let resp = env.get(T, "/api/changes/stream?since=0").await;
        let p = problem(resp, StatusCode::FORBIDDEN, n).await;
        assert_eq!(p["type"], "urn:tansu:problem:tenant-suspended", "{n}");

        // Deleted in identity: the same, as an unknown tenant.
        directory.set(&T.to_string(), Some("active"));
        let mut resp = env.get(T, "/api/changes/stream?since=1").await;
        assert_eq!(resp.status(), 200, "{n}");
        directory.set(&T.to_string(), None);
        let events = read_to_end(&mut resp, Duration::from_secs(10)).await;
        let why: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(why["reason"], "tenant-unknown", "{n}: {events:?}");
        let resp = env.get(T, "/api/changes/stream?since=0").await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        env.finish().await;
    }
}
