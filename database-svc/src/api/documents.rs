//! Documents: create, bulk insert, read (with `If-None-Match`), replace, merge patch, delete
//! (with `If-Match` / `If-None-Match`), list and query.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tansu_shared::Problem;
use tansu_shared::auth::Tenant;
use tansu_shared::auth::scopes::{DbRead, DbWrite};
use uuid::Uuid;

use super::access::{At, CollPath, DocPath};
use super::store;
use crate::AppState;
use crate::body::{JsonBody, QueryParams, check_document, merge_patch, project, unprocessable};
use crate::ident;
use crate::query::{DocQuery, QueryRequest};
use crate::schema;
use crate::store::{Document, Precondition, Store, StoreError};

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

pub(super) async fn create_document(
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BulkItem {
    #[serde(default)]
    id: Option<String>,
    data: Value,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Bulk {
    documents: Vec<BulkItem>,
}

pub(super) async fn bulk_insert(
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

pub(super) async fn get_document(
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
pub(super) async fn put_document(
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
pub(super) async fn patch_document(
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

pub(super) async fn delete_document(
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
pub(super) struct ListParams {
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

pub(super) async fn list_documents(
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

pub(super) async fn query_documents(
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
