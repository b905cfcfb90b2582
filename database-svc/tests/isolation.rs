//! The tenant isolation matrix: a token of tenant A never reads, lists or changes tenant B's
//! data, whatever the path, header or filter says; a `db.read` token never writes.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;

const A: uuid::Uuid = TENANT_A;
const B: uuid::Uuid = TENANT_B;

/// Every document-API endpoint, with a body where it takes one; `true` for writes.
fn endpoints() -> Vec<(Method, &'static str, Option<Value>, bool)> {
    vec![
        (Method::GET, "/api/collections", None, false),
        (Method::GET, "/api/collections/shared", None, false),
        (Method::GET, "/api/collections/shared/indexes", None, false),
        (
            Method::GET,
            "/api/collections/shared/documents",
            None,
            false,
        ),
        (
            Method::GET,
            "/api/collections/shared/documents/b-only",
            None,
            false,
        ),
        (
            Method::POST,
            "/api/collections/shared/query",
            Some(json!({"filter": {"owner": "B"}})),
            false,
        ),
        (Method::GET, "/api/changes", None, false),
        (Method::GET, "/api/changes/stream", None, false),
        (
            Method::POST,
            "/api/collections",
            Some(json!({"name": "x"})),
            true,
        ),
        (
            Method::POST,
            "/api/collections/shared/indexes",
            Some(json!({"name": "ix2", "field": "owner"})),
            true,
        ),
        (
            Method::DELETE,
            "/api/collections/shared/indexes/ix",
            None,
            true,
        ),
        (
            Method::POST,
            "/api/collections/shared/documents",
            Some(json!({"x": 1})),
            true,
        ),
        (
            Method::POST,
            "/api/collections/shared/bulk",
            Some(json!({"documents": [{"data": {"x": 1}}]})),
            true,
        ),
        (
            Method::PUT,
            "/api/collections/shared/documents/b-only",
            Some(json!({"owner": "A"})),
            true,
        ),
        (
            Method::PATCH,
            "/api/collections/shared/documents/b-only",
            Some(json!({"owner": "A"})),
            true,
        ),
        (
            Method::DELETE,
            "/api/collections/shared/documents/b-only",
            None,
            true,
        ),
        (Method::DELETE, "/api/collections/shared", None, true),
    ]
}

/// Platform endpoints, refused to tenant tokens (checked in `provision.rs`).
const PLATFORM_ENDPOINTS: &[(&str, &str)] = &[
    ("PUT", "/provision/{tenant}"),
    ("GET", "/provision/{tenant}"),
    ("DELETE", "/provision/{tenant}"),
    ("POST", "/provision/purge"),
    ("POST", "/provision/compact"),
    ("POST", "/provision/{tenant}/credential/rotate"),
];

/// Whether a concrete path of the matrix is an instance of a route template.
fn instance_of(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
}

/// Every route of the service, enumerated from its router, is in the isolation matrix (or is a
/// platform endpoint): a new route cannot escape the tenant checks unnoticed.
#[tokio::test]
async fn every_route_is_in_the_isolation_matrix() {
    for env in envs("database routes").await {
        let routed = tansu_shared::testing::http::routed_methods(
            &env.url(""),
            &tansu_database::route_paths(),
        )
        .await;
        let mut missing = Vec::new();
        for (method, template) in &routed {
            let covered = endpoints()
                .iter()
                .any(|(m, p, _, _)| m.as_str() == method && instance_of(template, p))
                || PLATFORM_ENDPOINTS.contains(&(method.as_str(), template.as_str()));
            if !covered {
                missing.push(format!("{method} {template}"));
            }
        }
        assert!(missing.is_empty(), "routes outside the matrix: {missing:?}");
        println!(
            "database routes checked against the matrix: {}",
            routed.len()
        );
        env.finish().await;
    }
}

