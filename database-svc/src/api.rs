//! HTTP handlers. Each states what it requires in its signature: `Scoped<DbRead>` /
//! `Scoped<DbWrite>` (token `tid` == `X-Tansu-Tenant`, the scope held) for the document API,
//! `At<scope, path>` when the path names a collection, document or index (validated first),
//! `Platform` (a platform token with `db.provision`; no tenant header) for provisioning.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::{DbProvision, DbRead, DbWrite};
use tansu_shared::auth::{RequireScope, ScopeSet, Tenant};
use uuid::Uuid;

use tansu_shared::routes::Routes;

use crate::AppState;
use crate::body::{
    JsonBody, PathParams, QueryParams, check_document, merge_patch, project, unprocessable,
};
use crate::ident::{self, FieldPath};
use crate::query::{DocQuery, QueryRequest};
use crate::schema;
use crate::store::{Document, Precondition, Store, StoreError};
use crate::tenants::TenantError;

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route(
            "/provision/{tenant}",
            put(provision).get(provision_status).delete(deprovision),
        )
        .route("/provision/purge", post(purge))
        .route("/provision/compact", post(compact))
        .route(
            "/provision/{tenant}/credential/rotate",
            post(rotate_credential),
        )
        .route(
            "/api/collections",
            get(list_collections).post(create_collection),
        )
        .route(
            "/api/collections/{c}",
            get(get_collection).delete(delete_collection),
        )
        .route(
            "/api/collections/{c}/indexes",
            get(list_indexes).post(create_index),
        )
        .route(
            "/api/collections/{c}/indexes/{name}",
            axum::routing::delete(drop_index),
        )
        .route(
            "/api/collections/{c}/documents",
            get(list_documents).post(create_document),
        )
        .route("/api/collections/{c}/bulk", post(bulk_insert))
        .route("/api/collections/{c}/query", post(query_documents))
        .route(
            "/api/collections/{c}/documents/{id}",
            get(get_document)
                .put(put_document)
                .patch(patch_document)
                .delete(delete_document),
        )
        .route("/api/changes", get(changes))
        .route("/api/changes/stream", get(changes_stream))
}

impl From<TenantError> for Problem {
    fn from(e: TenantError) -> Problem {
        match e {
            TenantError::NotProvisioned => Problem::new(
                StatusCode::NOT_FOUND,
                "tenant-not-provisioned",
                "Tenant not provisioned",
            )
            .with_detail("this tenant has no database; provision it first"),
            e => Problem::internal(&e),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound(what) => {
                Problem::not_found().with_detail(format!("{what} not found"))
            }
            StoreError::Conflict(detail) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail)
            }
            StoreError::PreconditionFailed => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            )
            .with_detail(
                "the document's current version does not match the request's precondition",
            ),
            StoreError::Invalid(detail) => {
                unprocessable("invalid-document", "Invalid document", detail)
            }
            StoreError::Rejected(p) => *p,
            StoreError::Gone { floor } => Problem::new(
                StatusCode::GONE,
                "changes-compacted",
                "Changes no longer available",
            )
            .with_detail(
                "changes after this position were removed by the feed's retention; \
                 re-read the collections, then follow from the current position",
            )
            .with_extension("oldest_since", floor),
            // The tenant was deprovisioned while this request ran.
            StoreError::Db(sqlx::Error::PoolClosed) => {
                Problem::service_unavailable("the tenant's database was closed; retry")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            StoreError::Db(sqlx::Error::Database(e))
                if is_client_data_error(e.code().as_deref()) =>
            {
                unprocessable(
                    "unstorable-value",
                    "Value cannot be stored",
                    "a value exceeds what the database can store or index (for example a very long string in an indexed field)",
                )
            }
            StoreError::Db(sqlx::Error::Database(e)) if is_transient(e.code().as_deref()) => {
                tracing::warn!(error = %e, "transient database contention");
                Problem::service_unavailable("the database is busy; retry")
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            StoreError::Db(e) => Problem::internal(&e),
        }
    }
}

/// PostgreSQL errors caused by the data a client sent rather than by the service: program
/// limit exceeded (an index row too large), numeric out of range, untranslatable characters.
fn is_client_data_error(code: Option<&str>) -> bool {
    matches!(code, Some("54000" | "22003" | "22P05" | "22021"))
}

/// Contention that a retry resolves: SQLite busy/locked (after `busy_timeout`), PostgreSQL
/// deadlock, serialization failure, lock not available.
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("5" | "6" | "261" | "262" | "517" | "40P01" | "40001" | "55P03")
    )
}

