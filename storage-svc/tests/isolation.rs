//! Tenant isolation over every endpoint, presigned URLs (including replays against another
//! tenant) and path-traversal keys — on SQLite and on PostgreSQL.

mod common;

use common::{Db, Fixture, TENANT_A, TENANT_B};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tansu_shared::testing::http::SendOk;

/// Every endpoint, as (method, path, needs write scope).
fn endpoints() -> Vec<(Method, &'static str, bool)> {
    vec![
        (Method::GET, "/api/buckets", false),
        (Method::PUT, "/api/buckets/shared", true),
        (Method::GET, "/api/buckets/shared", false),
        (Method::PATCH, "/api/buckets/shared", true),
        (Method::DELETE, "/api/buckets/shared", true),
        (Method::GET, "/api/buckets/shared/objects", false),
        (Method::PUT, "/api/buckets/shared/objects/secret.txt", true),
        (Method::GET, "/api/buckets/shared/objects/secret.txt", false),
        (
            Method::HEAD,
            "/api/buckets/shared/objects/secret.txt",
            false,
        ),
        (
            Method::DELETE,
            "/api/buckets/shared/objects/secret.txt",
            true,
        ),
        (Method::GET, "/api/usage", false),
        (Method::POST, "/api/buckets/shared/presign", false),
        (Method::POST, "/api/buckets/shared/uploads", true),
        (Method::GET, "/api/buckets/shared/uploads/u1", false),
        (Method::DELETE, "/api/buckets/shared/uploads/u1", true),
        (Method::PUT, "/api/buckets/shared/uploads/u1/parts/1", true),
        (
            Method::POST,
            "/api/buckets/shared/uploads/u1/complete",
            true,
        ),
    ]
}

/// The target of the platform rows (`/admin/tenants/{tenant}/quota`).
const TENANT_C: &str = "0190f5c0-0000-7000-8000-00000000000c";

/// The tokens of the document's actors for a row requiring `scope` (`None`: anonymous).
fn actor_tokens(f: &Fixture, scope: &str) -> Vec<Option<String>> {
    let wrong_scope = match scope {
        "storage.read" => "storage.write",
        "storage.write" => "storage.read",
        _ => "storage.read storage.write",
    };
    let sign =
        |c: &tansu_shared::auth::AccessClaims| tansu_shared::testing::issuer::sign(&f.key, c);
    let mut wrong_audience = f.claims(TENANT_A, scope);
    wrong_audience.aud = tansu_shared::auth::Audience::One("tansu.db".into());
    let mut platform = f.claims(TENANT_A, "storage.read storage.write storage.admin");
    platform.tid = None;
    vec![
        Some(f.token(TENANT_A, scope)),
        Some(f.token(TENANT_A, wrong_scope)),
        Some(sign(&wrong_audience)),
        Some(f.token(TENANT_B, scope)),
        Some(sign(&platform)),
        None,
    ]
}

/// The body a row's request sends: JSON where the route takes JSON, bytes for uploads.
fn body_for(method: &str, path: &str) -> reqwest::Body {
    match (method, path) {
        ("PUT" | "PATCH", "/api/buckets/{bucket}") => "{}".into(),
        ("POST", "/api/buckets/{bucket}/presign") => {
            r#"{"key":"secret.txt","method":"GET"}"#.into()
        }
        ("POST", "/api/buckets/{bucket}/uploads") => r#"{"key":"big.bin"}"#.into(),
        ("POST", "/api/buckets/{bucket}/uploads/{upload_id}/complete") => r#"{"parts":[]}"#.into(),
        ("PUT", "/admin/tenants/{tenant}/quota") => r#"{"bytes":null,"objects":null}"#.into(),
        ("PUT", _) => "x".into(),
        _ => reqwest::Body::from(""),
    }
}

/// Starts a multipart upload of `bucket` as A: its id.
async fn upload(f: &Fixture, bucket: &str) -> String {
    let r = f
        .as_tenant(
            Method::POST,
            TENANT_A,
            &format!("/api/buckets/{bucket}/uploads"),
        )
        .json(&serde_json::json!({ "key": "big.bin" }))
        .send_ok()
        .await;
    assert!(r.status().is_success(), "start an upload: {}", r.status());
    let v: Value = r.json().await.unwrap();
    v["upload_id"].as_str().expect("upload_id").to_owned()
}

