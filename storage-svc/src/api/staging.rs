//! What every write of content shares (whole objects and multipart parts): quota reservations,
//! blob intents, upload headers and checksums, and streaming a body to a verified temp file.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};
use tansu_shared::Problem;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{ApiResult, quota_exceeded};
use crate::AppState;
use crate::store::{Reserved, Store};

pub(super) const META_PREFIX: &str = "x-tansu-meta-";
const MAX_META_BYTES: usize = 2048;

/// Bytes and objects held for an upload until it commits; released if it does not.
pub(crate) struct ReservationGuard {
    store: Store,
    tenant: Uuid,
    pub(crate) reserved: Reserved,
    pub(crate) armed: bool,
}

impl Drop for ReservationGuard {
    fn drop(&mut self) {
        if self.armed
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (store, tenant, r) = (self.store.clone(), self.tenant, self.reserved);
            handle.spawn(async move {
                if let Err(e) = store.release(tenant, r).await {
                    tracing::warn!(error = %e, "could not release a quota reservation");
                }
            });
        }
    }
}

/// A placed blob not yet referenced by any object: deleted unless the commit succeeds.
pub(crate) struct BlobGuard {
    state: AppState,
    tenant: Uuid,
    blob: String,
    pub(crate) armed: bool,
}

impl Drop for BlobGuard {
    fn drop(&mut self) {
        if self.armed
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (st, tenant, blob) = (self.state.clone(), self.tenant, self.blob.clone());
            handle.spawn(async move { discard_blob(&st, &tenant.to_string(), &blob).await });
        }
    }
}

/// Records a blob about to be written, so that a crash before its commit leaks nothing (the
/// start-up sweep deletes it), and returns the guard that deletes it if the commit fails.
pub(crate) async fn intend_blob(st: &AppState, tenant: Uuid) -> ApiResult<(Uuid, BlobGuard)> {
    let blob_id = Uuid::now_v7();
    st.store.add_intent(tenant, &blob_id.to_string()).await?;
    Ok((
        blob_id,
        BlobGuard {
            state: st.clone(),
            tenant,
            blob: blob_id.to_string(),
            armed: true,
        },
    ))
}

/// Deletes an unreferenced blob and then its intent record.
pub(crate) async fn discard_blob(st: &AppState, tenant: &str, blob: &str) {
    let path = object_store::path::Path::from(format!("{tenant}/{blob}"));
    if st.backend.delete(&path).await
        && let Err(e) = st.store.remove_intent(tenant, blob).await
    {
        tracing::warn!(error = %e, "could not remove a blob intent");
    }
}

pub(crate) async fn reserve(
    st: &AppState,
    tenant: Uuid,
    bytes: u64,
    objects: i64,
) -> ApiResult<ReservationGuard> {
    let reserved = Reserved {
        bytes: i64::try_from(bytes).map_err(|_| quota_exceeded())?,
        objects,
    };
    st.store.reserve(tenant, reserved, st.quota()).await?;
    Ok(ReservationGuard {
        store: st.store.clone(),
        tenant,
        reserved,
        armed: true,
    })
}

/// How many bytes an upload may stream before it certainly exceeds the quota in force (the
/// tenant's override or the default): the room left plus `credit` (its own reservation and the
/// bytes it replaces). Only a cut-off for uploads without a length; commits re-check atomically.
pub(crate) async fn stream_room(st: &AppState, tenant: Uuid, credit: i64) -> ApiResult<u64> {
    let usage = st.store.usage(tenant).await?;
    let quota = usage.quota(st.quota());
    Ok((quota.bytes - usage.bytes - usage.reserved_bytes + credit).max(0) as u64)
}

pub(crate) struct UploadHeaders {
    pub(crate) content_type: String,
    pub(crate) metadata: BTreeMap<String, String>,
    content_md5: Option<Vec<u8>>,
    sha256: Option<Vec<u8>>,
    pub(crate) content_length: Option<u64>,
}