async fn store(state: &AppState, tenant: &Tenant) -> Result<Store, Problem> {
    Ok(state.tenants.store(tenant.id).await?)
}

/// The caller's tenant (token `tid` == `X-Tansu-Tenant`) with the scope `T` held.
struct Scoped<T>(Tenant, PhantomData<T>);

impl<T: ScopeSet> FromRequestParts<AppState> for Scoped<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let tenant = Tenant::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        RequireScope::<T>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Scoped(tenant, PhantomData))
    }
}

/// A document-API request's target: the caller's tenant (token `tid` == `X-Tansu-Tenant`),
/// the scope `T` held, and the path's names `P` validated — checked in that order, as
/// separate extractors would.
struct At<T, P>(Tenant, P, PhantomData<T>);

/// Path parameters that must be valid names before anything is looked up.
trait CheckedPath: DeserializeOwned + Send {
    fn check(&self) -> Result<(), Problem>;
}

/// `…/collections/{c}`
#[derive(Deserialize)]
struct CollPath {
    c: String,
}

/// `…/collections/{c}/documents/{id}`
#[derive(Deserialize)]
struct DocPath {
    c: String,
    id: String,
}

/// `…/collections/{c}/indexes/{name}`
#[derive(Deserialize)]
struct IndexPath {
    c: String,
    name: String,
}

impl CheckedPath for CollPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c)
    }
}

impl CheckedPath for DocPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c).and_then(|()| ident::doc_id(&self.id))
    }
}

impl CheckedPath for IndexPath {
    fn check(&self) -> Result<(), Problem> {
        ident::name("collection", &self.c).and_then(|()| ident::name("index", &self.name))
    }
}

impl<T: ScopeSet, P: CheckedPath> FromRequestParts<AppState> for At<T, P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Scoped(tenant, _) = Scoped::<T>::from_request_parts(parts, s).await?;
        let PathParams(path) = PathParams::<P>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        path.check().map_err(IntoResponse::into_response)?;
        Ok(At(tenant, path, PhantomData))
    }
}

/// A provisioning caller: a token with `db.provision` that is a platform token. Provisioning
/// is a platform operation: a token of some tenant — even one that carries `db.provision` by
/// mistake — must not create or delete any tenant's database, its own included. Only tokens
/// without `tid` (or of the configured platform tenant) may.
struct Platform;

impl FromRequestParts<AppState> for Platform {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let scope = RequireScope::<DbProvision>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        match scope.0.tid.as_deref() {
            None => Ok(Platform),
            Some(tid)
                if !s.config.platform_tenant.is_empty() && tid == s.config.platform_tenant =>
            {
                Ok(Platform)
            }
            Some(_) => Err(Problem::forbidden(
                "provisioning requires a platform token, not a tenant's",
            )
            .into_response()),
        }
    }
}

/// A [`Platform`] caller and the tenant of the path (`/provision/{tenant}…`), a UUID.
struct PlatformTenant(Uuid);

impl FromRequestParts<AppState> for PlatformTenant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Platform::from_request_parts(parts, s).await?;
        let PathParams(tenant) = PathParams::<String>::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        Uuid::parse_str(&tenant)
            .map(PlatformTenant)
            .map_err(|_| Problem::bad_request("the tenant must be a UUID").into_response())
    }
}

// ---- provisioning -------------------------------------------------------------------------

async fn provision(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    let (d, created) = s.tenants.provision(tenant).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(d)).into_response())
}

/// A new password for the tenant's database role (PostgreSQL); the answer is the only place
/// it appears. SQLite: the (secret-free) document-API credential.
async fn rotate_credential(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    let d = s.tenants.rotate_credential(tenant).await?;
    Ok(Json(d).into_response())
}

/// Applies the change-feed retention to every open tenant now (it also runs every
/// `purge_interval_secs`, and when a tenant's database is opened).
async fn compact(State(s): State<AppState>, _: Platform) -> Result<Response, Problem> {
    let removed = s.tenants.compact_open().await;
    Ok(Json(json!({ "removed": removed })).into_response())
}

async fn provision_status(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    match s.tenants.record(tenant).await? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(TenantError::NotProvisioned.into()),
    }
}

async fn deprovision(
    State(s): State<AppState>,
    PlatformTenant(tenant): PlatformTenant,
) -> Result<Response, Problem> {
    let d = s.tenants.deprovision(tenant).await?;
    Ok((StatusCode::ACCEPTED, Json(d)).into_response())
}