async fn setup(env: &Env) {
    for t in [A, B] {
        env.provision(t).await;
        env.create_collection(t, "shared").await;
    }
    assert_eq!(
        env.put(
            A,
            "/api/collections/shared/documents/a-only",
            &json!({"owner": "A"}),
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        env.put(
            B,
            "/api/collections/shared/documents/b-only",
            &json!({"owner": "B", "secret": "b's"}),
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        env.post(
            B,
            "/api/collections/shared/indexes",
            &json!({"name": "ix", "field": "owner"}),
        )
        .await
        .status(),
        StatusCode::CREATED
    );
}

async fn send(
    env: &Env,
    (method, path, body): (&Method, &str, &Option<Value>),
    token: &str,
    headers: &[&str],
) -> reqwest::Response {
    let mut r = env
        .http
        .request(method.clone(), env.url(path))
        .bearer_auth(token);
    for h in headers {
        r = r.header("x-tansu-tenant", *h);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send_ok().await
}

/// B's state, read as B: must be identical before and after A's attempts.
async fn b_state(env: &Env) -> Value {
    let get =
        |path: &'static str| async move { env.get(B, path).await.json::<Value>().await.unwrap() };
    json!({
        "collections": get("/api/collections").await,
        "doc": get("/api/collections/shared/documents/b-only").await,
        "docs": get("/api/collections/shared/documents").await,
        "indexes": get("/api/collections/shared/indexes").await,
        "changes": get("/api/changes").await,
    })
}

#[tokio::test]
async fn tenant_isolation_matrix() {
    for env in envs("database isolation").await {
        let n = env.name;
        setup(&env).await;
        let before = b_state(&env).await;
        let a_rw = env.rw(A);
        let a_ro = env.ro(A);
        let no_tid = env.token(None, "db.read db.write");
        let (a, b) = (A.to_string(), B.to_string());
        let both = format!("{b}, {a}");

        for (method, path, body, write) in endpoints() {
            let ep = (&method, path, &body);
            let what = |case: &str| format!("{n}: {method} {path}: {case}");
            // Token of A, header of B (what a forged header would say): 403.
            for (token, headers, case) in [
                (&a_rw, vec![b.as_str()], "A's token, B's header"),
                (&a_rw, vec![], "A's token, no header"),
                (&a_rw, vec![b.as_str(), a.as_str()], "two headers"),
                (&a_rw, vec![both.as_str()], "a list in one header"),
                (&no_tid, vec![b.as_str()], "token without tid"),
            ] {
                let resp = send(&env, ep, token, &headers).await;
                let p = problem(resp, StatusCode::FORBIDDEN, &what(case)).await;
                assert_eq!(
                    p["type"],
                    "urn:tansu:problem:tenant-mismatch",
                    "{}",
                    what(case)
                );
            }
            // A db.read token never writes, even its own tenant.
            if write {
                let resp = send(&env, ep, &a_ro, &[a.as_str()]).await;
                let p = problem(resp, StatusCode::FORBIDDEN, &what("read-only token")).await;
                assert_eq!(p["type"], "urn:tansu:problem:insufficient-scope");
            }
        }

        // As A in A's own tenant: B's ids, values and changes are invisible.
        let resp = env.get(A, "/api/collections/shared/documents/b-only").await;
        problem(resp, StatusCode::NOT_FOUND, n).await;
        let page: Value = env
            .post_json(
                A,
                "/api/collections/shared/query",
                &json!({"filter": {"owner": {"$in": ["A", "B"]}}}),
            )
            .await;
        let owners: Vec<&str> = page["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["data"]["owner"].as_str().unwrap())
            .collect();
        assert_eq!(owners, ["A"], "{n}");
        let feed: Value = env.get_json(A, "/api/changes").await;
        assert!(
            !feed.to_string().contains("b-only") && !feed.to_string().contains("b's"),
            "{n}: {feed}"
        );
        let indexes: Value = env.get_json(A, "/api/collections/shared/indexes").await;
        assert_eq!(indexes["indexes"], json!([]), "{n}");
        // Paths that try to reach elsewhere are refused or not found, never B's data.
        for path in [
            format!("/api/collections/..%2F{b}/documents/b-only"),
            format!("/api/collections/shared/documents/..%2F..%2F{b}"),
            "/api/collections/shared%3B%20DROP%20TABLE%20documents/documents".to_owned(),
            "/api/collections/shared/documents/b-only%27%20OR%20%271%27%3D%271".to_owned(),
        ] {
            let resp = env.get(A, &path).await;
            let status = resp.status();
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{n}: {path}: {status}"
            );
            let text = resp.text().await.unwrap();
            assert!(!text.contains("b's"), "{n}: {path}");
        }
        // Writes of A with A's header in A's tenant do not touch B.
        assert_eq!(
            env.delete(A, "/api/collections/shared").await.status(),
            StatusCode::NO_CONTENT,
            "{n}"
        );

        assert_eq!(b_state(&env).await, before, "{n}: B unchanged");
        env.finish().await;
    }
}

#[tokio::test]
async fn missing_and_invalid_tokens_are_refused_on_every_endpoint() {
    for env in envs("database auth").await {
        let n = env.name;
        setup(&env).await;
        let b = B.to_string();
        for (method, path, body, _) in endpoints() {
            let mut r = env
                .http
                .request(method.clone(), env.url(path))
                .header("x-tansu-tenant", &b);
            if let Some(body) = &body {
                r = r.json(body);
            }
            let resp = r.send_ok().await;
            assert!(resp.headers().contains_key("www-authenticate"));
            problem(
                resp,
                StatusCode::UNAUTHORIZED,
                &format!("{n}: {method} {path}"),
            )
            .await;
            // A token from an issuer we do not trust.
            let other = tansu_shared::testing::issuer::rsa_key("k1");
            let mut c = env.issuer.claims();
            c.tid = Some(b.clone());
            c.scope = "db.read db.write".into();
            let forged = tansu_shared::testing::issuer::sign(&other, &c);
            let resp = send(&env, (&method, path, &body), &forged, &[b.as_str()]).await;
            problem(
                resp,
                StatusCode::UNAUTHORIZED,
                &format!("{n}: forged {method} {path}"),
            )
            .await;
        }
        env.finish().await;
    }
}
