//! OpenAPI 3.1 descriptions of the services' HTTP APIs, built from the code: each service lists
//! its operations in one table ([`Api::op`]), their bodies are the Rust types the handlers read
//! and write (their JSON Schemas derived by `utoipa`'s `ToSchema`), every error is the RFC 9457
//! [`crate::Problem`], and the security requirements name the scopes the handlers' extractors
//! require. Each service serves its document at `/openapi.json` (through the gateway under the
//! service's prefix); its tests compare the document's operations with the router's, both ways,
//! so a route cannot be added without being described.
//!
//! [`docs_page`] renders a document as one self-contained HTML page (no script, nothing
//! fetched from elsewhere), served by the services in dev mode only.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

pub use utoipa;

/// The media type of problem details (RFC 9457).
const PROBLEM: &str = crate::problem::CONTENT_TYPE;

/// Registers a schema (and those it refers to) and answers how to refer to it.
type Register = fn(&mut Schemas) -> Value;

/// The named schemas of a document (`components.schemas`).
#[derive(Default)]
pub struct Schemas(BTreeMap<String, Value>);

impl Schemas {
    /// `T`'s schema under its name, and every named schema it refers to; a `$ref` to it.
    pub fn named<T: ToSchema>(&mut self) -> Value {
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        for (name, schema) in deps {
            self.insert(name, &schema);
        }
        let name = T::name().into_owned();
        self.insert(name.clone(), &T::schema());
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// `T`'s schema written out in place (generic wrappers such as pages of a list), the named
    /// schemas it refers to registered.
    pub fn inline<T: ToSchema>(&mut self) -> Value {
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        for (name, schema) in deps {
            self.insert(name, &schema);
        }
        serde_json::to_value(T::schema()).unwrap_or(Value::Null)
    }

    fn insert(&mut self, name: String, schema: &impl serde::Serialize) {
        let value = serde_json::to_value(schema).unwrap_or(Value::Null);
        self.0.entry(name).or_insert(value);
    }
}

fn named<T: ToSchema>(s: &mut Schemas) -> Value {
    s.named::<T>()
}

/// A page of `T`s (`items`, `next_after`), `T` registered under its name.
fn page<T: ToSchema>(s: &mut Schemas) -> Value {
    s.named::<T>();
    s.inline::<crate::admin_api::Page<T>>()
}

/// A complete list of `T`s (`items`), `T` registered under its name.
fn items<T: ToSchema>(s: &mut Schemas) -> Value {
    s.named::<T>();
    s.inline::<crate::admin_api::Items<T>>()
}

/// What an operation takes or answers: a media type and, for JSON, a schema.
#[derive(Clone, Copy)]
enum Content {
    None,
    Json(Register),
    /// Any JSON object (documents, queries whose shape the tenant decides).
    AnyJson,
    /// Bytes of any media type (objects), described as `application/octet-stream`: the media
    /// type generic clients send and read bytes as (`*/*` is valid OpenAPI, but client
    /// generators refuse it); the operation's description says the type is the object's.
    Bytes,
    /// `text/event-stream`.
    Events,
}

/// One operation: a method on a path of the router.
pub struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    /// Any one of these scopes is enough; empty: no token needed.
    scopes: &'static [&'static str],
    anonymous_too: bool,
    params: Vec<Value>,
    body: Content,
    ok: Vec<(u16, &'static str, Content)>,
}

impl Op {
    fn new(method: &'static str, path: &'static str, summary: &'static str) -> Self {
        Op {
            method,
            path,
            summary,
            tag: "",
            scopes: &[],
            anonymous_too: false,
            params: Vec::new(),
            body: Content::None,
            ok: Vec::new(),
        }
    }
    pub fn get(path: &'static str, summary: &'static str) -> Self {
        Self::new("get", path, summary)
    }
    pub fn head(path: &'static str, summary: &'static str) -> Self {
        Self::new("head", path, summary)
    }
    pub fn post(path: &'static str, summary: &'static str) -> Self {
        Self::new("post", path, summary)
    }
    pub fn put(path: &'static str, summary: &'static str) -> Self {
        Self::new("put", path, summary)
    }
    pub fn patch(path: &'static str, summary: &'static str) -> Self {
        Self::new("patch", path, summary)
    }
    pub fn delete(path: &'static str, summary: &'static str) -> Self {
        Self::new("delete", path, summary)
    }

