//! Multipart uploads: parts in any order, replaced parts, resume by listing, completion into
//! one object, abort, quotas and tenant isolation — on SQLite and on PostgreSQL.

mod common;

use common::{Db, Fixture, TENANT_A, TENANT_B, etag_of};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;

async fn initiate(f: &Fixture, key: &str) -> String {
    let r = f
        .as_tenant(Method::POST, TENANT_A, "/api/buckets/parts/uploads")
        .header("content-type", "text/plain")
        .header("x-tansu-meta-origin", "multipart")
        .json(&json!({ "key": key }))
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["upload_id"].as_str().unwrap().to_owned()
}

async fn put_part(f: &Fixture, tenant: &str, id: &str, n: u32, body: &[u8]) -> reqwest::Response {
    f.as_tenant(
        Method::PUT,
        tenant,
        &format!("/api/buckets/parts/uploads/{id}/parts/{n}"),
    )
    .body(body.to_vec())
    .send_ok()
    .await
}

async fn multipart_upload_lifecycle(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "parts").await;
    f.create_bucket(TENANT_B, "parts").await;
    let id = initiate(&f, "joined.txt").await;

    let p1 = vec![b'a'; 300_000];
    let p2 = b"-and-the-end".to_vec();
    // Out of order, and part 1 replaced once.
    assert_eq!(put_part(&f, TENANT_A, &id, 2, &p2).await.status(), 200);
    assert_eq!(
        put_part(&f, TENANT_A, &id, 1, b"first try").await.status(),
        200
    );
    let r = put_part(&f, TENANT_A, &id, 1, &p1).await;
    assert_eq!(r.status(), 200);
    let etag1 = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag1, etag_of(&p1));
    for bad in ["0", "10001", "x"] {
        let r = f
            .as_tenant(
                Method::PUT,
                TENANT_A,
                &format!("/api/buckets/parts/uploads/{id}/parts/{bad}"),
            )
            .body("x")
            .send_ok()
            .await;
        assert_eq!(r.status(), 400, "part {bad}");
    }

    // Resume: the stored parts are listed; they count in the usage.
    let listed: Value = f
        .get_json(TENANT_A, &format!("/api/buckets/parts/uploads/{id}"))
        .await;
    let parts = listed["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["etag"], etag1.as_str());
    let etag2 = parts[1]["etag"].as_str().unwrap().to_owned();
    let u = f.usage(TENANT_A).await;
    assert_eq!(u["bytes"].as_u64(), Some((p1.len() + p2.len()) as u64));
    assert_eq!(u["objects"], 0);
    assert_eq!(f.blob_files(), 2, "the replaced part's blob is gone");

    // Another tenant sees nothing of it.
    let r = put_part(&f, TENANT_B, &id, 3, b"intruder").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    for method in [Method::GET, Method::DELETE] {
        let r = f
            .send(
                method.clone(),
                TENANT_B,
                &format!("/api/buckets/parts/uploads/{id}"),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} as B");
    }
    let r = f
        .with_token(
            Method::GET,
            TENANT_A,
            &f.token(TENANT_B, "storage.read"),
            &format!("/api/buckets/parts/uploads/{id}"),
        )
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A bucket with an upload in progress is not empty.
    let r = f.send(Method::DELETE, TENANT_A, "/api/buckets/parts").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Completion checks the list.
    let complete = |parts: Value| {
        f.as_tenant(
            Method::POST,
            TENANT_A,
            &format!("/api/buckets/parts/uploads/{id}/complete"),
        )
        .json(&json!({ "parts": parts }))
        .send_ok()
    };
    let r = complete(json!([{ "part_number": 1, "etag": "\"wrong\"" }])).await;
    assert_eq!(r.status(), 400);
    let r =
        complete(json!([{ "part_number": 2, "etag": etag2 }, { "part_number": 1, "etag": etag1 }]))
            .await;
    assert_eq!(r.status(), 400);
    let r = complete(json!([])).await;
    assert_eq!(r.status(), 400);
    let r =
        complete(json!([{ "part_number": 1, "etag": etag1 }, { "part_number": 2, "etag": etag2 }]))
            .await;
    assert_eq!(r.status(), 201);
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    let etag = etag_of(&whole);
    assert_eq!(r.headers()["etag"], etag.as_str());

    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/parts/objects/joined.txt",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.headers()["x-tansu-meta-origin"], "multipart");
    assert_eq!(r.bytes().await.unwrap().as_ref(), whole.as_slice());
    let u = f.usage(TENANT_A).await;
    assert_eq!(u["bytes"].as_u64(), Some(whole.len() as u64));
    assert_eq!(u["objects"], 1);
    assert_eq!(f.blob_files(), 1, "the parts are gone, the object remains");
    let r = complete(json!([{ "part_number": 1, "etag": etag1 }])).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the upload is finished");

    // Abort: parts and their usage go away.
    let id = initiate(&f, "abandoned").await;
    assert_eq!(put_part(&f, TENANT_A, &id, 1, b"abc").await.status(), 200);
    assert_eq!(
        f.usage(TENANT_A).await["bytes"].as_u64(),
        Some(whole.len() as u64 + 3)
    );
    let r = f
        .send(
            Method::DELETE,
            TENANT_A,
            &format!("/api/buckets/parts/uploads/{id}"),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        f.usage(TENANT_A).await["bytes"].as_u64(),
        Some(whole.len() as u64)
    );
    assert_eq!(f.blob_files(), 1);
    assert!(f.state.store.orphaned_blobs().await.unwrap().is_empty());
    assert_eq!(f.temp_files(), 0);
    f.finish().await;
}

