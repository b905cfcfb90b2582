//! Per-tenant quota overrides: only a platform administrator sets them; the usage API shows
//! them; they bound 50 concurrent uploads exactly as the default does — SQLite and PostgreSQL.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Db, Fixture, TENANT_A, TENANT_B, concurrent_uploads, count};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::issuer::sign;

const PLATFORM: &str = "0190f5c0-0000-7000-8000-0000000000ff";

fn quota_path(tenant: &str) -> String {
    format!("/admin/tenants/{tenant}/quota")
}

/// A token with `scope` and the given `tid` (`None`: a platform client-credentials token).
fn admin_token(f: &Fixture, tid: Option<&str>, scope: &str) -> String {
    let mut c = f.claims(tid.unwrap_or(TENANT_A), scope);
    c.tid = tid.map(str::to_owned);
    c.jti = format!("admin-{tid:?}-{scope}");
    sign(&f.key, &c)
}

fn admin(f: &Fixture, method: Method, token: &str, tenant: &str) -> reqwest::RequestBuilder {
    f.http
        .request(method, f.app.url(&quota_path(tenant)))
        .bearer_auth(token)
}

async fn set_quota(f: &Fixture, tenant: &str, body: Value) -> Value {
    let token = admin_token(f, None, "storage.admin");
    let r = admin(f, Method::PUT, &token, tenant)
        .json(&body)
        .send_ok()
        .await;
    assert_eq!(r.status(), 200, "set quota {body}");
    r.json().await.unwrap()
}

