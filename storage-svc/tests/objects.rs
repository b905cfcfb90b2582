//! The object API over real HTTP: buckets, uploads, downloads, ranges, RFC 9110 conditional
//! requests, checksums, metadata, listings and copies — on SQLite and on PostgreSQL.

mod common;

use base64::Engine;
use common::{Db, Fixture, TENANT_A, etag_of, hex};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest;
use tansu_shared::testing::http::SendOk;

fn body_1000() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 251) as u8).collect()
}

async fn problem_type(r: reqwest::Response) -> String {
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    v["type"].as_str().unwrap().to_owned()
}

async fn buckets_lifecycle(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "photos").await;
    let dup = f.send(Method::PUT, TENANT_A, "/api/buckets/photos").await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    assert_eq!(problem_type(dup).await, "urn:tansu:problem:bucket-exists");
    let bad = f.send(Method::PUT, TENANT_A, "/api/buckets/Bad_Name").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Settings: a per-bucket size limit and content types.
    let r = f
        .as_tenant(Method::PATCH, TENANT_A, "/api/buckets/photos")
        .json(&serde_json::json!({"max_object_bytes": 10, "allowed_content_types": ["image/*"]}))
        .send_ok()
        .await;
    assert_eq!(r.status(), 200);
    let got: Value = f.get_json(TENANT_A, "/api/buckets/photos").await;
    assert_eq!(got["settings"]["max_object_bytes"], 10);
    for (key, content_type, len, status) in [
        ("a.png", "image/png", 11, StatusCode::PAYLOAD_TOO_LARGE),
        ("a.txt", "text/plain", 5, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("a.png", "image/png", 10, StatusCode::CREATED),
    ] {
        let r = f
            .as_tenant(
                Method::PUT,
                TENANT_A,
                &format!("/api/buckets/photos/objects/{key}"),
            )
            .header("content-type", content_type)
            .body(vec![0u8; len])
            .send_ok()
            .await;
        assert_eq!(r.status(), status, "{key}: {len} bytes of {content_type}");
    }

    // Delete only when empty.
    let r = f
        .send(Method::DELETE, TENANT_A, "/api/buckets/photos")
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(problem_type(r).await, "urn:tansu:problem:bucket-not-empty");
    let r = f
        .send(
            Method::DELETE,
            TENANT_A,
            "/api/buckets/photos/objects/a.png",
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = f
        .send(Method::DELETE, TENANT_A, "/api/buckets/photos")
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list: Value = f.get_json(TENANT_A, "/api/buckets").await;
    assert_eq!(list["buckets"].as_array().unwrap().len(), 0);
    let usage = f.usage(TENANT_A).await;
    assert_eq!(
        (usage["bytes"].as_i64(), usage["objects"].as_i64()),
        (Some(0), Some(0))
    );
    f.finish().await;
}

async fn upload_download_metadata_and_checksums(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "docs").await;
    let body = body_1000();
    let sha = hex(&sha2::Sha256::digest(&body));
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            "/api/buckets/docs/objects/dir/file.bin",
        )
        .header("content-type", "application/x-test")
        .header("content-md5", &md5)
        .header("x-tansu-meta-owner", "alice")
        .header("x-tansu-meta-purpose", "tests")
        .body(body.clone())
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], format!("\"{sha}\"").as_str());

    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/docs/objects/dir/file.bin",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-test");
    assert_eq!(r.headers()["x-tansu-meta-owner"], "alice");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.headers().contains_key("last-modified"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());

    let r = f
        .send(
            Method::HEAD,
            TENANT_A,
            "/api/buckets/docs/objects/dir/file.bin",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(r.headers()["x-tansu-meta-purpose"], "tests");

    // Checksum mismatches are refused and leave the stored object alone.
    let wrong_md5 = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            "/api/buckets/docs/objects/dir/file.bin",
        )
        .header("content-md5", wrong_md5)
        .body(b"other".to_vec())
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem_type(r).await, "urn:tansu:problem:bad-digest");
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/docs/objects/other")
        .header(
            "content-digest",
            format!(
                "sha-256=:{}:",
                base64::engine::general_purpose::STANDARD.encode([1u8; 32])
            ),
        )
        .body(b"other".to_vec())
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/docs/objects/other")
        .header(
            "x-tansu-checksum-sha256",
            hex(&sha2::Sha256::digest(b"other")),
        )
        .body(b"other".to_vec())
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/docs/objects/bad")
        .header("content-md5", "not base64!")
        .body(b"x".to_vec())
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let got = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/docs/objects/dir/file.bin",
        )
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), body.as_slice());

    // Overwrite: 200, usage follows the new size.
    let r = f.put(TENANT_A, "docs", "dir/file.bin", b"short").await;
    assert_eq!(r.status(), StatusCode::OK);
    let usage = f.usage(TENANT_A).await;
    assert_eq!(usage["bytes"], 10);
    assert_eq!(usage["objects"], 2);

    // Copy within the tenant keeps content, ETag and metadata.
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            "/api/buckets/docs/objects/copy%20of%20file",
        )
        .header("x-tansu-copy-source", "docs/dir/file.bin")
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/docs/objects/copy%20of%20file",
        )
        .await;
    assert_eq!(got.headers()["etag"], etag_of(b"short").as_str());
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"short");
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/docs/objects/x")
        .header("x-tansu-copy-source", "docs/missing")
        .send_ok()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Empty objects are objects.
    let r = f.put(TENANT_A, "docs", "empty", b"").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/docs/objects/empty")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 0);

    let missing = f
        .send(Method::GET, TENANT_A, "/api/buckets/docs/objects/nope")
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem_type(missing).await, "urn:tansu:problem:no-such-key");
    f.finish().await;
}