/// Everything a request of the matrix could change, from the metadata database: buckets and
/// their settings, objects and their versions, usage, reservations and quotas, uploads, parts,
/// presigning keys.
async fn everything(f: &Fixture) -> Vec<i64> {
    const QUERIES: &[&str] = &[
        "SELECT CAST(COUNT(*) AS BIGINT) FROM buckets",
        "SELECT CAST(COALESCE(SUM(LENGTH(settings)), 0) AS BIGINT) FROM buckets",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM objects",
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM objects",
        "SELECT CAST(COALESCE(SUM(last_modified), 0) AS BIGINT) FROM objects",
        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM tenant_usage",
        "SELECT CAST(COALESCE(SUM(objects), 0) AS BIGINT) FROM tenant_usage",
        "SELECT CAST(COALESCE(SUM(reserved_bytes + reserved_objects), 0) AS BIGINT) FROM tenant_usage",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM tenant_usage WHERE quota_bytes IS NOT NULL OR quota_objects IS NOT NULL",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM multipart_uploads",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM multipart_parts",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM presign_keys",
        "SELECT CAST(COUNT(*) AS BIGINT) FROM blob_intents",
    ];
    let mut out = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        let v: i64 = tansu_shared::on_pool!(f.state.store.pool(), p => {
            sqlx::query_scalar(*q).fetch_one(p).await.unwrap()
        });
        out.push(v);
    }
    out.push(f.blob_files() as i64);
    out
}

/// Waits until what an allowed request left to finish in the background (a replaced blob's
/// deletion, a released reservation) is done, so that it is not taken for a refused request's.
async fn settle(f: &Fixture) {
    let mut last = everything(f).await;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        let now = everything(f).await;
        if now == last {
            return;
        }
        last = now;
    }
}

/// Every route of the router is a row of `docs/authorization.md`'s storage-svc table (and every
/// row a route); every route answers every actor as the row says, and a refused request changes
/// nothing.
async fn every_route_is_in_the_isolation_matrix(db: Db) {
    use tansu_shared::testing::matrix::{self, ACTORS, Expect};
    let doc = include_str!("../../docs/authorization.md");
    let rows = matrix::table(doc, "storage-svc");
    let dialect = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    let routed =
        tansu_shared::testing::http::routed_methods(&f.app.url(""), &tansu_storage::route_paths())
            .await;
    let (undocumented, unrouted) = matrix::differences(&rows, &routed);
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "docs/authorization.md and the router differ:\n  routes without a row: \
         {undocumented:?}\n  rows without a route: {unrouted:?}"
    );
    // A's and B's buckets of the same name; A's object and upload in it.
    f.create_bucket(TENANT_A, "shared").await;
    f.create_bucket(TENANT_B, "shared").await;
    assert_eq!(
        f.put(TENANT_A, "shared", "secret.txt", b"A's secret")
            .await
            .status(),
        201
    );
    let shared_upload = upload(&f, "shared").await;

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut counter = 0;
    for row in &rows {
        let tokens = actor_tokens(&f, &row.scope);
        // Refusals first: an allowed request may change what the next one finds.
        let mut order: Vec<usize> = (0..ACTORS.len()).collect();
        order.sort_by_key(|&i| row.expect[i] == Expect::Ok);
        for i in order {
            let expect = row.expect[i];
            counter += 1;
            // An allowed request gets resources of its own (a fresh bucket with an object and
            // an upload), so that what it changes disturbs no other row.
            let (bucket, upload_id) = if expect == Expect::Ok {
                let bucket = format!("matrix-{counter}");
                let create = !(row.method == "PUT" && row.path == "/api/buckets/{bucket}");
                let mut upload_id = String::new();
                if create {
                    f.create_bucket(TENANT_A, &bucket).await;
                    assert_eq!(
                        f.put(TENANT_A, &bucket, "secret.txt", b"x").await.status(),
                        201
                    );
                    if row.path.contains("{upload_id}") {
                        upload_id = upload(&f, &bucket).await;
                    }
                }
                (bucket, upload_id)
            } else {
                ("shared".to_owned(), shared_upload.clone())
            };
            let path = matrix::concrete(&row.path, |name| match name {
                "tenant" => TENANT_C.to_owned(),
                "bucket" => bucket.clone(),
                "key" => "secret.txt".into(),
                "upload_id" => upload_id.clone(),
                "part_number" => "1".into(),
                other => other.to_owned(),
            });
            let method: Method = row.method.parse().unwrap();
            let mut req = f
                .http
                .request(method, f.app.url(&path))
                .header("x-tansu-tenant", TENANT_A)
                .body(body_for(&row.method, &row.path));
            if let Some(t) = &tokens[i] {
                req = req.bearer_auth(t);
            }
            let before = match expect {
                Expect::Refused(_) => Some(everything(&f).await),
                Expect::Ok => None,
            };
            let resp = req.send_ok().await;
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            checked += 1;
            let what = format!("{} {path} as {}", row.method, ACTORS[i]);
            if !expect.admits(status) {
                failures.push(format!("{what}: {status}, expected {expect:?} {text}"));
            } else if let Some(before) = before
                && everything(&f).await != before
            {
                failures.push(format!("{what}: refused, but it changed something"));
            }
            if expect == Expect::Ok {
                settle(&f).await;
            }
        }
    }
    println!(
        "storage-svc isolation matrix ({dialect}): {} routes x {} actors = {checked} requests",
        rows.len(),
        ACTORS.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    f.finish().await;
}