    /// Requires a token with any one of `scopes`.
    pub fn scopes(mut self, scopes: &'static [&'static str]) -> Self {
        self.scopes = scopes;
        self
    }
    /// Also answered without a token (a presigned URL's signature, a self-service form).
    pub fn or_anonymous(mut self) -> Self {
        self.anonymous_too = true;
        self
    }
    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }
    /// An optional query parameter (a string).
    pub fn query(mut self, name: &str, description: &str) -> Self {
        self.params.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": { "type": "string" },
        }));
        self
    }
    /// An optional request header.
    pub fn header(mut self, name: &str, description: &str) -> Self {
        self.params.push(json!({
            "name": name, "in": "header", "required": false,
            "description": description, "schema": { "type": "string" },
        }));
        self
    }
    /// The keyset paging of the admin lists (`limit`, `after`).
    pub fn paged(self) -> Self {
        self.query(
            "limit",
            "At most this many items (default 100, at most 500).",
        )
        .query("after", "The `next_after` cursor of the previous page.")
    }
    /// A JSON body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        self.body = Content::Json(named::<T>);
        self
    }
    /// A JSON object body whose shape the caller decides.
    pub fn any_body(mut self) -> Self {
        self.body = Content::AnyJson;
        self
    }
    /// A body of any media type (an object's bytes).
    pub fn bytes_body(mut self) -> Self {
        self.body = Content::Bytes;
        self
    }
    /// Answers `status` with a JSON `T` (a named schema).
    pub fn json<T: ToSchema>(mut self, status: u16) -> Self {
        self.ok
            .push((status, "Success.", Content::Json(named::<T>)));
        self
    }
    /// Answers 200 with a page of `T`s (the admin lists' keyset paging).
    pub fn page<T: ToSchema>(mut self) -> Self {
        self.ok.push((200, "A page.", Content::Json(page::<T>)));
        self
    }
    /// Answers 200 with the complete list of `T`s.
    pub fn items<T: ToSchema>(mut self) -> Self {
        self.ok.push((200, "The list.", Content::Json(items::<T>)));
        self
    }
    /// Answers `status` with a JSON object whose shape the data decides.
    pub fn any_json(mut self, status: u16) -> Self {
        self.ok.push((status, "Success.", Content::AnyJson));
        self
    }
    /// Answers `status` with bytes of any media type.
    pub fn bytes(mut self, status: u16) -> Self {
        self.ok.push((
            status,
            "The object's bytes; `Content-Type` is the object's media type.",
            Content::Bytes,
        ));
        self
    }
    /// Answers a `text/event-stream`.
    pub fn events(mut self) -> Self {
        self.ok
            .push((200, "A stream of server-sent events.", Content::Events));
        self
    }
    /// Answers `status` without a body.
    pub fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.ok.push((status, description, Content::None));
        self
    }

    /// The method and the path as the router spells it (`{*key}` for a rest of the path).
    pub fn route(&self) -> (&'static str, &'static str) {
        (self.method, self.path)
    }
}

/// The description of one service's API.
pub struct Api {
    title: &'static str,
    description: &'static str,
    scopes: &'static [(&'static str, &'static str)],
    ops: Vec<Op>,
}

