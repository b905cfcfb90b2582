//! The object API under `/api/…` (public: `/storage/api/…`).
//!
//! ```text
//! GET    /api/buckets                               list buckets            storage.read
//! PUT    /api/buckets/{bucket}                      create (JSON settings)  storage.write
//! GET    /api/buckets/{bucket}                      settings                storage.read
//! PATCH  /api/buckets/{bucket}                      change settings         storage.write
//! DELETE /api/buckets/{bucket}                      delete if empty         storage.write
//! GET    /api/buckets/{bucket}/objects              list (prefix, delimiter, max-keys, continuation-token)
//! PUT    /api/buckets/{bucket}/objects/{key…}       upload (or copy with x-tansu-copy-source)
//! GET    /api/buckets/{bucket}/objects/{key…}       download (Range, conditionals)
//! HEAD   /api/buckets/{bucket}/objects/{key…}       metadata
//! DELETE /api/buckets/{bucket}/objects/{key…}       delete
//! POST   /api/buckets/{bucket}/presign              mint a presigned URL
//! GET    /api/usage                                 the tenant's usage and quota
//! GET/PUT/DELETE /admin/tenants/{tenant}/quota      per-tenant quota override (platform, storage.admin)
//! ```
//!
//! Object routes accept either a bearer token (scope + tenant checked by the shared
//! extractors) or a presigned URL's query parameters (see [`crate::presign`]).

// Problem (the workspace's error body) is large; handlers return it by value on purpose.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::marker::PhantomData;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::StreamExt;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::{StorageRead, StorageWrite};
use tansu_shared::auth::{AuthError, RequireScope, ScopeSet, Tenant};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::AppState;
use crate::backend::blob_path;
use crate::conditional::{Conditions, Precondition, RangeOutcome, http_date};
use crate::names::{check_bucket, check_key};
use crate::presign;
use crate::store::{NewObject, Quota, Reserved, Store, StoreError, Usage};

pub fn routes() -> tansu_shared::routes::Routes<AppState> {
    tansu_shared::routes::Routes::new()
        .route("/api/buckets", get(list_buckets))
        .route(
            "/api/buckets/{bucket}",
            put(create_bucket)
                .get(get_bucket)
                .patch(update_bucket)
                .delete(delete_bucket),
        )
        .route("/api/buckets/{bucket}/objects", get(list_objects))
        .route(
            "/api/buckets/{bucket}/objects/{*key}",
            put(put_object)
                .get(get_object)
                .head(head_object)
                .delete(delete_object),
        )
        .route("/api/buckets/{bucket}/presign", post(presign_url))
        .route("/api/usage", get(usage))
        .merge(crate::multipart::routes())
        .merge(crate::admin::routes())
}

// ---- errors ----

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound => {
                Problem::new(StatusCode::NOT_FOUND, "no-such-key", "No such object")
            }
            StoreError::NoSuchBucket => {
                Problem::new(StatusCode::NOT_FOUND, "no-such-bucket", "No such bucket")
            }
            StoreError::AlreadyExists => Problem::new(
                StatusCode::CONFLICT,
                "bucket-exists",
                "Bucket already exists",
            ),
            StoreError::NotEmpty => {
                Problem::new(StatusCode::CONFLICT, "bucket-not-empty", "Bucket not empty")
            }
            StoreError::PreconditionFailed => precondition_failed(),
            StoreError::QuotaExceeded => quota_exceeded(),
            StoreError::Db(e) => Problem::internal(&e),
        }
    }
}

pub(crate) fn precondition_failed() -> Problem {
    Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition-failed",
        "Precondition failed",
    )
}

pub(crate) fn quota_exceeded() -> Problem {
    Problem::new(
        StatusCode::INSUFFICIENT_STORAGE,
        "quota-exceeded",
        "Storage quota exceeded",
    )
}

fn auth(e: AuthError) -> Problem {
    e.to_problem()
}

pub(crate) type ApiResult<T> = Result<T, Problem>;

/// Path parameters whose rejection is a problem+json 400.
pub(crate) struct P<T>(pub T);

impl<T> FromRequestParts<AppState> for P<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

pub(crate) fn valid_bucket(bucket: &str) -> ApiResult<()> {
    check_bucket(bucket).map_err(|why| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-bucket-name",
            "Invalid bucket name",
        )
        .with_detail(why)
    })
}

