//! Rate limits engage with 429 + headers, recover as the bucket refills, and are spent by
//! whom they are meant for: clients (IPv6 per /64), sign-in and registration paths, the
//! platform's registrations, tenants (their verified tokens only).

mod common;

use std::time::Duration;

use common::*;
use tansu_gateway::{Bucket, RouteSettings, StrictLimit, TokenCheck};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::issuer::{TestIssuer, TestKey, ec_key, sign};

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

/// A gateway whose `/db` route verifies tokens of `issuer` and whose `/open` route (same
/// upstream) does not; tenants from the open directory, `{tenant}.tansu.test` hosts.
async fn verifying_gateway(issuer: &TestIssuer, per_tenant: Bucket) -> (Gateway, TestServer) {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db]), route("/open", &[&db])]);
    c.base_domain = Some("tansu.test".into());
    c.route_settings = vec![RouteSettings {
        prefix: "/db".into(),
        max_body_bytes: None,
        verify_tokens: Some(TokenCheck {
            issuer: issuer.issuer.clone(),
            audience: "tansu.db".into(),
            discovery_url: None,
            jwks_uri: Some(issuer.state.jwks_uri.clone()),
        }),
    }];
    c.rate_limit.per_tenant = per_tenant;
    (Gateway::start(c).await, db)
}

fn tenant_token(issuer: &TestIssuer, key: &TestKey, tenant: &str) -> String {
    sign(key, &issuer.claims_for("tansu.db", Some(tenant), "db.read"))
}

#[tokio::test]
async fn per_tenant_limit_is_shared_by_clients_of_the_tenant() {
    let key = ec_key("k1");
    let issuer = TestIssuer::start(&[&key]).await;
    let per_tenant = Bucket {
        burst: 2,
        replenish_ms: 60_000,
    };
    let (gw, _db) = verifying_gateway(&issuer, per_tenant).await;
    let acme = tenant_token(&issuer, &key, "acme");
    // Two clients of the tenant, by path and by host, spend one budget.
    for url in [
        gw.url("/t/acme/db/x"),
        gw.host_url("acme.tansu.test", "/db/x"),
    ] {
        let resp = gw.client().get(url).bearer_auth(&acme).send_ok().await;
        assert_eq!(resp.status().as_u16(), 200);
    }
    let resp = gw
        .client()
        .get(gw.url("/db/x"))
        .bearer_auth(&acme)
        .send_ok()
        .await;
    assert_eq!(resp.headers()["ratelimit-limit"], "2");
    problem_of(resp, 429).await;
    // Another tenant, and requests without a tenant, still pass.
    let globex = tenant_token(&issuer, &key, "globex");
    let resp = gw
        .client()
        .get(gw.url("/db/x"))
        .bearer_auth(&globex)
        .send_ok()
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let resp = gw.client().get(gw.url("/db/x")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    gw.stop().await;
}

/// Naming a tenant costs it nothing: only a token the gateway verified, of that tenant, spends
/// the tenant's budget. Otherwise anyone could use up any tenant's budget.
#[tokio::test]
async fn anonymous_requests_naming_a_tenant_do_not_spend_its_budget() {
    let key = ec_key("k1");
    let issuer = TestIssuer::start(&[&key]).await;
    let per_tenant = Bucket {
        burst: 3,
        replenish_ms: 600_000,
    };
    let (gw, _db) = verifying_gateway(&issuer, per_tenant).await;
    let client = gw.client();
    let unverified = token_with_tid("acme");
    let other_key = ec_key("k1");
    let forged = tenant_token(&issuer, &other_key, "acme");
    for _ in 0..10 {
        // No credential, the tenant in the path or the host: the service decides.
        for url in [
            gw.url("/t/acme/db/x"),
            gw.host_url("acme.tansu.test", "/db/x"),
        ] {
            let resp = client.get(url).send_ok().await;
            assert_eq!(resp.status().as_u16(), 200);
        }
        // A token the gateway did not verify (the route has no token check).
        let resp = client
            .get(gw.url("/open/x"))
            .bearer_auth(&unverified)
            .send_ok()
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        let resp = client
            .get(gw.url("/t/acme/open/x"))
            .bearer_auth(&unverified)
            .send_ok()
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        // A token signed by someone else: refused, and costs the tenant nothing.
        let resp = client
            .get(gw.url("/t/acme/db/x"))
            .bearer_auth(&forged)
            .send_ok()
            .await;
        problem_of(resp, 401).await;
        // A verified token of another tenant, naming this one: refused.
        let globex = tenant_token(&issuer, &key, "globex");
        let resp = client
            .get(gw.url("/t/acme/db/x"))
            .bearer_auth(&globex)
            .send_ok()
            .await;
        problem_of(resp, 403).await;
    }
    // The tenant's own verified requests still have the whole budget…
    let acme = tenant_token(&issuer, &key, "acme");
    for expected_remaining in ["2", "1", "0"] {
        let resp = client
            .get(gw.url("/t/acme/db/x"))
            .bearer_auth(&acme)
            .send_ok()
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["ratelimit-limit"], "3");
        assert_eq!(resp.headers()["ratelimit-remaining"], expected_remaining);
    }
    // …which they (and only they) use up.
    let resp = client
        .get(gw.url("/db/x"))
        .bearer_auth(&acme)
        .send_ok()
        .await;
    problem_of(resp, 429).await;
    let resp = client.get(gw.url("/t/acme/db/x")).send_ok().await;
    assert_eq!(resp.status().as_u16(), 200);
    gw.stop().await;
}