async fn purge(State(s): State<AppState>, _: Platform) -> Result<Response, Problem> {
    let n = s.tenants.purge_expired().await?;
    Ok(Json(json!({ "purged": n })).into_response())
}

// ---- collections --------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCollection {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
}

async fn list_collections(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
) -> Result<Response, Problem> {
    let list = store(&s, &tenant).await?.list_collections().await?;
    Ok(Json(json!({ "collections": list })).into_response())
}

async fn create_collection(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbWrite>,
    JsonBody(body): JsonBody<NewCollection>,
) -> Result<Response, Problem> {
    ident::name("collection", &body.name)?;
    if let Some(schema) = &body.schema {
        schema::check_schema(schema)?;
    }
    let info = store(&s, &tenant)
        .await?
        .create_collection(&body.name, body.schema)
        .await?;
    s.tenants.notify(tenant.id);
    let location = format!("/api/collections/{}", info.name);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(info),
    )
        .into_response())
}

async fn get_collection(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbRead, CollPath>,
) -> Result<Response, Problem> {
    let st = store(&s, &tenant).await?;
    let info = st.get_collection(&c).await?;
    let indexes = st.list_indexes(&c).await?;
    let mut v = serde_json::to_value(info).map_err(|e| Problem::internal(&e))?;
    v["indexes"] = serde_json::to_value(indexes).map_err(|e| Problem::internal(&e))?;
    Ok(Json(v).into_response())
}

async fn delete_collection(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbWrite, CollPath>,
) -> Result<Response, Problem> {
    store(&s, &tenant).await?.delete_collection(&c).await?;
    s.tenants.notify(tenant.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- indexes ------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIndex {
    name: String,
    field: String,
}

async fn list_indexes(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbRead, CollPath>,
) -> Result<Response, Problem> {
    let list = store(&s, &tenant).await?.list_indexes(&c).await?;
    Ok(Json(json!({ "indexes": list })).into_response())
}

async fn create_index(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbWrite, CollPath>,
    JsonBody(body): JsonBody<NewIndex>,
) -> Result<Response, Problem> {
    ident::name("index", &body.name)?;
    let field = FieldPath::parse(&body.field)?;
    let info = store(&s, &tenant)
        .await?
        .create_index(&c, &body.name, &field)
        .await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn drop_index(
    State(s): State<AppState>,
    At(tenant, IndexPath { c, name }, _): At<DbWrite, IndexPath>,
) -> Result<Response, Problem> {
    store(&s, &tenant).await?.drop_index(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- documents ----------------------------------------------------------------------------

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn doc_response(status: StatusCode, doc: &Document) -> Response {
    (status, [(header::ETAG, etag(doc.version))], Json(doc)).into_response()
}

/// `If-Match` / `If-None-Match` for writes (RFC 9110 §13.1). `If-Match` takes `*` or a list
/// of strong entity tags; weak or malformed tags can never match strongly, so a list of only
/// those fails the precondition (412).
fn precondition(headers: &HeaderMap) -> Result<Precondition, Problem> {
    let failed = || Problem::from(StoreError::PreconditionFailed);
    let values: Vec<&str> = headers
        .get_all(header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().map_err(|_| failed()))
        .collect::<Result<_, _>>()?;
    if !values.is_empty() {
        let tags: Vec<&str> = values
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if tags.contains(&"*") {
            return Ok(Precondition::Exists);
        }
        let versions: Vec<i64> = tags
            .iter()
            .filter_map(|t| t.strip_prefix('"')?.strip_suffix('"')?.parse().ok())
            .take(64)
            .collect();
        if versions.is_empty() {
            return Err(failed());
        }
        return Ok(Precondition::Versions(versions));
    }
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        if v.to_str().ok().map(str::trim) == Some("*") {
            return Ok(Precondition::Absent);
        }
        return Err(Problem::bad_request(
            "If-None-Match on writes supports only *",
        ));
    }
    Ok(Precondition::None)
}

/// The collection's compiled schema (from the per-process cache), if it has one; 404 when the
/// collection does not exist.
async fn compiled_schema(
    s: &AppState,
    st: &Store,
    collection: &str,
) -> Result<Option<Arc<schema::CompiledSchema>>, Problem> {
    st.collection_schema(collection)
        .await?
        .map(|schema| s.schemas.get(&schema))
        .transpose()
}

async fn validate_doc(
    s: &AppState,
    st: &Store,
    collection: &str,
    data: &Value,
) -> Result<(), Problem> {
    check_document(data, s.config.max_document_bytes)?;
    if let Some(schema) = compiled_schema(s, st, collection).await? {
        schema.validate(data)?;
    }
    Ok(())
}

async fn create_document(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbWrite, CollPath>,
    JsonBody(data): JsonBody<Value>,
) -> Result<Response, Problem> {
    let st = store(&s, &tenant).await?;
    validate_doc(&s, &st, &c, &data).await?;
    let id = Uuid::now_v7().to_string();
    let mut docs = st.insert(&c, vec![(id, data)]).await?;
    s.tenants.notify(tenant.id);
    let doc = docs
        .pop()
        .ok_or_else(|| Problem::internal(&"insert returned nothing"))?;
    let mut resp = doc_response(StatusCode::CREATED, &doc);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/collections/{c}/documents/{}", doc.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkItem {
    #[serde(default)]
    id: Option<String>,
    data: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bulk {
    documents: Vec<BulkItem>,
}

async fn bulk_insert(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbWrite, CollPath>,
    JsonBody(body): JsonBody<Bulk>,
) -> Result<Response, Problem> {
    if body.documents.is_empty() || body.documents.len() > s.config.max_bulk {
        return Err(unprocessable(
            "invalid-body",
            "Invalid request body",
            format!("a bulk insert takes 1 to {} documents", s.config.max_bulk),
        ));
    }
    let st = store(&s, &tenant).await?;
    let schema = compiled_schema(&s, &st, &c).await?;
    let mut docs = Vec::with_capacity(body.documents.len());
    for (i, item) in body.documents.into_iter().enumerate() {
        let at = |p: Problem| p.with_extension("index", i);
        check_document(&item.data, s.config.max_document_bytes).map_err(at)?;
        if let Some(schema) = &schema {
            schema.validate(&item.data).map_err(at)?;
        }
        let id = match item.id {
            Some(id) => {
                ident::doc_id(&id).map_err(at)?;
                id
            }
            None => Uuid::now_v7().to_string(),
        };
        docs.push((id, item.data));
    }
    let inserted = st.insert(&c, docs).await?;
    s.tenants.notify(tenant.id);
    Ok((StatusCode::CREATED, Json(json!({ "documents": inserted }))).into_response())
}

async fn get_document(
    State(s): State<AppState>,
    At(tenant, DocPath { c, id }, _): At<DbRead, DocPath>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let doc = store(&s, &tenant).await?.get(&c, &id).await?;
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let tag = format!("\"{}\"", doc.version);
        if inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == tag || t.strip_prefix("W/") == Some(tag.as_str())
        }) {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag(doc.version))],
            )
                .into_response());
        }
    }
    Ok(doc_response(StatusCode::OK, &doc))
}