pub(crate) fn valid_key(key: &str) -> ApiResult<()> {
    check_key(key).map_err(|why| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-key", "Invalid object key").with_detail(why)
    })
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned + Default>(
    body: Body,
) -> ApiResult<T> {
    // Enough for a multipart completion listing 10,000 parts.
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|_| Problem::payload_too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| Problem::bad_request(format!("invalid JSON: {e}")))
}

// ---- access: bearer token or presigned URL ----

/// The tenant a request acts for, proven by a bearer token with the scopes `S`, or by a valid
/// presigned URL for this method and object.
struct Access<S> {
    tenant: Uuid,
    presigned: bool,
    _scope: PhantomData<S>,
}

impl<S: ScopeSet> FromRequestParts<AppState> for Access<S> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k.starts_with("X-Tansu-"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if !params.contains_key(presign::Q_SIGNATURE) {
            RequireScope::<S>::from_request_parts(parts, state)
                .await
                .map_err(auth)?;
            let tenant = Tenant::from_request_parts(parts, state)
                .await
                .map_err(auth)?;
            return Ok(Access {
                tenant: tenant.id,
                presigned: false,
                _scope: PhantomData,
            });
        }
        let P((bucket, key)) = P::<(String, String)>::from_request_parts(parts, state).await?;
        let tenant =
            verify_presigned(state, &parts.method, &parts.headers, &params, &bucket, &key).await?;
        Ok(Access {
            tenant,
            presigned: true,
            _scope: PhantomData,
        })
    }
}

fn bad_presign(detail: &'static str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "invalid-presigned-url",
        "Invalid presigned URL",
    )
    .with_detail(detail)
}

/// The method a presigned URL is minted for; HEAD is allowed wherever GET is.
fn presign_method(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "GET",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "",
    }
}

async fn verify_presigned(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    bucket: &str,
    key: &str,
) -> ApiResult<Uuid> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
    let tenant =
        Uuid::parse_str(get(presign::Q_TENANT)).map_err(|_| bad_presign("malformed tenant"))?;
    // Behind the gateway the request's tenant is known: a URL never works for another one.
    let mut header_tenants = headers.get_all(tansu_shared::TENANT_HEADER).iter();
    match (header_tenants.next(), header_tenants.next()) {
        (None, _) => {}
        (Some(h), None)
            if h.to_str().ok().and_then(|s| Uuid::parse_str(s.trim()).ok()) == Some(tenant) => {}
        _ => return Err(auth(AuthError::TenantMismatch)),
    }
    let signed_method = get(presign::Q_METHOD);
    if signed_method.is_empty() || signed_method != presign_method(method) {
        return Err(bad_presign("the URL is not valid for this method"));
    }
    let expires: i64 = get(presign::Q_EXPIRES)
        .parse()
        .map_err(|_| bad_presign("malformed expiry"))?;
    let now = crate::store::now_ms() / 1000;
    if expires <= now {
        return Err(bad_presign("the URL has expired"));
    }
    if expires > now + state.config.max_presign_secs as i64 {
        return Err(bad_presign("the URL's expiry is too far in the future"));
    }
    let secret = state
        .presign_keys
        .existing_key(&state.store, tenant)
        .await
        .map_err(Problem::from)?
        .ok_or_else(|| bad_presign("the signature does not match"))?;
    if !presign::verify(
        &secret,
        signed_method,
        tenant,
        bucket,
        key,
        expires,
        get(presign::Q_SIGNATURE),
    ) {
        return Err(bad_presign("the signature does not match"));
    }
    // A URL outlives the token that minted it, and through the gateway's shared path it names
    // no tenant the gateway could check: the tenant must still be active now. Asked only for
    // genuine URLs, so an anonymous caller cannot make the service look tenants up.
    if let Some(directory) = &state.directory {
        directory.require_active(tenant).await?;
    }
    Ok(tenant)
}

// ---- buckets ----

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketSettings {
    /// Largest object this bucket accepts (the service-wide limit applies too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_object_bytes: Option<u64>,
    /// Content types accepted on upload (`type/subtype`, or `type/*`); empty: any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_content_types: Vec<String>,
}