async fn tenant_isolation_matrix(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    // Both tenants have a bucket of the same name; only A has the object.
    f.create_bucket(TENANT_A, "shared").await;
    f.create_bucket(TENANT_B, "shared").await;
    assert_eq!(
        f.put(TENANT_A, "shared", "secret.txt", b"A's secret")
            .await
            .status(),
        201
    );
    let token_a = f.token(TENANT_A, "storage.read storage.write");
    let token_b = f.token(TENANT_B, "storage.read storage.write");
    let read_only_a = f.token(TENANT_A, "storage.read");
    let wrong_audience = {
        let mut c = f.claims(TENANT_A, "storage.read storage.write");
        c.aud = tansu_shared::auth::Audience::One("tansu.db".into());
        tansu_shared::testing::issuer::sign(&f.key, &c)
    };

    for (method, path, write) in endpoints() {
        let what = format!("{method} {path}");
        // B's token presented for tenant A (or A's for B): refused before anything is touched.
        for (header, token) in [(TENANT_A, &token_b), (TENANT_B, &token_a)] {
            let r = f
                .with_token(method.clone(), header, token, path)
                .body("x")
                .send_ok()
                .await;
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{what}: token of another tenant"
            );
        }
        // No tenant header at all.
        let r = f
            .http
            .request(method.clone(), f.app.url(path))
            .bearer_auth(&token_a)
            .send_ok()
            .await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{what}: no tenant header"
        );
        // No token.
        let r = f
            .http
            .request(method.clone(), f.app.url(path))
            .header("x-tansu-tenant", TENANT_A)
            .send_ok()
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}: no token");
        assert!(r.headers().contains_key("www-authenticate"));
        // A token for another audience.
        let r = f
            .with_token(method.clone(), TENANT_A, &wrong_audience, path)
            .send_ok()
            .await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{what}: wrong audience"
        );
        // Read-only token on a write endpoint.
        if write {
            let r = f
                .with_token(method.clone(), TENANT_A, &read_only_a, path)
                .body("x")
                .send_ok()
                .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}: read-only token");
        }
    }

    // B, properly authenticated, sees only B's data.
    for method in [Method::GET, Method::HEAD, Method::DELETE] {
        let r = f
            .send(
                method.clone(),
                TENANT_B,
                "/api/buckets/shared/objects/secret.txt",
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} as B");
    }
    assert_eq!(f.keys(TENANT_B, "shared").await, Vec::<String>::new());
    // Copying from A's bucket of the same name reads B's (empty) bucket.
    let r = f
        .as_tenant(Method::PUT, TENANT_B, "/api/buckets/shared/objects/stolen")
        .header("x-tansu-copy-source", "shared/secret.txt")
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // B's bucket is empty, so B may delete it; A's is untouched.
    let r = f
        .send(Method::DELETE, TENANT_B, "/api/buckets/shared")
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = f
        .as_tenant(Method::PUT, TENANT_B, "/api/buckets/shared/objects/x")
        .body("x")
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "B's bucket is gone");
    let usage_b = f.usage(TENANT_B).await;
    assert_eq!(usage_b["objects"], 0);
    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/shared/objects/secret.txt",
        )
        .await;
    assert_eq!(r.text().await.unwrap(), "A's secret");
    let usage_a = f.usage(TENANT_A).await;
    assert_eq!(usage_a["objects"], 1);
    f.finish().await;
}