/// A config whose every request comes through a trusted proxy at 127.0.0.1, so a test can
/// speak for any client address with `X-Forwarded-For`.
fn behind_proxy(routes: Vec<tansu_gateway::Route>) -> tansu_gateway::Config {
    let mut c = config(routes);
    c.trusted_proxies = vec!["127.0.0.1".into()];
    c
}

async fn get_as(gw: &Gateway, client_ip: &str, path: &str) -> reqwest::Response {
    gw.client()
        .get(gw.url(path))
        .header("x-forwarded-for", client_ip)
        .send_ok()
        .await
}

async fn post_as(gw: &Gateway, client_ip: &str, path: &str) -> reqwest::Response {
    gw.client()
        .post(gw.url(path))
        .header("x-forwarded-for", client_ip)
        .send_ok()
        .await
}

/// One subscriber holds a whole IPv6 /64: its addresses share one budget.
#[tokio::test]
async fn ipv6_clients_share_a_budget_per_64() {
    let db = echo("db").await;
    let mut c = behind_proxy(vec![route("/db", &[&db])]);
    c.rate_limit.per_ip = Bucket {
        burst: 2,
        replenish_ms: 600_000,
    };
    let gw = Gateway::start(c).await;
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
        assert_eq!(get_as(&gw, ip, "/db/x").await.status(), 200, "{ip}");
    }
    // A fresh address of the same /64 finds the budget used up…
    problem_of(get_as(&gw, "2001:db8:1:2:ffff::7", "/db/x").await, 429).await;
    // …the neighbouring /64 and IPv4 clients do not.
    assert_eq!(get_as(&gw, "2001:db8:1:3::1", "/db/x").await.status(), 200);
    assert_eq!(get_as(&gw, "192.0.2.1", "/db/x").await.status(), 200);
    assert_eq!(get_as(&gw, "192.0.2.2", "/db/x").await.status(), 200);
    gw.stop().await;
}