impl BucketSettings {
    pub(crate) fn allows(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        self.allowed_content_types.is_empty()
            || self.allowed_content_types.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                match a.strip_suffix("/*") {
                    Some(ty) => essence.split('/').next() == Some(ty),
                    None => a == essence,
                }
            })
    }
}

#[derive(Serialize)]
struct BucketView {
    name: String,
    created_at: String,
    settings: BucketSettings,
}

fn bucket_view(row: crate::store::BucketRow) -> BucketView {
    BucketView {
        settings: serde_json::from_str(&row.settings).unwrap_or_default(),
        created_at: rfc3339(row.created_at),
        name: row.name,
    }
}

fn rfc3339(ms: i64) -> String {
    // HTTP dates are what the headers carry; JSON carries RFC 3339 (seconds, UTC).
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

async fn list_buckets(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
) -> ApiResult<Response> {
    let rows = st.store.list_buckets(tenant.id).await?;
    let buckets: Vec<BucketView> = rows.into_iter().map(bucket_view).collect();
    Ok(axum::Json(serde_json::json!({ "buckets": buckets })).into_response())
}

async fn create_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let settings: BucketSettings = read_json(body).await?;
    let text = serde_json::to_string(&settings).map_err(|e| Problem::internal(&e))?;
    st.store.create_bucket(tenant.id, &bucket, &text).await?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok((StatusCode::CREATED, axum::Json(bucket_view(row))).into_response())
}

async fn get_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
    P(bucket): P<String>,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok(axum::Json(bucket_view(row)).into_response())
}

async fn update_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let settings: BucketSettings = read_json(body).await?;
    let text = serde_json::to_string(&settings).map_err(|e| Problem::internal(&e))?;
    st.store.update_bucket(tenant.id, &bucket, &text).await?;
    let row = st.store.get_bucket(tenant.id, &bucket).await?;
    Ok(axum::Json(bucket_view(row)).into_response())
}

async fn delete_bucket(
    State(st): State<AppState>,
    _: RequireScope<StorageWrite>,
    tenant: Tenant,
    P(bucket): P<String>,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    st.store.delete_bucket(tenant.id, &bucket).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- listing ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    prefix: String,
    delimiter: Option<String>,
    #[serde(rename = "max-keys")]
    max_keys: Option<usize>,
    #[serde(rename = "continuation-token")]
    continuation_token: Option<String>,
}

#[derive(Serialize)]
struct ObjectView {
    key: String,
    size: i64,
    etag: String,
    content_type: String,
    last_modified: String,
}

async fn list_objects(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
    P(bucket): P<String>,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let q: ListQuery = serde_urlencoded_query(uri.query().unwrap_or(""))?;
    let control = |s: &str| s.chars().any(char::is_control);
    if q.prefix.len() > crate::names::MAX_KEY_BYTES || control(&q.prefix) {
        return Err(Problem::bad_request("invalid prefix"));
    }
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    if delimiter
        .as_ref()
        .is_some_and(|d| d.len() > 16 || control(d))
    {
        return Err(Problem::bad_request("invalid delimiter"));
    }
    let max = q.max_keys.unwrap_or(1000).clamp(1, 1000);
    let after = match q.continuation_token.filter(|t| !t.is_empty()) {
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(&t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|t| t.len() <= 2 * crate::names::MAX_KEY_BYTES && !control(t))
                .ok_or_else(|| Problem::bad_request("invalid continuation-token"))?,
        ),
        None => None,
    };
    st.store.get_bucket(tenant.id, &bucket).await?;
    let listing = st
        .store
        .list_objects(
            tenant.id,
            &bucket,
            &q.prefix,
            delimiter.as_deref(),
            after.as_deref(),
            max,
        )
        .await?;
    let objects: Vec<ObjectView> = listing
        .objects
        .into_iter()
        .map(|o| ObjectView {
            last_modified: rfc3339(o.last_modified),
            key: o.object_key,
            size: o.size,
            etag: o.etag,
            content_type: o.content_type,
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "bucket": bucket,
        "prefix": q.prefix,
        "delimiter": delimiter,
        "objects": objects,
        "common_prefixes": listing.common_prefixes,
        "is_truncated": listing.next_after.is_some(),
        "next_continuation_token": listing.next_after.map(|a| URL_SAFE_NO_PAD.encode(a)),
    }))
    .into_response())
}

