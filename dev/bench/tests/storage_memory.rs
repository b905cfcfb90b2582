//! The storage service's memory bound: a 1 GiB object uploads and downloads through the gateway
//! with the storage service's resident memory under 64 MiB.
//!
//! The storage service runs in its own process (`tansu-bench serve-storage`, SQLite metadata,
//! local backend), the TLS gateway in this one. 1 GiB is generated chunk by chunk on the way
//! up and hashed chunk by chunk on the way down — never held whole anywhere — and the storage
//! process's peak resident memory (`VmHWM`) must stay under 64 MiB.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tansu_bench::storage_rig::StorageRig;

const CHUNK: usize = 1 << 20;
const CHUNKS: usize = 1024; // 1 GiB
const LIMIT_MIB: u64 = 64;

/// Chunk `i` of the object: distinct per chunk, so a reordered or repeated chunk changes
/// the hash.
fn chunk(i: usize) -> Bytes {
    let mut c = vec![(i % 251) as u8; CHUNK];
    c[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Bytes::from(c)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_object_through_the_gateway_keeps_storage_under_64_mib() {
    let dir = tempfile::tempdir().unwrap();
    let rig = StorageRig::start(env!("CARGO_BIN_EXE_tansu-bench").as_ref(), dir.path())
        .await
        .unwrap();
    let http = rig.client().unwrap();
    let token = rig.token();
    let r = http
        .put(rig.url("/api/buckets/big"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let at_start = rig.storage_peak_rss_kib().unwrap() / 1024;

    // Up: generated on the fly, hashed as it is generated.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut expected = Some((Sha256::new(), tx));
    let body = futures::stream::iter(0..CHUNKS).map(move |i| {
        let c = chunk(i);
        if let Some((h, _)) = expected.as_mut() {
            h.update(&c);
        }
        if i == CHUNKS - 1
            && let Some((h, tx)) = expected.take()
        {
            let _ = tx.send(hex(&h.finalize()));
        }
        Ok::<_, std::io::Error>(hyper::body::Frame::data(c))
    });
    let r = http
        .put(rig.url("/api/buckets/big/objects/gib.bin"))
        .bearer_auth(&token)
        .header("content-length", (CHUNK * CHUNKS).to_string())
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(body)))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let expected = format!("\"{}\"", rx.await.unwrap());
    assert_eq!(r.headers()["etag"], expected.as_str());
    let after_upload = rig.storage_peak_rss_kib().unwrap() / 1024;

    // Down: hashed as it arrives.
    let mut r = http
        .get(rig.url("/api/buckets/big/objects/gib.bin"))
        .bearer_auth(&token)
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], expected.as_str());
    let mut hasher = Sha256::new();
    let mut total = 0usize;
    while let Some(part) = r.chunk().await.unwrap() {
        total += part.len();
        hasher.update(&part);
    }
    assert_eq!(total, CHUNK * CHUNKS);
    assert_eq!(format!("\"{}\"", hex(&hasher.finalize())), expected);

    let peak = rig.storage_peak_rss_kib().unwrap() / 1024;
    eprintln!(
        "storage process peak RSS: {at_start} MiB at start, {after_upload} MiB after the upload, \
         {peak} MiB after the download"
    );
    assert!(
        peak < LIMIT_MIB,
        "the storage service's peak resident memory reached {peak} MiB (limit {LIMIT_MIB} MiB)"
    );
    rig.stop().await;
}