pub(crate) fn upload_headers(headers: &HeaderMap) -> ApiResult<UploadHeaders> {
    let content_type = match headers.get(header::CONTENT_TYPE) {
        None => "application/octet-stream".to_owned(),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Problem::bad_request("invalid Content-Type"))?;
            if s.len() > 256 || !s.contains('/') {
                return Err(Problem::bad_request("invalid Content-Type"));
            }
            s.to_owned()
        }
    };
    let mut metadata = BTreeMap::new();
    let mut meta_bytes = 0;
    for (name, value) in headers {
        if let Some(k) = name.as_str().strip_prefix(META_PREFIX) {
            let v = value
                .to_str()
                .map_err(|_| Problem::bad_request("metadata values must be visible ASCII"))?;
            meta_bytes += k.len() + v.len();
            if k.is_empty() || meta_bytes > MAX_META_BYTES {
                return Err(Problem::bad_request(
                    "user metadata is limited to 2 KiB of non-empty names and values",
                ));
            }
            metadata.insert(k.to_owned(), v.to_owned());
        }
    }
    let content_md5 = match headers.get("content-md5") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| STANDARD.decode(s.trim()).ok())
                .filter(|d| d.len() == 16)
                .ok_or_else(|| Problem::bad_request("invalid Content-MD5"))?,
        ),
    };
    let mut sha256 = None;
    if let Some(v) = headers.get("x-tansu-checksum-sha256") {
        let s = v.to_str().unwrap_or("").trim();
        let d = decode_hex(s)
            .or_else(|| STANDARD.decode(s).ok())
            .filter(|d| d.len() == 32)
            .ok_or_else(|| Problem::bad_request("invalid x-tansu-checksum-sha256"))?;
        sha256 = Some(d);
    }
    if let Some(v) = headers.get("content-digest") {
        // RFC 9530: `sha-256=:<base64>:` (other algorithms are ignored).
        let s = v.to_str().unwrap_or("");
        for item in s.split(',') {
            if let Some((alg, val)) = item.trim().split_once('=')
                && alg.trim().eq_ignore_ascii_case("sha-256")
            {
                let d = val
                    .trim()
                    .strip_prefix(':')
                    .and_then(|v| v.strip_suffix(':'))
                    .and_then(|b| STANDARD.decode(b).ok())
                    .filter(|d| d.len() == 32)
                    .ok_or_else(|| Problem::bad_request("invalid Content-Digest"))?;
                if sha256.as_ref().is_some_and(|s| *s != d) {
                    return Err(bad_digest());
                }
                sha256 = Some(d);
            }
        }
    }
    let content_length = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("invalid Content-Length"))?,
        ),
    };
    Ok(UploadHeaders {
        content_type,
        metadata,
        content_md5,
        sha256,
        content_length,
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bad_digest() -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad-digest", "Checksum mismatch")
        .with_detail("the uploaded content does not match the checksum sent with it")
}

pub(crate) fn too_large(limit: u64) -> Problem {
    Problem::payload_too_large().with_detail(format!("objects are limited to {limit} bytes"))
}

/// Streams a request body to a temp file, hashing on the way (never more than one chunk in
/// memory), then fsyncs it and verifies the checksums the client sent.
pub(crate) async fn stage(
    st: &AppState,
    body: Body,
    h: &UploadHeaders,
    stream_limit: u64,
    limit: u64,
) -> ApiResult<(crate::backend::TempFile, u64, Vec<u8>)> {
    let (tmp, file) = st
        .backend
        .temp_file()
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut writer = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut sha = Sha256::new();
    let mut md5 = h.content_md5.as_ref().map(|_| Md5::new());
    let mut size: u64 = 0;
    let mut stream = body.into_data_stream();
    // A client that stops sending holds a reservation and a temp file: bounded by an idle limit.
    let idle = std::time::Duration::from_secs(st.config.upload_idle_timeout_secs);
    loop {
        let next = match tokio::time::timeout(idle, stream.next()).await {
            Ok(next) => next,
            Err(_) => {
                return Err(Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "upload-timeout",
                    "Upload stalled",
                )
                .with_detail("no data arrived within the upload idle timeout"));
            }
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|_| Problem::bad_request("the upload was interrupted"))?;
        size += chunk.len() as u64;
        if size > stream_limit {
            return Err(if size > limit {
                too_large(limit)
            } else {
                quota_exceeded()
            });
        }
        sha.update(&chunk);
        if let Some(m) = md5.as_mut() {
            m.update(&chunk);
        }
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| Problem::internal(&e))?;
    }
    if h.content_length.is_some_and(|n| n != size) {
        return Err(Problem::bad_request(
            "the body does not match Content-Length",
        ));
    }
    writer.flush().await.map_err(|e| Problem::internal(&e))?;
    let file = writer.into_inner();
    file.sync_all().await.map_err(|e| Problem::internal(&e))?;
    drop(file);
    let digest = sha.finalize();
    if h.sha256
        .as_ref()
        .is_some_and(|d| d.as_slice() != digest.as_slice())
    {
        return Err(bad_digest());
    }
    if let (Some(expected), Some(m)) = (&h.content_md5, md5)
        && expected.as_slice() != m.finalize().as_slice()
    {
        return Err(bad_digest());
    }

    Ok((tmp, size, digest.to_vec()))
}