/// Replace (or create with a client-chosen id). `If-Match` to replace a known version only,
/// `If-None-Match: *` to create only.
async fn put_document(
    State(s): State<AppState>,
    At(tenant, DocPath { c, id }, _): At<DbWrite, DocPath>,
    headers: HeaderMap,
    JsonBody(data): JsonBody<Value>,
) -> Result<Response, Problem> {
    let pre = precondition(&headers)?;
    let st = store(&s, &tenant).await?;
    validate_doc(&s, &st, &c, &data).await?;
    let (doc, created) = st.write(&c, &id, pre, move |_| Ok(data)).await?;
    s.tenants.notify(tenant.id);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(doc_response(status, &doc))
}

/// JSON Merge Patch (RFC 7386). The result must still be a valid document.
async fn patch_document(
    State(s): State<AppState>,
    At(tenant, DocPath { c, id }, _): At<DbWrite, DocPath>,
    headers: HeaderMap,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Response, Problem> {
    let mut pre = precondition(&headers)?;
    if pre == Precondition::None {
        // A patch applies to an existing document only.
        pre = Precondition::Exists;
    }
    let st = store(&s, &tenant).await?;
    let schema = compiled_schema(&s, &st, &c).await?;
    let max = s.config.max_document_bytes;
    let result = st
        .write(&c, &id, pre.clone(), move |current| {
            let mut doc = current.cloned().unwrap_or(Value::Null);
            merge_patch(&mut doc, &patch);
            check_document(&doc, max).map_err(|p| StoreError::Rejected(Box::new(p)))?;
            if let Some(schema) = &schema {
                schema
                    .validate(&doc)
                    .map_err(|p| StoreError::Rejected(Box::new(p)))?;
            }
            Ok(doc)
        })
        .await;
    let (doc, _) = match result {
        // A patch on a missing document is a 404, unless the client asked for a version.
        Err(StoreError::PreconditionFailed)
            if pre == Precondition::Exists && !headers.contains_key(header::IF_MATCH) =>
        {
            return Err(StoreError::NotFound("document").into());
        }
        r => r?,
    };
    s.tenants.notify(tenant.id);
    Ok(doc_response(StatusCode::OK, &doc))
}

async fn delete_document(
    State(s): State<AppState>,
    At(tenant, DocPath { c, id }, _): At<DbWrite, DocPath>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let pre = precondition(&headers)?;
    store(&s, &tenant).await?.delete(&c, &id, pre).await?;
    s.tenants.notify(tenant.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
    /// Comma-separated; `-field` descending.
    sort: Option<String>,
    /// Comma-separated field paths to return.
    fields: Option<String>,
}

fn split(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

async fn list_documents(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbRead, CollPath>,
    QueryParams(p): QueryParams<ListParams>,
) -> Result<Response, Problem> {
    let fields = p.fields.is_some().then(|| split(p.fields.clone()));
    let req = QueryRequest {
        filter: Default::default(),
        sort: split(p.sort),
        fields,
        limit: p.limit,
        cursor: p.cursor,
    };
    run_query(&s, &tenant, &c, req).await
}

async fn query_documents(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbRead, CollPath>,
    JsonBody(req): JsonBody<QueryRequest>,
) -> Result<Response, Problem> {
    run_query(&s, &tenant, &c, req).await
}

async fn run_query(
    s: &AppState,
    tenant: &Tenant,
    c: &str,
    req: QueryRequest,
) -> Result<Response, Problem> {
    if req.filter.values().any(crate::body::has_nul) {
        return Err(unprocessable(
            "invalid-query",
            "Invalid query",
            "strings must not contain U+0000",
        ));
    }
    let q = DocQuery::parse(req, s.config.max_page.min(100), s.config.max_page)?;
    let (mut docs, more) = store(s, tenant).await?.query(c, &q).await?;
    let next = if more {
        docs.last().map(|d| q.next_cursor(&d.id, &d.data))
    } else {
        None
    };
    if let Some(fields) = &q.fields {
        for d in &mut docs {
            d.data = project(&d.data, fields);
        }
    }
    Ok(Json(json!({ "documents": docs, "next_cursor": next })).into_response())
}

// ---- change feed --------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ChangeParams {
    since: Option<i64>,
    limit: Option<i64>,
}

async fn changes(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
    QueryParams(p): QueryParams<ChangeParams>,
) -> Result<Response, Problem> {
    let since = p.since.unwrap_or(0);
    let max = i64::from(s.config.max_page);
    let limit = p.limit.unwrap_or(max);
    if since < 0 || !(1..=max).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "since must be >= 0 and limit between 1 and {max}"
        )));
    }
    let list = store(&s, &tenant).await?.changes(since, limit).await?;
    let next = list.last().map(|c| c.seq).unwrap_or(since);
    Ok(Json(json!({ "changes": list, "next_since": next })).into_response())
}

/// Server-sent events: every change after `since` (or `Last-Event-ID`), then new ones as
/// they commit. Each event's `id` is its sequence number, so a reconnecting client resumes
/// exactly where it stopped. The stream ends at the token's `exp` and when the tenant stops
/// being active ([`crate::stream`]).
async fn changes_stream(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
    QueryParams(p): QueryParams<ChangeParams>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = last_event.or(p.since).unwrap_or(0).max(0);
    if let Some(directory) = &s.directory {
        directory.require_active(tenant.id).await?;
    }
    // Read before the tenant's store is: a deprovision after this point is noticed.
    let deprovisions = s.tenants.deprovisions();
    let st = store(&s, &tenant).await?;
    // A position behind the retained range is refused before the stream starts.
    st.changes(since, 1).await?;
    let stream = crate::stream::Follower {
        store: st,
        tenants: s.tenants.clone(),
        tenant: tenant.id,
        directory: s.directory.clone(),
        notify: s.tenants.notifier(tenant.id),
        closing: s.tenants.closing(),
        since,
        batch: i64::from(s.config.max_page),
        expires_ms: tenant.principal.exp.saturating_mul(1000),
        deprovisions,
        pending: Default::default(),
        ended: false,
    }
    .into_events();
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
