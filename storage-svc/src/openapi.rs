//! The object API's OpenAPI 3.1 document (`GET /openapi.json`; through the gateway
//! `/storage/openapi.json`), and when `api_docs` is on (the dev stack) its page
//! (`GET /openapi`). One line per operation of [`crate::api::routes`] (multipart and quota
//! administration included); `tests/openapi.rs` compares them with the router both ways.
//! Object reads and writes also accept a presigned URL instead of a token.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use tansu_shared::openapi::{Api, Op};

use crate::AppState;
use crate::admin::QuotaRequest;
use crate::api::{BucketSettings, PresignRequest};
use crate::multipart::{CompleteRequest, InitiateRequest};

const READ: &[&str] = &["storage.read"];
const WRITE: &[&str] = &["storage.write"];
const ADMIN: &[&str] = &["storage.admin", "admin.full"];

const SCOPES: &[(&str, &str)] = &[
    ("storage.read", "Read the tenant's buckets and objects."),
    ("storage.write", "Change the tenant's buckets and objects."),
    (
        "storage.admin",
        "Per-tenant quotas (platform administrators).",
    ),
    ("admin.full", "Platform administration."),
];

/// Every operation (a table: one operation per line or two).
#[rustfmt::skip]
pub fn api() -> Api {
    let obj = "/api/buckets/{bucket}/objects/{*key}";
    Api::new(
        "Tansu storage API",
        "Buckets and objects per tenant: streaming uploads and downloads, ranges, conditional \
         requests, multipart uploads, presigned URLs, usage and quotas. The tenant is the \
         token's `tid`, which must equal the tenant the gateway resolved.",
        SCOPES,
    )
    .op(Op::get("/api/buckets", "List buckets").tag("buckets").scopes(READ).any_json(200))
    .op(Op::put("/api/buckets/{bucket}", "Create a bucket").tag("buckets").scopes(WRITE)
        .body::<BucketSettings>().any_json(201))
    .op(Op::get("/api/buckets/{bucket}", "A bucket's settings").tag("buckets").scopes(READ)
        .any_json(200))
    .op(Op::patch("/api/buckets/{bucket}", "Change a bucket's settings").tag("buckets")
        .scopes(WRITE).body::<BucketSettings>().any_json(200))
    .op(Op::delete("/api/buckets/{bucket}", "Delete an empty bucket").tag("buckets")
        .scopes(WRITE).empty(204, "Deleted."))
    .op(Op::get("/api/buckets/{bucket}/objects", "List objects").tag("objects").scopes(READ)
        .query("prefix", "Only keys starting with this.")
        .query("delimiter", "Group keys up to this character into common prefixes.")
        .query("max-keys", "At most this many keys.")
        .query("continuation-token", "The previous page's `next_continuation_token`.")
        .any_json(200))
    .op(Op::put(obj, "Upload an object (or copy one: `x-tansu-copy-source`)").tag("objects")
        .scopes(WRITE).or_anonymous().header("If-Match", "Only if the object has this ETag.")
        .header("If-None-Match", "`*`: only if there is no such object.")
        .header("x-tansu-copy-source", "`bucket/key` to copy instead of a body.")
        .bytes_body().any_json(200).any_json(201))
    .op(Op::get(obj, "Download an object (ranges, conditionals)").tag("objects").scopes(READ)
        .or_anonymous().header("Range", "`bytes=…` (one range).")
        .header("If-None-Match", "An ETag seen before (304 if unchanged).")
        .bytes(200).bytes(206).empty(304, "Not modified."))
    .op(Op::head(obj, "An object's metadata").tag("objects").scopes(READ).or_anonymous()
        .empty(200, "The object's headers."))
    .op(Op::delete(obj, "Delete an object").tag("objects").scopes(WRITE).or_anonymous()
        .empty(204, "Deleted."))
    .op(Op::post("/api/buckets/{bucket}/presign", "Mint a presigned URL").tag("objects")
        .scopes(WRITE).body::<PresignRequest>().any_json(200))
    .op(Op::get("/api/usage", "The tenant's usage and quota").tag("usage").scopes(READ)
        .any_json(200))
    .op(Op::post("/api/buckets/{bucket}/uploads", "Start a multipart upload").tag("multipart")
        .scopes(WRITE).body::<InitiateRequest>().any_json(201))
    .op(Op::get("/api/buckets/{bucket}/uploads/{upload_id}", "A multipart upload's parts")
        .tag("multipart").scopes(READ).any_json(200))
    .op(Op::delete("/api/buckets/{bucket}/uploads/{upload_id}", "Abort a multipart upload")
        .tag("multipart").scopes(WRITE).empty(204, "Aborted."))
    .op(Op::put("/api/buckets/{bucket}/uploads/{upload_id}/parts/{part_number}",
        "Upload a part").tag("multipart").scopes(WRITE).bytes_body().any_json(200))
    .op(Op::post("/api/buckets/{bucket}/uploads/{upload_id}/complete",
        "Complete a multipart upload").tag("multipart").scopes(WRITE)
        .body::<CompleteRequest>().any_json(200))
    .op(Op::get("/admin/tenants/{tenant}/quota", "A tenant's usage and quota").tag("quotas")
        .scopes(ADMIN).any_json(200))
    .op(Op::put("/admin/tenants/{tenant}/quota", "Set a tenant's quota").tag("quotas")
        .scopes(ADMIN).body::<QuotaRequest>().any_json(200))
    .op(Op::delete("/admin/tenants/{tenant}/quota", "Back to the default quota")
        .tag("quotas").scopes(ADMIN).any_json(200))
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
        return tansu_shared::Problem::not_found().into_response();
    }
    Html(tansu_shared::openapi::docs_page(&document(
        &state, &headers,
    )))
    .into_response()
}