fn serde_urlencoded_query<T: serde::de::DeserializeOwned>(query: &str) -> ApiResult<T> {
    let pairs: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| {
                let v = v.into_owned();
                let value = match k.as_ref() {
                    "max-keys" => v
                        .parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::String(v)),
                    _ => serde_json::Value::String(v),
                };
                (k.into_owned(), value)
            })
            .collect();
    serde_json::from_value(serde_json::Value::Object(pairs))
        .map_err(|e| Problem::bad_request(format!("invalid query: {e}")))
}

// ---- objects: upload ----

const META_PREFIX: &str = "x-tansu-meta-";
const COPY_SOURCE: &str = "x-tansu-copy-source";
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

async fn put_object(
    State(st): State<AppState>,
    access: Access<StorageWrite>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    valid_key(&key)?;
    let tenant = access.tenant;
    let conditions = Conditions::from_headers(&headers);
    let bucket_row = st.store.get_bucket(tenant, &bucket).await?;
    let settings: BucketSettings = serde_json::from_str(&bucket_row.settings).unwrap_or_default();
    let current = match st.store.get_object(tenant, &bucket, &key).await {
        Ok(row) => Some(row),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    // Fail early on a precondition that already fails (it is checked again atomically at commit).
    if conditions.evaluate(current.as_ref().map(|r| r.validators()).as_ref(), false)
        != Precondition::Proceed
    {
        return Err(precondition_failed());
    }
    // An overwrite needs room only for what it adds. The reservation only keeps concurrent
    // uploads from overbooking; the commit re-checks the quota atomically with the real delta.
    let (old_size, old_objects) = current
        .as_ref()
        .map_or((0, 0), |r| (r.size.max(0) as u64, 1));
    if let Some(source) = headers.get(COPY_SOURCE) {
        if access.presigned {
            return Err(Problem::forbidden(
                "a presigned URL cannot copy another object",
            ));
        }
        return copy_object(&st, tenant, &bucket, &key, source, conditions).await;
    }
    let h = upload_headers(&headers)?;
    if !settings.allows(&h.content_type) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type-not-allowed",
            "Content type not allowed in this bucket",
        ));
    }
    let limit = settings
        .max_object_bytes
        .map_or(st.config.max_object_bytes, |b| {
            b.min(st.config.max_object_bytes)
        });
    if h.content_length.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut reservation = reserve(
        &st,
        tenant,
        h.content_length.unwrap_or(0).saturating_sub(old_size),
        1 - old_objects,
    )
    .await?;
    // Without a length, stop streaming once the quota's remaining room is used up.
    let room = stream_room(&st, tenant, reservation.reserved.bytes + old_size as i64).await?;
    let stream_limit = limit.min(room);

    let (tmp, size, digest) = stage(&st, body, &h, stream_limit, limit).await?;
    let (blob_id, mut blob) = intend_blob(&st, tenant).await?;
    st.backend
        .place(tmp, &blob_path(tenant, &blob_id.to_string()))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let new = NewObject {
        blob_id,
        size: size as i64,
        etag: format!("\"{}\"", hex(&digest)),
        content_type: h.content_type,
        metadata: serde_json::to_string(&h.metadata).map_err(|e| Problem::internal(&e))?,
    };
    let old = st
        .store
        .commit_object(
            tenant,
            &bucket,
            &key,
            &new,
            reservation.reserved,
            st.quota(),
            &|cur| conditions.evaluate(cur, false),
        )
        .await?;
    reservation.armed = false;
    blob.armed = false;
    let created = old.is_none();
    if let Some(old) = old {
        discard_blob(&st, &tenant.to_string(), &old).await;
    }
    stored_response(created, &new)
}