async fn ranges(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "rng").await;
    let body = body_1000();
    assert_eq!(f.put(TENANT_A, "rng", "obj", &body).await.status(), 201);
    let get = |range: &'static str| {
        f.as_tenant(Method::GET, TENANT_A, "/api/buckets/rng/objects/obj")
            .header("range", range)
            .send_ok()
    };
    let r = get("bytes=0-9").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 0-9/1000");
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[0..10]);

    let r = get("bytes=-100").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 900-999/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[900..]);

    let r = get("bytes=990-").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 990-999/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[990..]);

    let r = get("bytes=500-5000").await;
    assert_eq!(r.headers()["content-range"], "bytes 500-999/1000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[500..]);

    for unsatisfiable in ["bytes=1000-", "bytes=5000-6000", "bytes=-0"] {
        let r = get(unsatisfiable).await;
        assert_eq!(
            r.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{unsatisfiable}"
        );
        assert_eq!(r.headers()["content-range"], "bytes */1000");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }

    // Ignored: several ranges, other units, nonsense.
    for full in ["bytes=0-1,5-6", "items=0-1", "bytes=9-1", "garbage"] {
        let r = get(full).await;
        assert_eq!(r.status(), StatusCode::OK, "{full}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }

    // If-Range: a stale validator gets the whole, current representation.
    let etag = get("bytes=0-0").await.headers()["etag"].clone();
    let etag = etag.to_str().unwrap().to_owned();
    for (validator, status) in [
        ("\"stale\"", StatusCode::OK),
        (&etag, StatusCode::PARTIAL_CONTENT),
    ] {
        let headers = vec![
            ("range", "bytes=0-9".into()),
            ("if-range", validator.into()),
        ];
        let r = f
            .send_with(
                Method::GET,
                TENANT_A,
                "/api/buckets/rng/objects/obj",
                headers,
                "",
            )
            .await;
        assert_eq!(r.status(), status, "if-range {validator}");
    }
    f.finish().await;
}

async fn conditional_requests(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "cond").await;
    let r = f.put(TENANT_A, "cond", "obj", b"v1").await;
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let path = "/api/buckets/cond/objects/obj";
    let head = f.send(Method::HEAD, TENANT_A, path).await;
    let last_modified = head.headers()["last-modified"].to_str().unwrap().to_owned();
    let lm = httpdate::parse_http_date(&last_modified).unwrap();
    let earlier = httpdate::fmt_http_date(lm - std::time::Duration::from_secs(3600));
    let later = httpdate::fmt_http_date(lm + std::time::Duration::from_secs(3600));

    let get = |name: &'static str, value: String| {
        f.send_with(Method::GET, TENANT_A, path, vec![(name, value)], "")
    };
    // If-None-Match: weak comparison; 304 carries the validators and no body.
    let r = get("if-none-match", etag.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert_eq!(r.bytes().await.unwrap().len(), 0);
    // If-Match: strong comparison.
    let r = get("if-match", "\"other\"".into()).await;
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        problem_type(r).await,
        "urn:tansu:problem:precondition-failed"
    );
    let weak = format!("W/{etag}");
    for (name, value, status) in [
        ("if-none-match", &weak, 304),
        ("if-none-match", &"\"other\", *".into(), 304),
        ("if-none-match", &"\"other\"".into(), 200),
        ("if-match", &etag, 200),
        ("if-match", &"*".into(), 200),
        ("if-match", &weak, 412),
        // Dates.
        ("if-modified-since", &last_modified, 304),
        ("if-modified-since", &later, 304),
        ("if-modified-since", &earlier, 200),
        ("if-modified-since", &"not a date".into(), 200),
        ("if-unmodified-since", &earlier, 412),
        ("if-unmodified-since", &last_modified, 200),
    ] {
        let r = get(name, value.clone()).await;
        assert_eq!(r.status(), status, "{name}: {value}");
    }

    // If-None-Match wins over If-Modified-Since; If-Match over If-Unmodified-Since; HEAD
    // behaves like GET. Writes: create-only, compare-and-swap, conditional delete.
    let h = |name: &'static str, value: &str| (name, value.to_owned());
    let new = "/api/buckets/cond/objects/new";
    let absent = "/api/buckets/cond/objects/absent";
    let cases = [
        (
            Method::GET,
            path,
            vec![
                h("if-none-match", "\"other\""),
                h("if-modified-since", &later),
            ],
            "",
            200,
        ),
        (
            Method::GET,
            path,
            vec![h("if-match", &etag), h("if-unmodified-since", &earlier)],
            "",
            200,
        ),
        (Method::HEAD, path, vec![h("if-none-match", &etag)], "", 304),
        (Method::PUT, path, vec![h("if-none-match", "*")], "v2", 412),
        (Method::PUT, new, vec![h("if-none-match", "*")], "n", 201),
        (Method::PUT, absent, vec![h("if-match", "*")], "n", 412),
        (
            Method::PUT,
            path,
            vec![h("if-match", "\"other\"")],
            "v2",
            412,
        ),
        (Method::PUT, path, vec![h("if-match", &etag)], "v2", 200),
        // The old ETag no longer matches.
        (Method::DELETE, path, vec![h("if-match", &etag)], "", 412),
    ];
    for (method, target, headers, body, status) in cases {
        let what = format!("{method} {target} {headers:?}");
        let r = f.send_with(method, TENANT_A, target, headers, body).await;
        assert_eq!(r.status(), status, "{what}");
    }
    let r = f.send(Method::GET, TENANT_A, path).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"v2");
    f.finish().await;
}