async fn path_traversal_keys_are_refused(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "box").await;
    // Encoded so that no client or URL parser resolves the dot segments before the service.
    for key in [
        "..%2F..%2Fescape",
        "a%2F..%2F..%2Fb",
        "%2Fetc%2Fpasswd",
        "nul%00byte",
        "line%0Abreak",
        "back%5Cslash",
        "a%2F.%2Fb",
        "double%2F%2Fslash",
    ] {
        let path = format!("/api/buckets/box/objects/{key}");
        let r = f
            .as_tenant(Method::PUT, TENANT_A, &path)
            .body("x")
            .send_ok()
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "PUT {key}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let r = f.send(Method::GET, TENANT_A, &path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "GET {key}");
    }
    let long = "k".repeat(1025);
    let r = f.put(TENANT_A, "box", &long, b"x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Invalid UTF-8 in the path is a 400 problem, not a panic or a 500.
    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/box/objects/%FF%FE")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Bucket names cannot traverse either.
    let r = f
        .send(Method::PUT, TENANT_A, "/api/buckets/..%2Fother")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Nothing was written anywhere; keys never become file names.
    let ok = f.put(TENANT_A, "box", "a/normal/key.txt", b"fine").await;
    assert_eq!(ok.status(), 201);
    let objects = f.data_dir().join("objects");
    let tenants: Vec<String> = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(tenants, [TENANT_A]);
    let blobs: Vec<std::fs::DirEntry> = std::fs::read_dir(objects.join(TENANT_A))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(blobs.len(), 1);
    assert!(blobs[0].file_type().unwrap().is_file());
    assert!(uuid_like(&blobs[0].file_name().into_string().unwrap()));
    f.finish().await;
}

fn uuid_like(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

async fn presign(f: &Fixture, tenant: &str, bucket: &str, key: &str, method: &str) -> String {
    let r = f
        .as_tenant(
            Method::POST,
            tenant,
            &format!("/api/buckets/{bucket}/presign"),
        )
        .json(&serde_json::json!({ "key": key, "method": method, "expires_in": 300 }))
        .send_ok()
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["url"].as_str().unwrap().starts_with("/storage/api/"));
    v["path"].as_str().unwrap().to_owned()
}

