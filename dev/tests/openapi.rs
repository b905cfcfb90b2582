//! The APIs' OpenAPI 3.1 documents, as a client meets them: fetched through the gateway under
//! each service's prefix, they describe exactly the routes the services' routers serve (every
//! method and path of the route tables is in the document, and nothing else is), they pass an
//! OpenAPI 3.1 validator (@readme/openapi-parser from npm: the 3.1 schema and the rules a schema
//! cannot state), and their pages are served in dev mode. A client generated from each live
//! document by a generator from a registry (openapi-python-client from PyPI, without a
//! warning) calls its service through the gateway.

#[path = "apps/common.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tansu_shared::openapi::openapi_path;
use tansu_shared::testing::http::{SendOk, routed_methods};

const PROBED: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// (service name in the stack, gateway prefix, its route table, which of its paths the
/// document describes).
fn services() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "identity",
            "/identity",
            tansu_identity::routes()
                .paths()
                .iter()
                .copied()
                .filter(|p| p.starts_with("/admin/") || *p == "/registrations")
                .collect(),
        ),
        ("database", "/db", tansu_database::route_paths()),
        ("storage", "/storage", tansu_storage::route_paths()),
    ]
}

/// The document's operations as (METHOD, router path) for the probed methods; its HEAD
/// operations must have a GET beside them (axum answers HEAD wherever GET is routed).
fn operations(doc: &Value, paths: &[&'static str]) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if method == "head" {
                assert!(item.get("get").is_some(), "HEAD {path} without GET");
                continue;
            }
            assert!(PROBED.contains(&method.as_str()), "{method} {path}");
            // The router's spelling of the path (`{*key}` for a rest of the path).
            let routed = paths
                .iter()
                .find(|p| openapi_path(p) == *path)
                .map_or_else(|| path.clone(), |p| (*p).to_owned());
            ops.insert((method.to_uppercase(), routed));
        }
    }
    ops
}

#[tokio::test]
async fn every_route_is_described_and_the_documents_validate() {
    let Some(p) = Platform::start("openapi", false).await else {
        return;
    };
    let mut files = Vec::new();
    for (name, prefix, paths) in services() {
        let resp = p
            .http
            .get(format!("{}{prefix}/openapi.json", p.base))
            .send_ok()
            .await;
        assert_eq!(
            resp.status(),
            200,
            "{prefix}/openapi.json through the gateway"
        );
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["servers"][0]["url"], prefix,
            "the gateway's prefix is the server"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
            format!("{}connect/token", p.stack.issuer)
        );

        // Both ways: every routed (method, path) is described, every described one routed.
        let addr = p.stack.services.iter().find(|(n, _)| *n == name).unwrap().1;
        let routed = routed_methods(&format!("http://{addr}"), &paths).await;
        let described = operations(&doc, &paths);
        let undescribed: Vec<_> = routed.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&routed).collect();
        assert!(
            undescribed.is_empty() && unrouted.is_empty(),
            "{name}: the OpenAPI document and the router differ:\n  routes not in the \
             document: {undescribed:?}\n  operations without a route: {unrouted:?}"
        );
        eprintln!("{name}: {} operations, all routed", described.len());

        // Every secured operation names its scopes, and they are the scheme's.
        let declared =
            &doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let security = op["security"].as_array().unwrap();
                assert!(
                    !security.is_empty(),
                    "{method} {path}: no security requirement"
                );
                for req in security {
                    for scope in req
                        .get("oauth2")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let scope = scope.as_str().unwrap();
                        assert!(declared.get(scope).is_some(), "{name}: {scope} undeclared");
                    }
                }
                assert!(op["responses"]["default"].is_object(), "{method} {path}");
            }
        }

        // The page (dev mode) lists every path; it fetches nothing from elsewhere.
        let page = p
            .http
            .get(format!("{}{prefix}/openapi", p.base))
            .send_ok()
            .await;
        assert_eq!(page.status(), 200, "{prefix}/openapi");
        let html = page.text().await.unwrap();
        assert!(!html.contains("<script") && !html.contains("src=\"http"));
        for path in doc["paths"].as_object().unwrap().keys() {
            assert!(
                html.contains(path.as_str()),
                "{prefix}/openapi lists {path}"
            );
        }

        let file = p.dir.path().join(format!("{name}.openapi.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        files.push(file);
    }

    if let Some(js) = oauth4webapi("openapi (validator)").await {
        let verdicts = validate(&js, &files).await;
        for file in &files {
            let v = &verdicts[file.to_str().unwrap()];
            assert_eq!(v["valid"], true, "{}: {v:#}", file.display());
            assert_eq!(v["warnings"], serde_json::json!([]), "{}", file.display());
        }
        eprintln!("{} documents valid (@readme/openapi-parser)", files.len());
    }
    p.shutdown().await;
}

