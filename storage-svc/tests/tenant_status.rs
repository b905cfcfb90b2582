//! A presigned URL works only while its tenant is active: the service asks identity's tenant
//! directory (cached) when the URL is used, after its signature proved it genuine.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::directory::FakeDirectory;
use tansu_shared::testing::http::SendOk;

async fn presign(f: &Fixture, key: &str, method: &str) -> String {
    let v: Value = f
        .as_tenant(Method::POST, TENANT_A, "/api/buckets/pics/presign")
        .json(&json!({ "key": key, "method": method, "expires_in": 300 }))
        .send_json()
        .await;
    v["path"].as_str().expect("a presigned path").to_owned()
}

/// The problem type of a refused answer (asserting its status and media type).
async fn refused(r: reqwest::Response, status: StatusCode, what: &str) -> String {
    assert_eq!(r.status(), status, "{what}");
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let v: Value = r.json().await.unwrap();
    v["type"].as_str().unwrap_or_default().to_owned()
}

async fn presigned_urls_follow_the_tenant_status(db: Db) {
    let directory = FakeDirectory::start().await;
    directory.set(TENANT_A, Some("active"));
    // No caching: every use asks (the cache's own rules are unit-tested in tansu-shared).
    let config = directory.config(0);
    let Some(f) = Fixture::start(db, |c| c.tenant_directory = config).await else {
        return;
    };
    f.create_bucket(TENANT_A, "pics").await;
    assert_eq!(
        f.put(TENANT_A, "pics", "cat.jpg", b"A cat").await.status(),
        201
    );
    let get = f.app.url(&presign(&f, "cat.jpg", "GET").await);
    let put = f.app.url(&presign(&f, "new.jpg", "PUT").await);
    assert_eq!(f.http.get(&get).send_text().await, "A cat");

    directory.set(TENANT_A, Some("suspended"));
    let r = f.http.get(&get).send_ok().await;
    assert_eq!(
        refused(r, StatusCode::FORBIDDEN, "suspended: GET").await,
        "urn:tansu:problem:tenant-suspended"
    );
    let r = f.http.head(&get).send_ok().await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "suspended: HEAD");
    let r = f.http.put(&put).body("new").send_ok().await;
    assert_eq!(
        refused(r, StatusCode::FORBIDDEN, "suspended: PUT").await,
        "urn:tansu:problem:tenant-suspended"
    );

    // Deleted: the directory no longer knows the tenant.
    directory.set(TENANT_A, None);
    let r = f.http.get(&get).send_ok().await;
    assert_eq!(
        refused(r, StatusCode::NOT_FOUND, "deleted: GET").await,
        "urn:tansu:problem:unknown-tenant"
    );

    // Reactivated: the URL itself was never invalid.
    directory.set(TENANT_A, Some("active"));
    assert_eq!(f.http.get(&get).send_text().await, "A cat");

    // No answer from the directory (and nothing cached): refused, not served.
    directory.set_down(true);
    let r = f.http.get(&get).send_ok().await;
    refused(r, StatusCode::SERVICE_UNAVAILABLE, "directory down").await;
    directory.set_down(false);

    // Only genuine URLs are looked up: a forged one is refused before any lookup.
    let before = directory.lookups();
    let forged = format!("{}A", get);
    let r = f.http.get(&forged).send_ok().await;
    assert_eq!(
        refused(r, StatusCode::FORBIDDEN, "forged").await,
        "urn:tansu:problem:invalid-presigned-url"
    );
    assert_eq!(directory.lookups(), before);
    f.finish().await;
}

on_both_databases!(presigned_urls_follow_the_tenant_status);
