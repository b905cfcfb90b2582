//! The axum extractors through a real HTTP server: RFC 6750 answers and tenant checks.

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::Value;
use tansu_shared::auth::scopes::{DbRead, DbWrite};
use tansu_shared::auth::{Principal, RequireScope, Tenant, Verifier, VerifierConfig};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::issuer::*;

const TENANT: &str = "0190f5c0-0000-7000-8000-000000000001";
const OTHER_TENANT: &str = "0190f5c0-0000-7000-8000-000000000002";

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.verifier.clone()
    }
}

async fn whoami(p: Principal) -> String {
    p.sub.clone()
}

async fn read(tenant: Tenant, _: RequireScope<DbRead>) -> String {
    tenant.id.to_string()
}

async fn write(_: RequireScope<(DbRead, DbWrite)>, tenant: Tenant) -> String {
    tenant.id.to_string()
}

struct Fixture {
    issuer: TestIssuer,
    key: TestKey,
    app: TestServer,
    http: reqwest::Client,
}

async fn fixture() -> Fixture {
    let key = rsa_key("k1");
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = Verifier::new(VerifierConfig::new(issuer.issuer.clone(), AUDIENCE))
        .await
        .unwrap();
    let router = Router::new()
        .route("/whoami", get(whoami))
        .route("/data", get(read).post(write))
        .with_state(AppState { verifier });
    let app = TestServer::start(tansu_shared::server::with_common_layers("test", router)).await;
    Fixture {
        issuer,
        key,
        app,
        http: reqwest::Client::new(),
    }
}

async fn problem(resp: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "errors are problem+json"
    );
    (status, challenge, resp.json().await.unwrap())
}

#[tokio::test]
async fn missing_and_malformed_credentials() {
    let f = fixture().await;
    let (status, challenge, _) =
        problem(f.http.get(f.app.url("/whoami")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"tansu\""));

    let resp = f
        .http
        .get(f.app.url("/whoami"))
        .header("authorization", "Bearer not a token")
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = problem(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    assert_eq!(body["type"], "urn:tansu:problem:invalid-token");

    let resp = f
        .http
        .get(f.app.url("/whoami"))
        .header("authorization", "Bearer a.b.c")
        .header("authorization", "Bearer d.e.f")
        .send()
        .await
        .unwrap();
    let (status, challenge, _) = problem(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(challenge.unwrap().contains("error=\"invalid_request\""));
}

#[tokio::test]
async fn expired_token_is_invalid_token_with_description() {
    let f = fixture().await;
    let mut c = f.issuer.claims();
    c.exp = now() - 3600;
    let resp = f
        .http
        .get(f.app.url("/whoami"))
        .bearer_auth(sign(&f.key, &c))
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = problem(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge.unwrap(),
        "Bearer realm=\"tansu\", error=\"invalid_token\", error_description=\"token expired\""
    );
    assert_eq!(body["detail"], "token expired");
}

#[tokio::test]
async fn scopes_and_tenant_are_enforced() {
    let f = fixture().await;
    let token = sign(&f.key, &f.issuer.claims()); // scope "db.read openid", tid TENANT

    let ok = f
        .http
        .get(f.app.url("/data"))
        .bearer_auth(&token)
        .header("x-tansu-tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), TENANT);

    // Missing scope: 403 insufficient_scope naming what is required.
    let resp = f
        .http
        .post(f.app.url("/data"))
        .bearer_auth(&token)
        .header("x-tansu-tenant", TENANT)
        .send()
        .await
        .unwrap();
    let (status, challenge, body) = problem(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.unwrap(),
        "Bearer realm=\"tansu\", error=\"insufficient_scope\", scope=\"db.read db.write\""
    );
    assert_eq!(body["type"], "urn:tansu:problem:insufficient-scope");

    // Tenant mismatch, missing tenant header, duplicated header: 403 tenant mismatch.
    for headers in [
        vec![OTHER_TENANT],
        vec![],
        vec![TENANT, OTHER_TENANT],
        vec!["not-a-uuid"],
    ] {
        let mut req = f.http.get(f.app.url("/data")).bearer_auth(&token);
        for h in &headers {
            req = req.header("x-tansu-tenant", *h);
        }
        let (status, challenge, body) = problem(req.send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(challenge.is_none());
        assert_eq!(body["type"], "urn:tansu:problem:tenant-mismatch");
    }

    // A token without tid is never tenant-scoped.
    let mut c = f.issuer.claims();
    c.tid = None;
    let resp = f
        .http
        .get(f.app.url("/data"))
        .bearer_auth(sign(&f.key, &c))
        .header("x-tansu-tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Both scopes present: the write passes.
    let mut c = f.issuer.claims();
    c.scope = "db.read db.write".into();
    let resp = f
        .http
        .post(f.app.url("/data"))
        .bearer_auth(sign(&f.key, &c))
        .header("x-tansu-tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
