//! The storage API over the S3 backend, against a real S3-compatible server on 127.0.0.1:
//! moto's standalone server (`pip install 'moto[server]'`, `moto_server`), started by the test
//! on a free port. Skipped when `moto_server` is not installed, a failure under
//! `TANSU_REQUIRE_ALL=1` (CI installs it). Metadata on SQLite and PostgreSQL.
//!
//! What it covers: put with content type, metadata and checksums (and a refused bad checksum),
//! get, ranges, conditionals, head, listing, copy (S3 `CopyObject`), overwrite, a 12 MiB object
//! (placed with S3 multipart upload in 8 MiB parts), an empty object, the service's multipart
//! upload, delete — and, read back from the S3 server itself, that blobs are where they
//! should be and that nothing is left behind.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Db, Fixture, TENANT_A, etag_of, hex};
use md5::Digest as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use tansu_shared::testing::http::SendOk;
use tansu_storage::S3Config;

const S3_BUCKET: &str = "tansu-test";

/// A moto server, stopped (and reaped) when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

/// Starts `moto_server` on a free loopback port and creates the backend's bucket in it.
async fn start_moto() -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        return tansu_shared::testing::skip_or_fail(
            "storage S3 backend",
            "moto_server is not installed (pip install 'moto[server]')",
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto_server");
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Bucket creation doubles as the readiness probe (moto does not check signatures).
        match http
            .put(format!("{}/{S3_BUCKET}", moto.endpoint))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() > deadline => panic!("moto_server did not start in 60 s"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Some(moto)
}

/// The keys stored in the S3 bucket under `prefix`, as the S3 server lists them.
async fn s3_keys(moto: &Moto, prefix: &str) -> Vec<String> {
    let xml = reqwest::get(format!(
        "{}/{S3_BUCKET}?list-type=2&prefix={prefix}",
        moto.endpoint
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

/// Deterministic, non-repeating-looking content of `len` bytes.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

async fn get(f: &Fixture, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let path = format!("/api/buckets/files/objects/{key}");
    let headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
    f.send_with(Method::GET, TENANT_A, &path, headers, "").await
}

async fn s3_round_trip(db: Db) {
    let Some(moto) = start_moto().await else {
        return;
    };
    let endpoint = moto.endpoint.clone();
    let Some(f) = Fixture::start(db, move |c| {
        c.backend = "s3".into();
        c.s3 = S3Config {
            endpoint,
            bucket: S3_BUCKET.into(),
            region: "us-east-1".into(),
            access_key_id: "testing".into(),
            secret_access_key: tansu_shared::config::Secret::new("testing"),
            allow_http: true,
        };
    })
    .await
    else {
        return;
    };
    f.create_bucket(TENANT_A, "files").await;
    let tenant_prefix = format!("{TENANT_A}/");

    // Put with content type, user metadata and both checksums.
    let body = content(100_000, 1);
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            "/api/buckets/files/objects/docs/a.bin",
        )
        .header("content-type", "application/x-test")
        .header("x-tansu-meta-colour", "blue")
        .header("content-md5", &md5)
        .header("x-tansu-checksum-sha256", hex(&Sha256::digest(&body)))
        .body(body.clone())
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], etag_of(&body).as_str());
    assert_eq!(s3_keys(&moto, &tenant_prefix).await.len(), 1);

    // A bad checksum: refused, nothing visible, nothing stored.
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/files/objects/docs/bad")
        .header("content-md5", &md5)
        .body(b"not the same".to_vec())
        .send_ok()
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(get(&f, "docs/bad", &[]).await.status(), 404);
    assert_eq!(s3_keys(&moto, &tenant_prefix).await.len(), 1);

    // Get, head, ranges, conditionals.
    let r = get(&f, "docs/a.bin", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-test");
    assert_eq!(r.headers()["x-tansu-meta-colour"], "blue");
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    let r = f
        .send(
            Method::HEAD,
            TENANT_A,
            "/api/buckets/files/objects/docs/a.bin",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "100000");
    for (range, want) in [
        ("bytes=10-19", &body[10..20]),
        ("bytes=-7", &body[100_000 - 7..]),
        ("bytes=99990-", &body[99_990..]),
        ("bytes=0-0", &body[..1]),
    ] {
        let r = get(&f, "docs/a.bin", &[("range", range)]).await;
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), want, "{range}");
    }
    let r = get(&f, "docs/a.bin", &[("range", "bytes=100000-")]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100000");
    let etag = etag_of(&body);
    let r = get(&f, "docs/a.bin", &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    let r = get(&f, "docs/a.bin", &[("if-match", "\"other\"")]).await;
    assert_eq!(r.status(), 412);

    // Copy: a server-side S3 copy into a new blob.
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            "/api/buckets/files/objects/docs/copy.bin",
        )
        .header("x-tansu-copy-source", "files/docs/a.bin")
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let r = get(&f, "docs/copy.bin", &[]).await;
    assert_eq!(r.headers()["x-tansu-meta-colour"], "blue");
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    assert_eq!(s3_keys(&moto, &tenant_prefix).await.len(), 2);

    // 12 MiB: placed with an S3 multipart upload (8 MiB parts); a range across the part seam.
    let big = content(12 << 20, 2);
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/files/objects/big.bin")
        .body(big.clone())
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let r = get(&f, "big.bin", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(etag_of(&r.bytes().await.unwrap()), etag_of(&big));
    let seam = 8 << 20;
    let r = get(
        &f,
        "big.bin",
        &[("range", &format!("bytes={}-{}", seam - 5, seam + 4))],
    )
    .await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &big[seam - 5..seam + 5]);

    // An empty object.
    assert_eq!(f.put(TENANT_A, "files", "empty", b"").await.status(), 201);
    let r = get(&f, "empty", &[]).await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());

    // Overwrite: the old blob goes.
    let before = s3_keys(&moto, &tenant_prefix).await.len();
    assert_eq!(
        f.put(TENANT_A, "files", "docs/a.bin", b"v2").await.status(),
        200
    );
    assert_eq!(get(&f, "docs/a.bin", &[]).await.text().await.unwrap(), "v2");
    assert_eq!(s3_keys(&moto, &tenant_prefix).await.len(), before);

    // The service's multipart upload: parts are blobs, completion concatenates them.
    let r = f
        .as_tenant(Method::POST, TENANT_A, "/api/buckets/files/uploads")
        .json(&json!({ "key": "joined" }))
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["upload_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (p1, p2) = (content(300_000, 3), content(1000, 4));
    let mut etags = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let r = f
            .as_tenant(
                Method::PUT,
                TENANT_A,
                &format!("/api/buckets/files/uploads/{id}/parts/{n}"),
            )
            .body(p.clone())
            .send_ok()
            .await;
        assert_eq!(r.status(), 200);
        etags.push(r.headers()["etag"].to_str().unwrap().to_owned());
    }
    let r = f
        .as_tenant(
            Method::POST,
            TENANT_A,
            &format!("/api/buckets/files/uploads/{id}/complete"),
        )
        .json(&json!({ "parts": [
            { "part_number": 1, "etag": etags[0] },
            { "part_number": 2, "etag": etags[1] },
        ] }))
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    let joined = [p1, p2].concat();
    let r = get(&f, "joined", &[]).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), joined.as_slice());

    // Listing.
    let v: Value = f
        .get_json(TENANT_A, "/api/buckets/files/objects?delimiter=/")
        .await;
    let keys: Vec<&str> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["big.bin", "empty", "joined"]);
    assert_eq!(v["common_prefixes"], json!(["docs/"]));

    // Delete everything: no blob is left in S3 (parts and replaced blobs included).
    for key in ["docs/a.bin", "docs/copy.bin", "big.bin", "empty", "joined"] {
        let r = f
            .send(
                Method::DELETE,
                TENANT_A,
                &format!("/api/buckets/files/objects/{key}"),
            )
            .await;
        assert_eq!(r.status(), 204, "{key}");
        assert_eq!(get(&f, key, &[]).await.status(), 404);
    }
    assert!(
        common::eventually(Duration::from_secs(10), async || s3_keys(
            &moto,
            &tenant_prefix
        )
        .await
        .is_empty())
        .await,
        "left in S3: {:?}",
        s3_keys(&moto, &tenant_prefix).await
    );
    let u = f.usage(TENANT_A).await;
    assert_eq!(
        (u["bytes"].as_i64(), u["objects"].as_i64()),
        (Some(0), Some(0))
    );
    f.finish().await;
}

on_both_databases!(s3_round_trip);