/// The Python clients openapi-python-client generates from the three documents, fetched live
/// through the gateway, each call their service there with a token: identity's admin API
/// lists a tenant's members, database-svc stores and reads a document, storage-svc stores and
/// reads an object (`dev/tests/py/generated_clients.py`).
#[tokio::test]
async fn clients_generated_from_the_documents_call_every_service() {
    const SUITE: &str = "openapi (generated clients)";
    if !generator_installed() {
        tansu_shared::testing::skip_or_fail::<()>(
            SUITE,
            "openapi-python-client is not installed (pip install openapi-python-client)",
        );
        return;
    }
    let Some(p) = Platform::start("openapi clients", false).await else {
        return;
    };
    let owner = "owner@generated.example";
    let (tenant, _) = p.register(owner, "Generated").await;
    let admin = p.admin_token().await;
    let (status, v) = p
        .admin(
            &admin,
            reqwest::Method::POST,
            "clients",
            Some(serde_json::json!({
                "client_id": "generated-backend", "name": "Generated backend",
                "tenant_id": tenant, "grant_types": ["client_credentials"],
                "scopes": ["db.read", "db.write", "storage.read", "storage.write"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let resp = p
        .http
        .post(format!("{}/identity/connect/token", p.base))
        .basic_auth("generated-backend", v["client_secret"].as_str())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "db.read db.write storage.read storage.write"),
        ])
        .send_ok()
        .await;
    let body: Value = resp.json().await.unwrap();
    let tenant_token = body["access_token"].as_str().expect("a tenant token");

    let clients = p.dir.path().join("clients");
    for (name, prefix, _) in services() {
        let resp = p
            .http
            .get(format!("{}{prefix}/openapi.json", p.base))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "{prefix}/openapi.json");
        let file = p.dir.path().join(format!("{name}.openapi.json"));
        std::fs::write(&file, resp.bytes().await.unwrap()).unwrap();
        generate_client(&file, &clients.join(format!("tansu_{name}"))).await;
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/generated_clients.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(&clients)
        .env("TANSU_BASE", &p.base)
        .env("TANSU_CA", p.certificate_file())
        .env("TANSU_ADMIN_TOKEN", &admin)
        .env("TANSU_TENANT_TOKEN", tenant_token)
        .env("TANSU_TENANT", &tenant)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the generated clients finish within 120 s")
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the generated clients: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    eprintln!("generated clients: {got}");
    assert_eq!(got["identity"]["status"], 200, "{got}");
    assert_eq!(
        got["identity"]["emails"],
        serde_json::json!([owner]),
        "{got}"
    );
    assert_eq!(
        got["database"]["status"],
        serde_json::json!([201, 201, 200]),
        "{got}"
    );
    let document = &got["database"]["document"];
    assert_eq!(document["id"], "first", "{got}");
    assert_eq!(document["version"], 1, "{got}");
    assert_eq!(
        document["data"],
        serde_json::json!({"sku": "A-1", "qty": 3}),
        "{got}"
    );
    assert_eq!(
        got["storage"]["status"],
        serde_json::json!([201, 201, 200]),
        "{got}"
    );
    assert_eq!(got["storage"]["same_bytes"], true, "{got}");
    assert_eq!(
        got["storage"]["content_type"], "application/octet-stream",
        "{got}"
    );
    p.shutdown().await;
}

/// Whether openapi-python-client is on the path and its generated code's libraries (httpx,
/// attrs, python-dateutil: its own dependencies) import in `python3`.
fn generator_installed() -> bool {
    let ok = |cmd: &mut std::process::Command| cmd.output().is_ok_and(|o| o.status.success());
    ok(std::process::Command::new("openapi-python-client").arg("--version"))
        && ok(std::process::Command::new("python3").args(["-c", "import httpx, attrs, dateutil"]))
}

/// Generates the Python package `out` (its folder name is the package name) from `document`,
/// failing on any warning: an operation or schema the generator cannot express fails here.
async fn generate_client(document: &Path, out: &Path) {
    let run = tokio::process::Command::new("openapi-python-client")
        .args(["generate", "--meta", "none", "--fail-on-warning", "--path"])
        .arg(document)
        .arg("--output-path")
        .arg(out)
        .kill_on_drop(true)
        .output();
    let result = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("openapi-python-client finishes within 180 s")
        .expect("openapi-python-client runs");
    assert!(
        result.status.success(),
        "openapi-python-client {}: {}{}",
        document.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

async fn validate(dir: &Path, files: &[std::path::PathBuf]) -> Value {
    let run = tokio::process::Command::new("node")
        .arg("openapi.mjs")
        .args(files)
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("node finishes within 60 s")
        .expect("node runs");
    assert!(
        out.status.success(),
        "node openapi.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The request samples (`dev/requests/*.http`) show every operation of the three APIs and
/// identity's protocol endpoints: a route added without a sample fails here.
#[test]
fn every_operation_has_a_request_sample() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("requests");
    let mut samples: Vec<(String, String, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(method), Some(url)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((base, rest)) = url.strip_prefix("{{").and_then(|u| u.split_once("}}")) else {
                continue;
            };
            let path = rest.split('?').next().unwrap_or("");
            samples.push((method.to_owned(), base.to_owned(), path.to_owned()));
        }
    }
    let protocol = [
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/jwks"),
        ("GET", "/.well-known/webfinger"),
        ("GET", "/connect/authorize"),
        ("POST", "/connect/authorize"),
        ("POST", "/connect/token"),
        ("GET", "/connect/userinfo"),
        ("POST", "/connect/userinfo"),
        ("POST", "/connect/introspect"),
        ("POST", "/connect/revocation"),
        ("GET", "/connect/endsession"),
        ("POST", "/connect/endsession"),
    ];
    let mut wanted: Vec<(&str, String, String)> = protocol
        .iter()
        .map(|(m, p)| ("identity", (*m).to_owned(), (*p).to_owned()))
        .collect();
    for (base, api) in [
        ("identity", tansu_identity::admin::openapi::api()),
        ("db", tansu_database::openapi::api()),
        ("storage", tansu_storage::openapi::api()),
    ] {
        for op in api.ops() {
            let (method, path) = op.route();
            wanted.push((base, method.to_uppercase(), path.to_owned()));
        }
        wanted.push((base, "GET".into(), "/openapi.json".into()));
    }
    let missing: Vec<_> = wanted
        .iter()
        .filter(|(base, method, template)| {
            !samples
                .iter()
                .any(|(m, b, p)| m == method && b == base && matches_template(template, p))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a sample in dev/requests/*.http: {missing:?}"
    );
}

/// Whether a sample's path (with `{{variables}}`) fits a route template: literal segments
/// equal, `{x}` any one segment, `{*x}` the rest.
fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    for (i, seg) in t.iter().enumerate() {
        if seg.starts_with("{*") {
            return p.len() > i && !p[i].is_empty();
        }
        match p.get(i) {
            Some(s) if seg.starts_with('{') => {
                if s.is_empty() {
                    return false;
                }
            }
            Some(s) if s == seg => {}
            _ => return false,
        }
    }
    t.len() == p.len()
}
