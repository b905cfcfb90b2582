//! Rate limits engage with 429 + headers, and recover as the bucket refills.

mod common;

use std::time::Duration;

use common::*;
use tansu_gateway::{Bucket, StrictLimit};
use tansu_shared::testing::http::SendOk;

#[tokio::test]
async fn per_ip_limit_engages_and_recovers() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    // Three at once, then one more every second.
    c.rate_limit.per_ip = Bucket {
        burst: 3,
        replenish_ms: 1_000,
    };
    let gw = Gateway::start(c).await;
    let client = gw.client();
    // A burst of three passes (`/health/live`, used by the harness, is not limited)…
    for expected_remaining in ["2", "1", "0"] {
        let resp = client.get(gw.url("/db/x")).send_ok().await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["ratelimit-limit"], "3");
        assert_eq!(resp.headers()["ratelimit-remaining"], expected_remaining);
    }
    // … the next is refused.
    let resp = client.get(gw.url("/db/x")).send_ok().await;
    let h = resp.headers().clone();
    let v = problem_of(resp, 429).await;
    assert_eq!(v["type"], "urn:tansu:problem:rate-limited");
    assert_eq!(h["ratelimit-limit"], "3");
    assert_eq!(h["ratelimit-remaining"], "0");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert!(h.contains_key("ratelimit-reset"));

    // Recovers within a refill interval (bounded real waiting).
    let url = gw.url("/db/x");
    eventually_answers(
        "limit recovers",
        Duration::from_secs(3),
        &url,
        |s| s == 200,
        || client.clone(),
    )
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn token_endpoint_has_a_stricter_budget() {
    let identity = echo("identity").await;
    let mut c = config(vec![route("/identity", &[&identity])]);
    c.rate_limit.strict = vec![StrictLimit {
        path_prefix: "/identity/connect/token".into(),
        bucket: Bucket {
            burst: 2,
            replenish_ms: 60_000,
        },
    }];
    let gw = Gateway::start(c).await;
    let client = gw.client();
    for _ in 0..2 {
        let resp = client
            .post(gw.url("/identity/connect/token"))
            .send_ok()
            .await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    let resp = client
        .post(gw.url("/identity/connect/token"))
        .send_ok()
        .await;
    assert_eq!(resp.headers()["ratelimit-limit"], "2");
    problem_of(resp, 429).await;
    // The same path under a tenant prefix shares the budget.
    problem_of(
        client
            .post(gw.url("/t/acme/identity/connect/token"))
            .send_ok()
            .await,
        429,
    )
    .await;
    // Other identity paths are not affected.
    let resp = client
        .get(gw.url("/identity/.well-known/jwks"))
        .send_ok()
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn per_tenant_limit_is_shared_by_clients_of_the_tenant() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.rate_limit.per_tenant = Bucket {
        burst: 2,
        replenish_ms: 60_000,
    };
    let gw = Gateway::start(c).await;
    for _ in 0..2 {
        let resp = gw.client().get(gw.url("/t/acme/db/x")).send_ok().await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    problem_of(gw.client().get(gw.url("/t/acme/db/x")).send_ok().await, 429).await;
    // Another tenant, and requests without a tenant, still pass.
    let resp = gw.client().get(gw.url("/t/globex/db/x")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = gw.client().get(gw.url("/db/x")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    gw.stop().await;
}

/// The Redis for shared-budget tests: `TANSU_TEST_REDIS_URL`, else the local default.
async fn redis_url() -> Option<String> {
    let url = std::env::var("TANSU_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let reachable = async {
        let client = redis::Client::open(url.as_str()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    };
    match tokio::time::timeout(Duration::from_secs(3), reachable).await {
        Ok(Some(_)) => Some(url),
        _ => tansu_shared::testing::skip_or_fail("gateway shared rate limit", "no Redis reachable"),
    }
}

#[tokio::test]
async fn two_gateways_share_one_budget_through_redis() {
    let Some(url) = redis_url().await else {
        return;
    };
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.rate_limit.per_ip = Bucket {
        burst: 4,
        replenish_ms: 1_500,
    };
    c.rate_limit.redis_url = tansu_shared::config::Secret::new(url);
    c.rate_limit.redis_prefix = format!("tansu:test:{}", uuid::Uuid::now_v7());
    let one = Gateway::start(c.clone()).await;
    let two = Gateway::start(c).await;
    let (a, b) = (one.client(), two.client());

    // Four requests spread over both replicas use up the one budget…
    for (i, expected_remaining) in ["3", "2", "1", "0"].into_iter().enumerate() {
        let (client, gw) = if i % 2 == 0 { (&a, &one) } else { (&b, &two) };
        let resp = client.get(gw.url("/db/x")).send_ok().await;
        assert_eq!(resp.status().as_u16(), 200, "request {i}");
        assert_eq!(resp.headers()["ratelimit-limit"], "4");
        assert_eq!(resp.headers()["ratelimit-remaining"], expected_remaining);
    }
    // …so both refuse the next one.
    for (client, gw) in [(&a, &one), (&b, &two)] {
        let resp = client.get(gw.url("/db/x")).send_ok().await;
        assert!(resp.headers().contains_key("retry-after"));
        problem_of(resp, 429).await;
    }
    // And the shared bucket refills for both.
    for (client, gw) in [(&a, &one), (&b, &two)] {
        let url = gw.url("/db/x");
        let ok = |s: reqwest::StatusCode| s == 200;
        eventually_answers(
            "shared limit recovers",
            Duration::from_secs(5),
            &url,
            ok,
            || client.clone(),
        )
        .await;
    }
    one.stop().await;
    two.stop().await;
}