impl Api {
    /// `scopes`: every scope the API's operations name, with what it grants.
    pub fn new(
        title: &'static str,
        description: &'static str,
        scopes: &'static [(&'static str, &'static str)],
    ) -> Self {
        Api {
            title,
            description,
            scopes,
            ops: Vec::new(),
        }
    }

    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The OpenAPI 3.1 document. `server`: where the API is reached (the gateway's prefix, say
    /// `/db`, relative to the document); `token_url`: the issuer's token endpoint.
    pub fn document(&self, server: &str, token_url: &str) -> Value {
        let mut schemas = Schemas::default();
        schemas.0.insert("Problem".into(), problem_schema());
        let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for op in &self.ops {
            let path = openapi_path(op.path);
            let value = operation(op, &mut schemas);
            paths
                .entry(path)
                .or_default()
                .insert(op.method.into(), value);
        }
        let scopes: Map<String, Value> = self
            .scopes
            .iter()
            .map(|(s, d)| ((*s).to_owned(), Value::from(*d)))
            .collect();
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": self.title,
                "version": env!("CARGO_PKG_VERSION"),
                "description": self.description,
                "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
            },
            "servers": [{ "url": server }],
            "paths": paths,
            "components": {
                "schemas": schemas.0,
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "An access token of the platform's issuer (RFC 9068 \
                            `at+jwt`) for this service's audience. Errors follow RFC 6750 \
                            (`WWW-Authenticate`). The scopes listed per operation are those the \
                            token must carry.",
                    },
                    "oauth2": {
                        "type": "oauth2",
                        "description": "Client credentials at the issuer's token endpoint \
                            (users' tokens come from the authorization code flow with PKCE).",
                        "flows": {
                            "clientCredentials": { "tokenUrl": token_url, "scopes": scopes },
                        },
                    },
                },
            },
        })
    }
}

/// The router's path in OpenAPI's spelling: `{*key}` (the rest of the path) becomes `{key}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn operation(op: &Op, schemas: &mut Schemas) -> Value {
    let mut params: Vec<Value> = op
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let rest = name.starts_with('*');
            let name = name.trim_start_matches('*');
            json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string" },
                "description": if rest { "The rest of the path (may contain `/`)." } else { "" },
            })
        })
        .collect();
    params.extend(op.params.iter().cloned());
    let mut responses = Map::new();
    for (status, description, content) in &op.ok {
        let mut r = json!({ "description": description });
        if let Some(c) = content_of(*content, schemas) {
            r["content"] = c;
        }
        responses.insert(status.to_string(), r);
    }
    let problem = json!({ PROBLEM: { "schema": { "$ref": "#/components/schemas/Problem" } } });
    if !op.scopes.is_empty() {
        responses.insert(
            "401".into(),
            json!({
                "description": "No valid token (RFC 6750; `WWW-Authenticate` says why).",
                "headers": { "WWW-Authenticate": { "schema": { "type": "string" } } },
                "content": problem,
            }),
        );
        responses.insert(
            "403".into(),
            json!({
                "description": "The token lacks the scope, or its tenant is not the request's \
                    (`insufficient_scope`).",
                "content": problem,
            }),
        );
    }
    responses.insert(
        "default".into(),
        json!({ "description": "An error (RFC 9457 problem details).", "content": problem }),
    );
    let mut security: Vec<Value> = op
        .scopes
        .iter()
        .flat_map(|s| [json!({ "bearer": [s] }), json!({ "oauth2": [s] })])
        .collect();
    if op.anonymous_too {
        security.push(json!({}));
    }
    let mut v = json!({
        "summary": op.summary,
        "operationId": operation_id(op),
        "parameters": params,
        "responses": responses,
        "security": security,
    });
    if !op.tag.is_empty() {
        v["tags"] = json!([op.tag]);
    }
    if let Some(c) = content_of(op.body, schemas) {
        v["requestBody"] = json!({ "required": true, "content": c });
        if matches!(op.body, Content::Bytes) {
            v["requestBody"]["description"] = json!(
                "The object's bytes. Any media type: the request's `Content-Type` is stored as \
                 the object's."
            );
        }
    }
    v
}

fn content_of(content: Content, schemas: &mut Schemas) -> Option<Value> {
    Some(match content {
        Content::None => return None,
        Content::Json(register) => json!({ "application/json": { "schema": register(schemas) } }),
        Content::AnyJson => json!({ "application/json": { "schema": { "type": "object" } } }),
        Content::Bytes => json!({
            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } }
        }),
        Content::Events => json!({ "text/event-stream": { "schema": { "type": "string" } } }),
    })
}

