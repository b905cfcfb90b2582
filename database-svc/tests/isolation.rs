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

/// A third tenant, the target of the platform rows (`/provision/{tenant}`).
const C: uuid::Uuid = uuid::Uuid::from_u128(0x0190f5c0_0000_7000_8000_00000000000c);

/// The tokens of the document's actors for a row requiring `scope` (`None`: anonymous).
fn actor_tokens(env: &Env, scope: &str) -> Vec<Option<String>> {
    let wrong_scope = match scope {
        "db.read" => "db.write",
        "db.write" => "db.read",
        _ => "db.read db.write",
    };
    let wrong_audience = {
        let claims = env
            .issuer
            .claims_for("tansu.storage", Some(&A.to_string()), scope);
        tansu_shared::testing::issuer::sign(&env.key, &claims)
    };
    vec![
        Some(env.token(Some(A), scope)),
        Some(env.token(Some(A), wrong_scope)),
        Some(wrong_audience),
        Some(env.token(Some(B), scope)),
        Some(env.token(None, "db.read db.write db.provision")),
        None,
    ]
}

/// A body that passes validation where the route takes one.
fn body_for(method: &str, path: &str, fresh: &str) -> Option<Value> {
    Some(match (method, path) {
        ("POST", "/api/collections") => json!({ "name": fresh }),
        ("POST", "/api/collections/{c}/indexes") => json!({ "name": fresh, "field": "owner" }),
        ("POST", "/api/collections/{c}/bulk") => json!({ "documents": [{ "data": { "x": 1 } }] }),
        ("POST", "/api/collections/{c}/query") => json!({ "filter": { "owner": "A" } }),
        ("POST", "/api/collections/{c}/documents")
        | ("PUT" | "PATCH", "/api/collections/{c}/documents/{id}") => json!({ "owner": "A" }),
        _ => return None,
    })
}

/// Everything a request of the matrix could change: both tenants' collections, indexes and
/// change feeds, and the catalog's records of the three tenants.
async fn everything(env: &Env) -> Value {
    let mut out = Vec::new();
    let platform = env.platform();
    for t in [A, B, C] {
        let r = env
            .req(Method::GET, &format!("/provision/{t}"), &platform, None)
            .send_ok()
            .await;
        out.push(json!([
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or_default()
        ]));
    }
    for t in [A, B] {
        out.push(env.get_json(t, "/api/collections").await);
        out.push(env.get_json(t, "/api/collections/shared/indexes").await);
        let mut since = 0;
        loop {
            let page = env
                .get_json(t, &format!("/api/changes?since={since}"))
                .await;
            let next = page["next_since"].as_i64().unwrap_or(since);
            out.push(page);
            if next == since {
                break;
            }
            since = next;
        }
    }
    Value::Array(out)
}

/// Every route of the router is a row of `docs/authorization.md`'s database-svc table (and
/// every row a route); every route answers every actor as the row says, and a refused request
/// changes nothing. SQLite and PostgreSQL.
#[tokio::test]
async fn every_route_is_in_the_isolation_matrix() {
    use tansu_shared::testing::matrix::{self, ACTORS, Expect};
    let doc = include_str!("../../docs/authorization.md");
    let rows = matrix::table(doc, "database-svc");
    for env in envs("database routes").await {
        let n = env.name;
        let routed = tansu_shared::testing::http::routed_methods(
            &env.url(""),
            &tansu_database::route_paths(),
        )
        .await;
        let (undocumented, unrouted) = matrix::differences(&rows, &routed);
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "{n}: docs/authorization.md and the router differ:\n  routes without a row: \
             {undocumented:?}\n  rows without a route: {unrouted:?}"
        );
        setup(&env).await;
        env.provision(C).await;
        let mut failures = Vec::new();
        let mut checked = 0;
        let mut counter = 0;
        for row in &rows {
            let tokens = actor_tokens(&env, &row.scope);
            // Refusals first: an allowed request may change what the next one finds.
            let mut order: Vec<usize> = (0..ACTORS.len()).collect();
            order.sort_by_key(|&i| row.expect[i] == Expect::Ok);
            for i in order {
                let expect = row.expect[i];
                counter += 1;
                let fresh = format!("m{counter}");
                let path = if expect == Expect::Ok {
                    fresh_target(&env, row, &fresh).await
                } else {
                    matrix::concrete(&row.path, |name| match name {
                        "tenant" => C.to_string(),
                        "c" => "shared".into(),
                        "id" => "a-only".into(),
                        "name" => "ix".into(),
                        other => other.to_owned(),
                    })
                };
                let method: Method = row.method.parse().unwrap();
                let mut req = env.http.request(method, env.url(&path));
                req = req.header("x-tansu-tenant", A.to_string());
                if let Some(t) = &tokens[i] {
                    req = req.bearer_auth(t);
                }
                if let Some(b) = body_for(&row.method, &row.path, &fresh) {
                    req = req.json(&b);
                }
                let before = match expect {
                    Expect::Refused(_) => Some(everything(&env).await),
                    Expect::Ok => None,
                };
                let resp = req.send_ok().await;
                let status = resp.status().as_u16();
                checked += 1;
                let what = format!("{n}: {} {path} as {}", row.method, ACTORS[i]);
                if !expect.admits(status) {
                    // An allowed stream never ends: its body is not read.
                    let text = match expect {
                        Expect::Ok => String::new(),
                        Expect::Refused(_) => resp.text().await.unwrap_or_default(),
                    };
                    failures.push(format!("{what}: {status}, expected {expect:?} {text}"));
                    continue;
                }
                drop(resp);
                if let Some(before) = before
                    && everything(&env).await != before
                {
                    failures.push(format!("{what}: refused, but it changed something"));
                }
            }
        }
        println!(
            "database-svc isolation matrix ({n}): {} routes x {} actors = {checked} requests",
            rows.len(),
            ACTORS.len()
        );
        assert!(
            failures.is_empty(),
            "{} of {checked} checks failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        env.finish().await;
    }
}

/// The concrete path of a row for an allowed request: resources of its own (a fresh tenant,
/// collection with a document and an index), so that what it changes disturbs no other row.
async fn fresh_target(env: &Env, row: &tansu_shared::testing::matrix::Row, fresh: &str) -> String {
    let tenant = uuid::Uuid::now_v7();
    if row.path.contains("{tenant}") && row.method != "PUT" {
        env.provision(tenant).await;
    }
    if row.path.contains("{c}") {
        env.create_collection(A, fresh).await;
        let doc = format!("/api/collections/{fresh}/documents/a-only");
        assert!(
            env.put(A, &doc, &json!({"owner": "A"}))
                .await
                .status()
                .is_success()
        );
        let ix = json!({"name": "ix", "field": "owner"});
        let r = env
            .post(A, &format!("/api/collections/{fresh}/indexes"), &ix)
            .await;
        assert!(r.status().is_success());
    }
    tansu_shared::testing::matrix::concrete(&row.path, |name| match name {
        "tenant" => tenant.to_string(),
        "c" => fresh.to_owned(),
        "id" => "a-only".into(),
        "name" => "ix".into(),
        other => other.to_owned(),
    })
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