fn replace_param(path: &str, name: &str, value: &str) -> String {
    let (base, query) = path.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| {
            if kv.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                kv.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

async fn presigned_urls(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "pics").await;
    f.create_bucket(TENANT_B, "pics").await;
    assert_eq!(
        f.put(TENANT_A, "pics", "cat 1.jpg", b"A cat")
            .await
            .status(),
        201
    );
    assert_eq!(
        f.put(TENANT_B, "pics", "cat 1.jpg", b"B cat")
            .await
            .status(),
        201
    );

    let get_a = presign(&f, TENANT_A, "pics", "cat 1.jpg", "GET").await;
    // No bearer token needed.
    let r = f.http.get(f.app.url(&get_a)).send_ok().await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "A cat");
    let r = f.http.head(f.app.url(&get_a)).send_ok().await;
    assert_eq!(r.status(), 200);
    // With the gateway's tenant header for the same tenant, still fine.
    let r = f
        .http
        .get(f.app.url(&get_a))
        .header("x-tansu-tenant", TENANT_A)
        .send_ok()
        .await;
    assert_eq!(r.status(), 200);

    // Replays: another tenant's path, another tenant's host, another key, method or expiry.
    let forbidden = [
        replace_param(&get_a, "X-Tansu-Tenant", TENANT_B),
        get_a.replace("cat%201.jpg", "cat%202.jpg"),
        replace_param(&get_a, "X-Tansu-Expires", "9999999999"),
        replace_param(&get_a, "X-Tansu-Signature", "AAAA"),
        replace_param(&get_a, "X-Tansu-Tenant", "not-a-uuid"),
        replace_param(&get_a, "X-Tansu-Method", "PUT"),
    ];
    for path in &forbidden {
        let r = f.http.get(f.app.url(path)).send_ok().await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let r = f
        .http
        .get(f.app.url(&get_a))
        .header("x-tansu-tenant", TENANT_B)
        .send_ok()
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "replayed through tenant B's host"
    );
    // A GET URL does not allow PUT or DELETE.
    let r = f
        .http
        .put(f.app.url(&get_a))
        .body("overwrite")
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f.http.delete(f.app.url(&get_a)).send_ok().await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // B's object is reachable only through B's own URL.
    let get_b = presign(&f, TENANT_B, "pics", "cat 1.jpg", "GET").await;
    assert_eq!(f.http.get(f.app.url(&get_b)).send_text().await, "B cat");

    // PUT and DELETE URLs.
    let put_a = presign(&f, TENANT_A, "pics", "upload.bin", "PUT").await;
    let r = f
        .http
        .put(f.app.url(&put_a))
        .body("uploaded")
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let r = f.http.get(f.app.url(&put_a)).send_ok().await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a PUT URL does not read");
    let r = f
        .http
        .put(f.app.url(&put_a))
        .header("x-tansu-copy-source", "pics/cat%201.jpg")
        .send_ok()
        .await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a PUT URL cannot copy other objects"
    );
    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/pics/objects/upload.bin",
        )
        .await;
    assert_eq!(r.text().await.unwrap(), "uploaded");
    let del_a = presign(&f, TENANT_A, "pics", "upload.bin", "DELETE").await;
    assert_eq!(
        f.http.delete(f.app.url(&del_a)).send_ok().await.status(),
        204
    );

    // Minting needs the scope the URL grants, a valid key, a known bucket and a sane expiry.
    let read_only = f.token(TENANT_A, "storage.read");
    let r = f
        .with_token(
            Method::POST,
            TENANT_A,
            &read_only,
            "/api/buckets/pics/presign",
        )
        .json(&serde_json::json!({ "key": "k", "method": "PUT" }))
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    for body in [
        serde_json::json!({ "key": "../k", "method": "GET" }),
        serde_json::json!({ "key": "k", "method": "POST" }),
        serde_json::json!({ "key": "k", "method": "GET", "expires_in": 0 }),
        serde_json::json!({ "key": "k", "method": "GET", "expires_in": 99999999 }),
        serde_json::json!({ "key": "k", "method": "GET", "extra": 1 }),
    ] {
        let r = f
            .as_tenant(Method::POST, TENANT_A, "/api/buckets/pics/presign")
            .json(&body)
            .send_ok()
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let r = f
        .as_tenant(Method::POST, TENANT_A, "/api/buckets/nope/presign")
        .json(&serde_json::json!({ "key": "k", "method": "GET" }))
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Another tenant's token cannot mint for A.
    let r = f
        .with_token(
            Method::POST,
            TENANT_A,
            &f.token(TENANT_B, "storage.read"),
            "/api/buckets/pics/presign",
        )
        .json(&serde_json::json!({ "key": "k", "method": "GET" }))
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A correctly signed URL past its expiry is refused.
    let tenant_a: uuid::Uuid = TENANT_A.parse().unwrap();
    let secret = f
        .state
        .presign_keys
        .key(&f.state.store, tenant_a)
        .await
        .unwrap();
    let past = tansu_shared::testing::issuer::now() - 1;
    let sig = tansu_storage::presign::sign(&secret, "GET", tenant_a, "pics", "cat 1.jpg", past);
    let expired = replace_param(
        &replace_param(&get_a, "X-Tansu-Expires", &past.to_string()),
        "X-Tansu-Signature",
        &sig,
    );
    let r = f.http.get(f.app.url(&expired)).send_ok().await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"], "the URL has expired");

    // An anonymous request naming a tenant that never minted a URL creates no key.
    let stranger = "0190f5c0-0000-7000-8000-0000000000cc";
    let r = f
        .http
        .get(
            f.app
                .url(&replace_param(&get_a, "X-Tansu-Tenant", stranger)),
        )
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let none = f
        .state
        .store
        .presign_key(stranger.parse().unwrap())
        .await
        .unwrap();
    assert!(none.is_none());

    // The per-tenant keys are stored sealed, never in the clear.
    let sealed = f
        .state
        .store
        .presign_key(TENANT_A.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(sealed.len() > 60);
    f.finish().await;
}

on_both_databases!(
    tenant_isolation_matrix,
    path_traversal_keys_are_refused,
    presigned_urls,
    every_route_is_in_the_isolation_matrix
);
