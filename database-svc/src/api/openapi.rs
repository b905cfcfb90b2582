//! The document API's OpenAPI 3.1 document (`GET /openapi.json`; through the gateway
//! `/db/openapi.json`), and when `api_docs` is on (the dev stack) its page (`GET /openapi`).
//! One line per operation of [`super::routes`]; `tests/openapi.rs` compares them with the
//! router both ways. Scopes are the handlers' extractors' (`Scoped<DbRead>`, `At<DbWrite, …>`,
//! `Platform`).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use tansu_shared::openapi::{Api, Op};

use super::collections::{NewCollection, NewIndex};
use super::documents::Bulk;
use crate::AppState;
use crate::query::QueryRequest;

const READ: &[&str] = &["db.read"];
const WRITE: &[&str] = &["db.write"];
const PROVISION: &[&str] = &["db.provision"];

const SCOPES: &[(&str, &str)] = &[
    (
        "db.read",
        "Read the tenant's collections, documents and changes.",
    ),
    (
        "db.write",
        "Change the tenant's collections, indexes and documents.",
    ),
    (
        "db.provision",
        "Provision tenants' databases (the platform's services).",
    ),
];

/// Every operation (a table: one operation per line or two).
#[rustfmt::skip]
pub fn api() -> Api {
    let if_match = "`\"<version>\"`: only if the document is still at this version (else 412).";
    Api::new(
        "Tansu database API",
        "One database per tenant: collections (with an optional JSON Schema), indexes, \
         documents, queries and the change feed. The tenant is the token's `tid`, which must \
         equal the tenant the gateway resolved.",
        SCOPES,
    )
    .op(Op::put("/provision/{tenant}", "Provision a tenant's database").tag("provisioning")
        .scopes(PROVISION).any_json(200).any_json(201))
    .op(Op::get("/provision/{tenant}", "A tenant's database").tag("provisioning")
        .scopes(PROVISION).any_json(200))
    .op(Op::delete("/provision/{tenant}", "Deprovision (kept until purged)")
        .tag("provisioning").scopes(PROVISION).any_json(202))
    .op(Op::post("/provision/purge", "Remove deprovisioned databases past retention")
        .tag("provisioning").scopes(PROVISION).any_json(200))
    .op(Op::post("/provision/compact", "Compact the open tenants' change feeds")
        .tag("provisioning").scopes(PROVISION).any_json(200))
    .op(Op::post("/provision/{tenant}/credential/rotate", "Rotate a tenant's database role")
        .tag("provisioning").scopes(PROVISION).any_json(200))
    .op(Op::get("/api/collections", "List collections").tag("collections").scopes(READ)
        .any_json(200))
    .op(Op::post("/api/collections", "Create a collection").tag("collections").scopes(WRITE)
        .body::<NewCollection>().any_json(201))
    .op(Op::get("/api/collections/{c}", "A collection and its indexes").tag("collections")
        .scopes(READ).any_json(200))
    .op(Op::delete("/api/collections/{c}", "Delete a collection and its documents")
        .tag("collections").scopes(WRITE).empty(204, "Deleted."))
    .op(Op::get("/api/collections/{c}/indexes", "List indexes").tag("collections")
        .scopes(READ).any_json(200))
    .op(Op::post("/api/collections/{c}/indexes", "Create an index on a field")
        .tag("collections").scopes(WRITE).body::<NewIndex>().any_json(201))
    .op(Op::delete("/api/collections/{c}/indexes/{name}", "Drop an index").tag("collections")
        .scopes(WRITE).empty(204, "Dropped."))
    .op(Op::get("/api/collections/{c}/documents", "List documents").tag("documents")
        .scopes(READ).query("limit", "At most this many documents.")
        .query("cursor", "The `next_cursor` of the previous page.")
        .query("sort", "Comma-separated field paths; `-field` descending.")
        .query("fields", "Comma-separated field paths to return.").any_json(200))
    .op(Op::post("/api/collections/{c}/documents", "Insert a document (a JSON object)")
        .tag("documents").scopes(WRITE).any_body().any_json(201))
    .op(Op::post("/api/collections/{c}/bulk", "Insert documents in one transaction")
        .tag("documents").scopes(WRITE).body::<Bulk>().any_json(201))
    .op(Op::post("/api/collections/{c}/query", "Query documents (filter, sort, fields, paging)")
        .tag("documents").scopes(READ).body::<QueryRequest>().any_json(200))
    .op(Op::get("/api/collections/{c}/documents/{id}", "A document").tag("documents")
        .scopes(READ).header("If-None-Match", "A version seen before (304 if unchanged).")
        .any_json(200).empty(304, "Not modified."))
    .op(Op::put("/api/collections/{c}/documents/{id}", "Create or replace a document")
        .tag("documents").scopes(WRITE).header("If-Match", if_match).any_body().any_json(200)
        .any_json(201))
    .op(Op::patch("/api/collections/{c}/documents/{id}", "Merge-patch a document (RFC 7396)")
        .tag("documents").scopes(WRITE).header("If-Match", if_match).any_body().any_json(200))
    .op(Op::delete("/api/collections/{c}/documents/{id}", "Delete a document")
        .tag("documents").scopes(WRITE).header("If-Match", if_match).empty(204, "Deleted."))
    .op(Op::get("/api/changes", "Changes after a position").tag("changes").scopes(READ)
        .query("since", "A position (default 0).").query("limit", "At most this many.")
        .any_json(200))
    .op(Op::get("/api/changes/stream", "Follow the changes (server-sent events)")
        .tag("changes").scopes(READ).query("since", "A position (default 0).")
        .header("Last-Event-ID", "The last position seen (on reconnect).").events())
}

fn document(state: &AppState, headers: &HeaderMap) -> Value {
    api().document(
        &tansu_shared::openapi::server_of(headers),
        &format!("{}connect/token", state.config.issuer),
    )
}

/// `GET /openapi.json`.
pub async fn json(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    Json(document(&state, &headers))
}

/// `GET /openapi`: the document as a page, when `api_docs` is on.
pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.api_docs {
        return tansu_shared::problem::Problem::not_found().into_response();
    }
    Html(tansu_shared::openapi::docs_page(&document(
        &state, &headers,
    )))
    .into_response()
}