async fn only_platform_administrators_set_quotas(db: Db) {
    let Some(f) = Fixture::start(db, |c| c.platform_tenant = PLATFORM.into()).await else {
        return;
    };
    let body = json!({ "bytes": 1, "objects": 1 });
    // (tid, scope, expected status of a PUT)
    let cases: [(Option<&str>, &str, u16); 7] = [
        (None, "storage.admin", 200),
        (None, "admin.full", 200),
        (Some(PLATFORM), "storage.admin", 200),
        // A tenant's token, even with the scope, even for its own quota.
        (Some(TENANT_A), "storage.admin", 403),
        (Some(TENANT_A), "storage.read storage.write admin.full", 403),
        (None, "storage.read storage.write", 403),
        (None, "", 403),
    ];
    for (tid, scope, expected) in cases {
        let token = admin_token(&f, tid, scope);
        for method in [Method::PUT, Method::GET, Method::DELETE] {
            let r = admin(&f, method.clone(), &token, TENANT_A)
                .json(&body)
                .send_ok()
                .await;
            let want = match (expected, &method) {
                (200, &Method::DELETE) => 204,
                (e, _) => e,
            };
            assert_eq!(r.status(), want, "{method} as {tid:?} with {scope:?}");
            if want == 403 {
                let www = r.headers().get("www-authenticate").map(|v| v.to_owned());
                let ct = r.headers()["content-type"].to_owned();
                assert_eq!(ct, "application/problem+json");
                if scope.contains("admin") {
                    // The scope is there: a tenant's token is refused as such.
                    assert!(www.is_none(), "{tid:?} {scope:?}");
                } else {
                    let www = www.expect("insufficient_scope challenge");
                    assert!(
                        www.to_str().unwrap().contains("insufficient_scope"),
                        "{www:?}"
                    );
                }
            }
        }
    }
    // No token at all: a bearer challenge.
    let r = f.http.get(f.app.url(&quota_path(TENANT_A))).send_ok().await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    // Bad input: clear 400s, never a 500.
    let token = admin_token(&f, None, "storage.admin");
    for (tenant, body) in [
        ("not-a-uuid", json!({ "bytes": 1 })),
        (TENANT_A, json!({ "bytes": -1 })),
        (TENANT_A, json!({ "bytes": u64::MAX })),
        (TENANT_A, json!({ "files": 3 })),
        (TENANT_A, json!("many")),
    ] {
        let r = admin(&f, Method::PUT, &token, tenant)
            .json(&body)
            .send_ok()
            .await;
        assert_eq!(r.status(), 400, "{tenant} {body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    f.finish().await;
}

async fn override_is_shown_and_applies_to_its_tenant_only(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    let default_bytes = f.state.config.quota_bytes as i64;
    let default_objects = f.state.config.quota_objects as i64;
    let v = set_quota(&f, TENANT_A, json!({ "bytes": 2048 })).await;
    assert_eq!(v["quota_bytes"], 2048);
    assert_eq!(v["quota_objects"], default_objects);
    assert_eq!(
        v["quota_override"],
        json!({ "bytes": 2048, "objects": null })
    );
    // The tenant's own usage API shows the limit in force.
    let u = f.usage(TENANT_A).await;
    assert_eq!(
        (u["quota_bytes"].as_i64(), u["bytes"].as_i64()),
        (Some(2048), Some(0))
    );
    assert_eq!(u["quota_override"]["bytes"], 2048);
    let u = f.usage(TENANT_B).await;
    assert_eq!(u["quota_bytes"].as_i64(), Some(default_bytes));
    assert_eq!(
        u["quota_override"],
        json!({ "bytes": null, "objects": null })
    );

    f.create_bucket(TENANT_A, "uploads").await;
    f.create_bucket(TENANT_B, "uploads").await;
    let big = vec![7u8; 1500];
    assert_eq!(f.put(TENANT_A, "uploads", "one", &big).await.status(), 201);
    assert_eq!(
        f.put(TENANT_A, "uploads", "two", &big).await.status(),
        StatusCode::INSUFFICIENT_STORAGE
    );
    assert_eq!(f.put(TENANT_B, "uploads", "two", &big).await.status(), 201);

    // Lowered below what is stored: nothing is removed, new bytes are refused, deletes work.
    set_quota(&f, TENANT_A, json!({ "bytes": 1000, "objects": 5 })).await;
    assert_eq!(
        f.put(TENANT_A, "uploads", "small", b"x").await.status(),
        StatusCode::INSUFFICIENT_STORAGE
    );
    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/uploads/objects/one")
        .await;
    assert_eq!(r.bytes().await.unwrap().len(), 1500);
    let r = f
        .send(Method::DELETE, TENANT_A, "/api/buckets/uploads/objects/one")
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        f.put(TENANT_A, "uploads", "small", b"x").await.status(),
        201
    );

    // Removed: the default applies again.
    let token = admin_token(&f, None, "storage.admin");
    let r = admin(&f, Method::DELETE, &token, TENANT_A).send_ok().await;
    assert_eq!(r.status(), 204);
    let v: Value = admin(&f, Method::GET, &token, TENANT_A).send_json().await;
    assert_eq!(v["quota_bytes"].as_i64(), Some(default_bytes));
    assert_eq!(
        (v["bytes"].as_i64(), v["objects"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(f.put(TENANT_A, "uploads", "two", &big).await.status(), 201);
    f.finish().await;
}

/// Runs `n` concurrent uploads while sampling the tenant's usage; every sample must stay
/// within `limit` bytes (stored + reserved). Returns the statuses and the number of samples.
async fn uploads_watched(
    f: &Fixture,
    prefix: &str,
    chunked: bool,
    limit: i64,
) -> (Vec<StatusCode>, usize) {
    let done = AtomicBool::new(false);
    let uploads = async {
        let s = concurrent_uploads(f, prefix, 50, 1024, chunked).await;
        done.store(true, Ordering::SeqCst);
        s
    };
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut samples = 0;
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            let u = f.usage(TENANT_A).await;
            let (bytes, reserved) = (
                u["bytes"].as_i64().unwrap(),
                u["reserved_bytes"].as_i64().unwrap(),
            );
            assert!(
                bytes + reserved <= limit,
                "usage {bytes} + {reserved} over {limit}"
            );
            assert_eq!(u["quota_bytes"].as_i64(), Some(limit));
            samples += 1;
        }
        samples
    };
    tokio::join!(uploads, watch)
}

async fn lowered_quota_holds_under_50_concurrent_uploads(db: Db) {
    // A default far above what the uploads need: only the override can stop them.
    let Some(f) = Fixture::start(db, |c| c.quota_bytes = 1 << 30).await else {
        return;
    };
    f.create_bucket(TENANT_A, "uploads").await;
    set_quota(&f, TENANT_A, json!({ "bytes": 10 * 1024 })).await;
    let (statuses, samples) = uploads_watched(&f, "len", false, 10 * 1024).await;
    assert!(samples > 0);
    assert_eq!(
        (
            count(&statuses, StatusCode::CREATED),
            count(&statuses, StatusCode::INSUFFICIENT_STORAGE)
        ),
        (10, 40),
        "{statuses:?}"
    );
    let u = f.usage(TENANT_A).await;
    assert_eq!(
        (u["bytes"].as_i64(), u["objects"].as_i64()),
        (Some(10 * 1024), Some(10))
    );

    // Raised, then streamed uploads (no Content-Length): cut off at the new limit.
    set_quota(&f, TENANT_A, json!({ "bytes": 20 * 1024 })).await;
    let (statuses, _) = uploads_watched(&f, "chunked", true, 20 * 1024).await;
    let ok = count(&statuses, StatusCode::CREATED);
    assert!((1..=10).contains(&ok), "{statuses:?}");
    assert_eq!(ok + count(&statuses, StatusCode::INSUFFICIENT_STORAGE), 50);
    assert!(
        common::eventually(Duration::from_secs(10), async || {
            f.usage(TENANT_A).await["reserved_bytes"] == 0
        })
        .await
    );
    let u = f.usage(TENANT_A).await;
    assert_eq!(u["bytes"].as_i64(), Some((10 + ok as i64) * 1024));
    assert_eq!(f.temp_files(), 0);

    // An object-count override, lowered below the count: new objects are refused.
    set_quota(&f, TENANT_A, json!({ "objects": 3 })).await;
    let statuses = concurrent_uploads(&f, "counted", 50, 1, false).await;
    assert_eq!(count(&statuses, StatusCode::INSUFFICIENT_STORAGE), 50);
    f.finish().await;
}

async fn object_override_holds_under_50_concurrent_uploads(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "uploads").await;
    set_quota(&f, TENANT_A, json!({ "objects": 7 })).await;
    let statuses = concurrent_uploads(&f, "obj", 50, 1, false).await;
    assert_eq!(count(&statuses, StatusCode::CREATED), 7, "{statuses:?}");
    let u = f.usage(TENANT_A).await;
    assert_eq!(
        (u["objects"].as_i64(), u["quota_objects"].as_i64()),
        (Some(7), Some(7))
    );
    f.finish().await;
}

on_both_databases!(
    only_platform_administrators_set_quotas,
    override_is_shown_and_applies_to_its_tenant_only,
    lowered_quota_holds_under_50_concurrent_uploads,
    object_override_holds_under_50_concurrent_uploads,
);