/// Identity's sign-in, token and registration endpoints are in strict per-client buckets by
/// default, whatever the spelling of the path.
#[tokio::test]
async fn sign_in_and_registration_paths_have_strict_budgets() {
    let identity = echo("identity").await;
    let gw = Gateway::start(behind_proxy(vec![route("/identity", &[&identity])])).await;
    let client = gw.client();
    let paths = [
        ("GET", "/identity/register"),
        ("POST", "/identity/register"),
        ("POST", "/identity/registrations"),
        ("POST", "/identity/login"),
        ("POST", "/identity/login/mfa"),
        ("POST", "/identity/login/tenant"),
        ("POST", "/identity/login/enrol"),
        ("GET", "/identity/connect/authorize"),
        ("POST", "/identity/connect/token"),
        ("POST", "/identity/account/mfa"),
    ];
    for (i, (method, path)) in paths.into_iter().enumerate() {
        // Each path from its own client, so only this path's bucket is spent.
        let ip = format!("198.51.100.{}", i + 1);
        // The same endpoint under other spellings spends the same bucket.
        let spellings = [
            path.to_owned(),
            path.replacen("/identity/", "/identity//", 1),
            path.to_ascii_uppercase()
                .replacen("/IDENTITY", "/identity", 1),
            format!("/t/acme{path}"),
        ];
        let mut limited = None;
        for n in 0..40 {
            let target = gw.url(&spellings[n % spellings.len()]);
            let resp = match method {
                "GET" => client.get(target),
                _ => client.post(target),
            }
            .header("x-forwarded-for", &ip)
            .send_ok()
            .await;
            if resp.status() == 429 {
                limited = Some((n, resp.headers()["ratelimit-limit"].clone()));
                break;
            }
        }
        let (n, limit) = limited.unwrap_or_else(|| panic!("{method} {path}: never limited"));
        let limit: usize = limit.to_str().unwrap().parse().unwrap();
        assert!(limit <= 30, "{method} {path}: a budget of {limit}");
        // Not before its burst (tokens may come back while the loop runs).
        assert!(n >= limit, "{method} {path}: refused after {n} of {limit}");
        println!("{method} {path}: strict, burst {limit}");
    }
    // Other identity paths only spend the (generous) per-client budget.
    for _ in 0..40 {
        let resp = get_as(&gw, "198.51.100.200", "/identity/.well-known/jwks").await;
        assert_eq!(resp.status(), 200);
    }
    gw.stop().await;
}

/// Registration has one platform-wide budget: many client addresses together cannot create
/// tenants in bulk.
#[tokio::test]
async fn registrations_share_one_platform_wide_budget() {
    let identity = echo("identity").await;
    let mut c = behind_proxy(vec![route("/identity", &[&identity])]);
    // Only the platform-wide budget (the strict per-client ones would stop one client first).
    c.rate_limit.strict.clear();
    c.rate_limit.registration.burst = 3;
    c.rate_limit.registration.replenish_ms = 600_000;
    let gw = Gateway::start(c).await;
    // Three registrations from three botnet addresses pass…
    for (ip, path) in [
        ("203.0.113.1", "/identity/registrations"),
        ("203.0.113.2", "/identity/register"),
        ("2001:db8:9::1", "/t/acme/identity/registrations"),
    ] {
        assert_eq!(post_as(&gw, ip, path).await.status(), 200, "{ip} {path}");
    }
    // …the next from any fresh address, on either registration path, is refused.
    for (ip, path) in [
        ("203.0.113.4", "/identity/registrations"),
        ("203.0.113.5", "/identity/register"),
        ("203.0.113.6", "/identity//Registrations/"),
    ] {
        let resp = post_as(&gw, ip, path).await;
        assert_eq!(resp.headers()["ratelimit-limit"], "3");
        assert!(resp.headers().contains_key("retry-after"));
        problem_of(resp, 429).await;
    }
    // Showing the form creates nothing, and platform admins' registrations are not in it.
    assert_eq!(
        get_as(&gw, "203.0.113.7", "/identity/register")
            .await
            .status(),
        200
    );
    let resp = post_as(&gw, "203.0.113.8", "/identity/admin/registrations").await;
    assert_eq!(resp.status(), 200);
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