/// `get_admin_tenants_tid_users`: unique per method and path.
fn operation_id(op: &Op) -> String {
    let mut id = op.method.to_owned();
    for seg in op.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| !matches!(c, '{' | '}' | '*' | '.'))
                .map(|c| if c == '-' { '_' } else { c }),
        );
    }
    id
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "Problem details (RFC 9457). `type` is stable \
            (`urn:tansu:problem:<slug>`); members beside the standard ones are extensions.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": { "type": "string", "examples": ["urn:tansu:problem:not-found"] },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 100, "maximum": 599 },
            "detail": { "type": "string" },
            "instance": { "type": "string" },
        },
        "additionalProperties": true,
    })
}

/// Where the API is reached as the caller sees it: the gateway's prefix
/// (`X-Forwarded-Prefix`), or `/` when called directly.
pub fn server_of(headers: &HeaderMap) -> String {
    let prefix = headers
        .get("x-forwarded-prefix")
        .and_then(|v| v.to_str().ok())
        .filter(|p| p.starts_with('/') && p.len() < 256)
        .filter(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b))
        })
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or("");
    if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix.to_owned()
    }
}

/// The document as a plain HTML page: every operation with its scopes, parameters, bodies and
/// answers. Self-contained (inline style, no script), for dev mode.
pub fn docs_page(doc: &Value) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let title = esc(doc["info"]["title"].as_str().unwrap_or("API"));
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>body{{font:15px/1.45 \
         system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}h2{{font-size:1rem;\
         margin:1.5rem 0 .25rem;font-family:monospace}}.m{{display:inline-block;min-width:4rem;\
         font-weight:700}}pre{{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:12px}}\
         small{{color:#555}}</style></head><body><h1>{title}</h1><p>{}</p>\
         <p><a href=\"openapi.json\">openapi.json</a></p>",
        esc(doc["info"]["description"].as_str().unwrap_or(""))
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let scopes: Vec<String> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.get("oauth2")?.as_array()?.first()?.as_str())
                    .map(esc)
                    .collect();
                html.push_str(&format!(
                    "<h2><span class=\"m\">{}</span>{}</h2><div>{}<br><small>scopes: {}</small>\
                     </div><details><summary>details</summary><pre>{}</pre></details>",
                    method.to_uppercase(),
                    esc(path),
                    esc(op["summary"].as_str().unwrap_or("")),
                    if scopes.is_empty() {
                        "none".to_owned()
                    } else {
                        scopes.join(" or ")
                    },
                    esc(&serde_json::to_string_pretty(op).unwrap_or_default()),
                ));
            }
        }
    }
    html.push_str(&format!(
        "<h2>schemas</h2><pre>{}</pre></body></html>",
        esc(&serde_json::to_string_pretty(&doc["components"]["schemas"]).unwrap_or_default())
    ));
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, utoipa::ToSchema)]
    struct Thing {
        name: String,
    }

    #[test]
    fn a_document_names_paths_scopes_bodies_and_problems() {
        let api = Api::new("t", "d", &[("x.read", "read")]).op(Op::get(
            "/things/{id}/{*rest}",
            "a thing",
        )
        .scopes(&["x.read"])
        .json::<Thing>(200));
        let doc = api.document("/x", "https://h/identity/connect/token");
        let op = &doc["paths"]["/things/{id}/{rest}"]["get"];
        assert_eq!(op["parameters"][0]["name"], "id");
        assert_eq!(op["parameters"][1]["name"], "rest");
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert_eq!(
            op["security"],
            json!([{"bearer": ["x.read"]}, {"oauth2": ["x.read"]}])
        );
        assert_eq!(
            op["responses"]["default"]["content"][PROBLEM]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert!(doc["components"]["schemas"]["Thing"].is_object());
        assert!(docs_page(&doc).contains("/things/{id}/{rest}"));
    }

    #[test]
    fn the_server_is_the_forwarded_prefix() {
        let mut h = HeaderMap::new();
        assert_eq!(server_of(&h), "/");
        h.insert("x-forwarded-prefix", "/db".parse().unwrap());
        assert_eq!(server_of(&h), "/db");
        h.insert("x-forwarded-prefix", "/db\"><script>".parse().unwrap());
        assert_eq!(server_of(&h), "/");
    }
}