pub(crate) fn stored_response(created: bool, new: &NewObject) -> ApiResult<Response> {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut resp = (
        status,
        axum::Json(serde_json::json!({ "size": new.size, "etag": new.etag })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&new.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    Ok(resp)
}

/// Percent-decodes a copy source (`<bucket>/<key>`, optionally with a leading '/').
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn copy_object(
    st: &AppState,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    source: &HeaderValue,
    conditions: Conditions,
) -> ApiResult<Response> {
    let source = source
        .to_str()
        .ok()
        .and_then(percent_decode)
        .ok_or_else(|| Problem::bad_request("invalid x-tansu-copy-source"))?;
    let source = source.strip_prefix('/').unwrap_or(&source);
    let (src_bucket, src_key) = source
        .split_once('/')
        .ok_or_else(|| Problem::bad_request("x-tansu-copy-source is <bucket>/<key>"))?;
    valid_bucket(src_bucket)?;
    valid_key(src_key)?;
    // Only ever within the caller's own tenant.
    let src = st.store.get_object(tenant, src_bucket, src_key).await?;
    if src.size as u64 > st.config.max_object_bytes {
        return Err(too_large(st.config.max_object_bytes));
    }
    let mut reservation = reserve(st, tenant, src.size as u64, 1).await?;
    let (blob_id, mut blob) = intend_blob(st, tenant).await?;
    match st
        .backend
        .copy(
            &blob_path(tenant, &src.blob_id),
            &blob_path(tenant, &blob_id.to_string()),
        )
        .await
    {
        Ok(()) => {}
        Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound.into()),
        Err(e) => return Err(Problem::internal(&e)),
    }
    let new = NewObject {
        blob_id,
        size: src.size,
        etag: src.etag,
        content_type: src.content_type,
        metadata: src.metadata,
    };
    let old = st
        .store
        .commit_object(
            tenant,
            bucket,
            key,
            &new,
            reservation.reserved,
            st.quota(),
            &|cur| conditions.evaluate(cur, false),
        )
        .await?;
    reservation.armed = false;
    blob.armed = false;
    let created = old.is_none();
    if let Some(old) = old {
        discard_blob(st, &tenant.to_string(), &old).await;
    }
    stored_response(created, &new)
}

// ---- objects: download, metadata, delete ----

async fn get_object(
    State(st): State<AppState>,
    access: Access<StorageRead>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read_object(&st, access.tenant, &bucket, &key, &headers, false).await
}

async fn head_object(
    State(st): State<AppState>,
    access: Access<StorageRead>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    read_object(&st, access.tenant, &bucket, &key, &headers, true).await
}

fn object_headers(resp: &mut Response, row: &crate::store::ObjectRow) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&row.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(row.last_modified)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

async fn read_object(
    st: &AppState,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult<Response> {
    valid_bucket(bucket)?;
    valid_key(key)?;
    let row = st.store.get_object(tenant, bucket, key).await?;
    let validators = row.validators();
    match Conditions::from_headers(headers).evaluate(Some(&validators), true) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            let mut resp = StatusCode::NOT_MODIFIED.into_response();
            object_headers(&mut resp, &row);
            crate::content::apply(
                resp.headers_mut(),
                &row.content_type,
                HeaderValue::from_str(&row.content_type).is_ok(),
                key,
                &st.config.inline_content_types,
            );
            return Ok(resp);
        }
        Precondition::Failed => return Err(precondition_failed()),
    }
    let len = row.size as u64;
    let outcome = if head {
        RangeOutcome::Full
    } else {
        crate::conditional::range(headers, len, &validators)
    };
    let (status, range) = match outcome {
        RangeOutcome::Full => (StatusCode::OK, None),
        RangeOutcome::Partial(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        RangeOutcome::Unsatisfiable => {
            let mut p = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range-not-satisfiable",
                "Range not satisfiable",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                p = p.with_header(header::CONTENT_RANGE, v);
            }
            return Err(p);
        }
    };
    let body = if head || len == 0 {
        Body::empty()
    } else {
        let path = blob_path(tenant, &row.blob_id);
        match st.backend.get(&path, range.clone()).await {
            Ok(stream) => Body::from_stream(stream),
            // Replaced or deleted between the lookup and the read.
            Err(object_store::Error::NotFound { .. }) => return Err(StoreError::NotFound.into()),
            Err(e) => return Err(Problem::internal(&e)),
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    object_headers(&mut resp, &row);
    let content_length = range.as_ref().map_or(len, |r| r.end - r.start);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    if let Some(r) = &range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    let content_type_sent = match HeaderValue::from_str(&row.content_type) {
        Ok(v) => {
            h.insert(header::CONTENT_TYPE, v);
            true
        }
        Err(_) => false,
    };
    crate::content::apply(
        h,
        &row.content_type,
        content_type_sent,
        key,
        &st.config.inline_content_types,
    );
    for (k, v) in row.user_metadata() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("{META_PREFIX}{k}").as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(name, value);
        }
    }
    Ok(resp)
}