async fn multipart_parts_count_against_the_quota(db: Db) {
    let Some(f) = Fixture::start(db, |c| c.quota_bytes = 1000).await else {
        return;
    };
    f.create_bucket(TENANT_A, "parts").await;
    let id = initiate(&f, "big").await;
    assert_eq!(
        put_part(&f, TENANT_A, &id, 1, &[1u8; 600]).await.status(),
        200
    );
    let r = put_part(&f, TENANT_A, &id, 2, &[2u8; 600]).await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(
        put_part(&f, TENANT_A, &id, 2, &[2u8; 400]).await.status(),
        200
    );
    // A whole object no longer fits beside the parts.
    let r = f.put(TENANT_A, "parts", "other", &[0u8; 10]).await;
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    let u = f.usage(TENANT_A).await;
    assert_eq!(u["bytes"], 1000);
    assert_eq!(u["reserved_bytes"], 0);
    f.finish().await;
}

async fn expired_uploads_are_aborted(db: Db) {
    // Expiry 0: every upload is already past it when the sweep runs.
    let Some(f) = Fixture::start(db, |c| c.multipart_expiry_secs = 0).await else {
        return;
    };
    f.create_bucket(TENANT_A, "parts").await;
    let id = initiate(&f, "abandoned").await;
    assert_eq!(put_part(&f, TENANT_A, &id, 1, b"abc").await.status(), 200);
    assert_eq!(f.usage(TENANT_A).await["bytes"], 3);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut aborted = 0;
    // created_at has millisecond resolution: the sweep must see the upload strictly in the past.
    while aborted == 0 && std::time::Instant::now() < deadline {
        aborted = tansu_storage::multipart::abort_expired(&f.state)
            .await
            .unwrap();
    }
    assert_eq!(aborted, 1);
    assert_eq!(f.usage(TENANT_A).await["bytes"], 0);
    assert_eq!(f.blob_files(), 0);
    let r = f
        .send(
            Method::GET,
            TENANT_A,
            &format!("/api/buckets/parts/uploads/{id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    f.finish().await;
}

on_both_databases!(
    multipart_upload_lifecycle,
    multipart_parts_count_against_the_quota,
    expired_uploads_are_aborted,
);
