//! A 256 MiB object, generated on the fly, streams up and down without being buffered: the
//! whole process (client and service) stays far below the object's size in resident memory.

mod common;

use common::{Db, Fixture, TENANT_A, hex};
use futures::StreamExt;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tansu_shared::testing::http::SendOk;

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 256;

fn chunk(i: usize) -> Vec<u8> {
    let mut c = vec![(i % 256) as u8; CHUNK];
    c[..8].copy_from_slice(&(i as u64).to_be_bytes());
    c
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_streams_both_ways() {
    let f = Fixture::start(Db::Sqlite, |_| {}).await.unwrap();
    f.create_bucket(TENANT_A, "big").await;
    let mut expected = Sha256::new();
    for i in 0..CHUNKS {
        expected.update(chunk(i));
    }
    let expected = format!("\"{}\"", hex(&expected.finalize()));
    let before = peak_rss_mib();

    let body = futures::stream::iter(0..CHUNKS).map(|i| Ok::<_, std::io::Error>(chunk(i)));
    let r = f
        .as_tenant(Method::PUT, TENANT_A, "/api/buckets/big/objects/blob.bin")
        .header("content-length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap_stream(body))
        .send_ok()
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["etag"], expected.as_str());

    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/big/objects/blob.bin")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        (CHUNK * CHUNKS).to_string().as_str()
    );
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    let mut stream = r.bytes_stream();
    while let Some(part) = stream.next().await {
        let part = part.unwrap();
        total += part.len();
        hasher.update(&part);
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert_eq!(format!("\"{}\"", hex(&hasher.finalize())), expected);

    // A range deep inside the object.
    let r = f
        .as_tenant(Method::GET, TENANT_A, "/api/buckets/big/objects/blob.bin")
        .header(
            "range",
            format!("bytes={}-{}", 200 * CHUNK, 200 * CHUNK + 7),
        )
        .send_ok()
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &200u64.to_be_bytes());

    if let (Some(before), Some(after)) = (before, peak_rss_mib()) {
        eprintln!("peak RSS: {before} MiB before, {after} MiB after");
        assert!(
            after < before + 64,
            "peak resident memory grew from {before} MiB to {after} MiB: something buffered the object"
        );
    }
    f.finish().await;
}