async fn delete_object(
    State(st): State<AppState>,
    access: Access<StorageWrite>,
    P((bucket, key)): P<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    valid_key(&key)?;
    let conditions = Conditions::from_headers(&headers);
    let blob = st
        .store
        .delete_object(access.tenant, &bucket, &key, &|cur| {
            conditions.evaluate(cur, false)
        })
        .await?;
    discard_blob(&st, &access.tenant.to_string(), &blob).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- presigned URLs and usage ----

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct PresignRequest {
    key: String,
    method: String,
    expires_in: Option<u64>,
}

/// Percent-encodes a key for a URL path, keeping '/' separators.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn presign_url(
    State(st): State<AppState>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let req: PresignRequest = read_json(body).await?;
    valid_key(&req.key)?;
    let method = req.method.to_ascii_uppercase();
    let scope = match method.as_str() {
        "GET" | "HEAD" => "storage.read",
        "PUT" | "DELETE" => "storage.write",
        _ => return Err(Problem::bad_request("method must be GET, PUT or DELETE")),
    };
    // Minting needs the scope the URL grants.
    if !tenant.principal.has_scope(scope) {
        return Err(auth(AuthError::InsufficientScope(scope.to_owned())));
    }
    let method = if method == "HEAD" {
        "GET".into()
    } else {
        method
    };
    let expires_in = req.expires_in.unwrap_or(900);
    if expires_in == 0 || expires_in > st.config.max_presign_secs {
        return Err(Problem::bad_request(format!(
            "expires_in must be between 1 and {} seconds",
            st.config.max_presign_secs
        )));
    }
    st.store.get_bucket(tenant.id, &bucket).await?;
    let expires = crate::store::now_ms() / 1000 + expires_in as i64;
    let secret = st.presign_keys.key(&st.store, tenant.id).await?;
    let sig = presign::sign(&secret, &method, tenant.id, &bucket, &req.key, expires);
    let path = format!(
        "/api/buckets/{bucket}/objects/{}?{}={}&{}={method}&{}={expires}&{}={sig}",
        encode_key(&req.key),
        presign::Q_TENANT,
        tenant.id,
        presign::Q_METHOD,
        presign::Q_EXPIRES,
        presign::Q_SIGNATURE,
    );
    // Storage on an origin of its own: the URL points there, not at the platform's origin.
    let base = if st.config.public_origin.is_empty() {
        &st.config.public_prefix
    } else {
        &st.config.public_origin
    };
    Ok(axum::Json(serde_json::json!({
        "method": method,
        "url": format!("{}{path}", base.trim_end_matches('/')),
        "path": path,
        "expires_at": rfc3339(expires * 1000),
    }))
    .into_response())
}

async fn usage(
    State(st): State<AppState>,
    _: RequireScope<StorageRead>,
    tenant: Tenant,
) -> ApiResult<Response> {
    let u = st.store.usage(tenant.id).await?;
    Ok(axum::Json(usage_view(tenant.id, &u, st.quota())).into_response())
}

/// A tenant's usage and the quota in force (`quota_override`: what an administrator set,
/// `null` for a limit that is the default).
pub(crate) fn usage_view(tenant: Uuid, u: &Usage, default: Quota) -> serde_json::Value {
    let q = u.quota(default);
    serde_json::json!({
        "tenant": tenant,
        "bytes": u.bytes,
        "objects": u.objects,
        "reserved_bytes": u.reserved_bytes,
        "reserved_objects": u.reserved_objects,
        "quota_bytes": q.bytes,
        "quota_objects": q.objects,
        "quota_override": { "bytes": u.quota_bytes, "objects": u.quota_objects },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_encoding() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(encode_key("a b/ü?.txt"), "a%20b/%C3%BC%3F.txt");
        assert_eq!(percent_decode("a%20b/%C3%BC").as_deref(), Some("a b/ü"));
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn content_type_rules() {
        let s = BucketSettings {
            max_object_bytes: None,
            allowed_content_types: vec!["image/*".into(), "text/plain".into()],
        };
        assert!(s.allows("image/png"));
        assert!(s.allows("text/plain; charset=utf-8"));
        assert!(!s.allows("text/html"));
    }
}
