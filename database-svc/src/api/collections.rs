//! Collections (with their optional JSON Schema) and their indexes.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tansu_shared::Problem;
use tansu_shared::auth::scopes::{DbRead, DbWrite};

use super::access::{At, CollPath, IndexPath, Scoped};
use super::store;
use crate::AppState;
use crate::body::JsonBody;
use crate::ident::{self, FieldPath};
use crate::schema;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCollection {
    name: String,
    /// A JSON Schema every document of the collection must satisfy.
    #[serde(default)]
    schema: Option<Value>,
}

pub(super) async fn list_collections(
    State(s): State<AppState>,
    Scoped(tenant, _): Scoped<DbRead>,
) -> Result<Response, Problem> {
    let list = store(&s, &tenant).await?.list_collections().await?;
    Ok(Json(json!({ "collections": list })).into_response())
}

pub(super) async fn create_collection(
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

pub(super) async fn get_collection(
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

pub(super) async fn delete_collection(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbWrite, CollPath>,
) -> Result<Response, Problem> {
    store(&s, &tenant).await?.delete_collection(&c).await?;
    s.tenants.notify(tenant.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- indexes ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewIndex {
    name: String,
    /// A field path (`a.b`).
    field: String,
}

pub(super) async fn list_indexes(
    State(s): State<AppState>,
    At(tenant, CollPath { c }, _): At<DbRead, CollPath>,
) -> Result<Response, Problem> {
    let list = store(&s, &tenant).await?.list_indexes(&c).await?;
    Ok(Json(json!({ "indexes": list })).into_response())
}

pub(super) async fn create_index(
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

pub(super) async fn drop_index(
    State(s): State<AppState>,
    At(tenant, IndexPath { c, name }, _): At<DbWrite, IndexPath>,
) -> Result<Response, Problem> {
    store(&s, &tenant).await?.drop_index(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