async fn listing(db: Db) {
    let Some(f) = Fixture::start(db, |_| {}).await else {
        return;
    };
    f.create_bucket(TENANT_A, "lst").await;
    let keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/é", "e"];
    for k in keys {
        assert_eq!(f.put(TENANT_A, "lst", k, k.as_bytes()).await.status(), 201);
    }
    let list = |query: String| {
        let f = &f;
        async move {
            let r = f
                .send(
                    Method::GET,
                    TENANT_A,
                    &format!("/api/buckets/lst/objects?{query}"),
                )
                .await;
            assert_eq!(r.status(), 200, "{query}");
            r.json::<Value>().await.unwrap()
        }
    };
    let keys_of = |v: &Value| -> Vec<String> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let prefixes_of = |v: &Value| -> Vec<String> {
        v["common_prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect()
    };

    let all = list(String::new()).await;
    assert_eq!(keys_of(&all), keys);
    let v = list("delimiter=/".into()).await;
    assert_eq!(keys_of(&v), ["c", "e"]);
    assert_eq!(prefixes_of(&v), ["a/", "b/", "d/"]);
    let v = list("prefix=a/&delimiter=/".into()).await;
    assert_eq!(keys_of(&v), ["a/1", "a/2"]);
    assert_eq!(prefixes_of(&v), ["a/b/"]);
    let v = list("prefix=a/".into()).await;
    assert_eq!(keys_of(&v), ["a/1", "a/2", "a/b/3"]);

    // Paging one entry at a time visits every entry exactly once, with and without delimiter.
    for delimited in [false, true] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..20 {
            let mut q = "max-keys=1".to_owned();
            if delimited {
                q.push_str("&delimiter=/");
            }
            if let Some(t) = &token {
                q.push_str(&format!("&continuation-token={t}"));
            }
            let v = list(q).await;
            seen.extend(keys_of(&v));
            seen.extend(prefixes_of(&v));
            match v["next_continuation_token"].as_str() {
                Some(t) => {
                    assert_eq!(v["is_truncated"], true);
                    token = Some(t.to_owned());
                }
                None => {
                    token = None;
                    break;
                }
            }
        }
        assert!(token.is_none(), "paging ended");
        let expected: Vec<&str> = if delimited {
            vec!["a/", "b/", "c", "d/", "e"]
        } else {
            keys.to_vec()
        };
        assert_eq!(seen, expected, "delimited: {delimited}");
    }
    // Control characters never reach the database (PostgreSQL text cannot hold NUL).
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for q in [
        "prefix=a%00".to_owned(),
        "delimiter=%00".to_owned(),
        format!("continuation-token={}", URL_SAFE_NO_PAD.encode("a\0b")),
        "max-keys=many".to_owned(),
    ] {
        let r = f
            .send(
                Method::GET,
                TENANT_A,
                &format!("/api/buckets/lst/objects?{q}"),
            )
            .await;
        assert_eq!(r.status(), 400, "{q}");
    }
    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/lst/objects?continuation-token=***",
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/nope/objects")
        .await;
    assert_eq!(r.status(), 404);
    f.finish().await;
}

on_both_databases!(
    buckets_lifecycle,
    upload_download_metadata_and_checksums,
    ranges,
    conditional_requests,
    listing,
);
