//! External OIDC providers per tenant: the admin API, the sealed client secret, the
//! tenant isolation and the discovery test against a real local HTTP server — on SQLite and
//! (when configured) PostgreSQL.

mod common;

use axum::Router;
use axum::routing::get;
use common::*;
use reqwest::Method;
use serde_json::json;
use tansu_shared::testing::TestServer;

const SUITE: &str = "identity providers";
const SECRET: &str = "provider-client-secret-that-must-never-leak-0815";

/// A tenant admin's access token (role `Admin` in `slug`, scope `admin.tenant`).
async fn tenant_admin_token(id: &Instance, tid: &str, slug: &str, email: &str) -> String {
    id.create_member(tid, email, &["Admin"]).await;
    id.user_access(
        "tenant-app",
        email,
        USER_PASSWORD,
        "openid roles admin.tenant",
        Some(slug),
    )
    .await
}

#[tokio::test]
async fn provider_admin_api_secret_and_isolation() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let a = id.create_tenant("prov-a").await;
        let b = id.create_tenant("prov-b").await;
        id.tenant_app().await;
        let base_a = format!("/admin/tenants/{a}/providers");
        let base_b = format!("/admin/tenants/{b}/providers");

        // Create: the secret is sealed and never returned.
        let (status, p) = id
            .call(
                Method::POST,
                &base_a,
                &admin,
                Some(json!({
                    "name": "Corporate SSO",
                    "issuer": "https://sso.example.com/realms/acme",
                    "client_id": "tansu",
                    "client_secret": SECRET,
                    "scopes": ["openid", "email"],
                })),
            )
            .await;
        assert_eq!(status, 201, "[{}] {p}", db.name());
        let pa = p["id"].as_str().unwrap().to_owned();
        assert_eq!(p["has_secret"], true);
        assert_eq!(p["enabled"], true);
        assert_eq!(p["tenant_id"], a.as_str());
        assert_eq!(p["scopes"], json!(["openid", "email"]));
        assert!(!p.to_string().contains(SECRET));
        assert!(p.get("client_secret").is_none());
        let raw = raw_bytes(
            &id.state.store,
            "SELECT client_secret FROM external_providers WHERE client_secret IS NOT NULL",
        )
        .await;
        assert_eq!(raw.len(), 1);
        assert!(
            !contains_bytes(&raw[0], SECRET.as_bytes()),
            "stored in plaintext"
        );

        // Validation and conflicts: 4xx problems, never 500.
        for bad in [
            json!({"name": "x", "issuer": "http://sso.example.com", "client_id": "c"}),
            json!({"name": "x", "issuer": "not a url", "client_id": "c"}),
            json!({"name": "x", "issuer": "https://u:p@sso.example.com", "client_id": "c"}),
            json!({"name": "", "issuer": "https://x.example.com", "client_id": "c"}),
            json!({"name": "x", "issuer": "https://x.example.com", "client_id": "has space"}),
            json!({"name": "x", "issuer": "https://x.example.com", "client_id": "c", "scopes": ["email"]}),
            json!({"name": "x", "issuer": "https://x.example.com", "client_id": "c", "scopes": ["a b"]}),
            json!({"name": "x", "issuer": "https://x.example.com", "client_id": "c", "unknown": 1}),
            json!({"name": "x"}),
        ] {
            let (status, v) = id.call(Method::POST, &base_a, &admin, Some(bad)).await;
            assert!(status == 422 || status == 400, "{status} {v}");
        }
        let (status, v) = id
            .call(
                Method::POST,
                &base_a,
                &admin,
                Some(json!({"name": "Again", "issuer": "https://sso.example.com/realms/acme", "client_id": "other"})),
            )
            .await;
        assert_eq!(status, 409, "{v}");
        let resp = id
            .http
            .post(id.url(&base_a))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body("{not json")
            .send_ok()
            .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.headers()["content-type"],
            tansu_shared::problem::CONTENT_TYPE
        );

        // The same issuer in another tenant is fine.
        let pb = id
            .call_expect(
                Method::POST,
                &base_b,
                &admin,
                Some(json!({"name": "B SSO", "issuer": "https://sso.example.com/realms/acme", "client_id": "b"})),
                201,
            )
            .await;
        assert_eq!(pb["has_secret"], false);
        assert_eq!(pb["scopes"], json!(["openid", "profile", "email"]));
        let pb = pb["id"].as_str().unwrap().to_owned();

        // List, get, patch, disable, enable.
        let (status, list) = id.get_as(&base_a, &admin).await;
        assert_eq!(status, 200);
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert!(!list.to_string().contains(SECRET));
        let (status, got) = id.get_as(&format!("{base_a}/{pa}"), &admin).await;
        assert_eq!(status, 200);
        assert_eq!(got["name"], "Corporate SSO");
        let upd = id
            .call_expect(
                Method::PATCH,
                &format!("{base_a}/{pa}"),
                &admin,
                Some(json!({"name": "Acme SSO", "scopes": ["openid", "profile"]})),
                200,
            )
            .await;
        assert_eq!(upd["name"], "Acme SSO");
        assert_eq!(upd["has_secret"], true, "a patch without secret keeps it");
        id.call_expect(
            Method::PATCH,
            &format!("{base_a}/{pa}"),
            &admin,
            Some(json!({"issuer": "http://evil.example"})),
            422,
        )
        .await;
        let d = id
            .call_expect(
                Method::POST,
                &format!("{base_a}/{pa}/disable"),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(d["enabled"], false);
        let e = id
            .call_expect(
                Method::POST,
                &format!("{base_a}/{pa}/enable"),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(e["enabled"], true);
        // The sealed secret opens to the value put in (for the sign-in flow).
        let row = id.state.store.provider(&a, &pa).await.unwrap().unwrap();
        let opened =
            tansu_identity::providers::client_secret(&id.state.store, id.state.keys.master(), &row)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(opened.as_str(), SECRET);
        let r = id
            .call_expect(
                Method::PATCH,
                &format!("{base_a}/{pa}"),
                &admin,
                Some(json!({"remove_secret": true})),
                200,
            )
            .await;
        assert_eq!(r["has_secret"], false);

        // A tenant admin of A manages A's providers…
        let ta = tenant_admin_token(&id, &a, "prov-a", "owner@prov-a.example").await;
        let claims = jwt_claims(&ta);
        assert_eq!(claims["tid"], a.as_str());
        let (status, list) = id.get_as(&base_a, &ta).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let v = id
            .call_expect(
                Method::PATCH,
                &format!("{base_a}/{pa}"),
                &ta,
                Some(json!({"client_secret": "a-new-secret"})),
                200,
            )
            .await;
        assert_eq!(v["has_secret"], true);
        // …and B's are as good as nonexistent: 404 for every endpoint, with B's ids and with
        // B's provider id under A's path.
        let b_paths = [
            (Method::GET, base_b.clone()),
            (Method::POST, base_b.clone()),
            (Method::GET, format!("{base_b}/{pb}")),
            (Method::PATCH, format!("{base_b}/{pb}")),
            (Method::DELETE, format!("{base_b}/{pb}")),
            (Method::POST, format!("{base_b}/{pb}/disable")),
            (Method::POST, format!("{base_b}/{pb}/enable")),
            (Method::POST, format!("{base_b}/{pb}/test")),
            (Method::GET, format!("{base_a}/{pb}")),
            (Method::PATCH, format!("{base_a}/{pb}")),
            (Method::DELETE, format!("{base_a}/{pb}")),
            (Method::POST, format!("{base_a}/{pb}/disable")),
            (Method::POST, format!("{base_a}/{pb}/test")),
        ];
        let body = json!({"name": "x", "issuer": "https://x.example.com", "client_id": "c"});
        for (method, path) in &b_paths {
            let (status, v) = id.call(method.clone(), path, &ta, Some(body.clone())).await;
            assert_eq!(status, 404, "{method} {path}: {v}");
            assert!(!v.to_string().contains("B SSO"));
        }
        // Unchanged by the attempts.
        let (status, still) = id.get_as(&format!("{base_b}/{pb}"), &admin).await;
        assert_eq!(status, 200);
        assert_eq!(still["enabled"], true);
        assert_eq!(still["name"], "B SSO");
        // The platform admin's B id under A's path: 404 too.
        let (status, _) = id.get_as(&format!("{base_a}/{pb}"), &admin).await;
        assert_eq!(status, 404);
        // A plain user of A with admin.tenant gets nothing.
        id.create_member(&a, "user@prov-a.example", &["User"]).await;
        let tu = id
            .user_access(
                "tenant-app",
                "user@prov-a.example",
                USER_PASSWORD,
                "openid roles admin.tenant",
                Some("prov-a"),
            )
            .await;
        // The grant drops admin.tenant for a User: the token is not even for this service.
        let (status, _) = id.get_as(&base_a, &tu).await;
        assert_eq!(status, 401);
        let (status, _) = id.get_as(&base_a, "garbage").await;
        assert_eq!(status, 401);

        // Delete.
        id.call_expect(Method::DELETE, &format!("{base_a}/{pa}"), &ta, None, 204)
            .await;
        let (status, _) = id.get_as(&format!("{base_a}/{pa}"), &admin).await;
        assert_eq!(status, 404);

        // Every change is a security event of the tenant, with its actor.
        let (status, ev) = id
            .get_as(
                &format!("/admin/security-events?tenant={a}&type=provider.change&limit=100"),
                &admin,
            )
            .await;
        assert_eq!(status, 200);
        let actions: Vec<String> = ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["details"]["action"].as_str().unwrap_or("").to_owned())
            .collect();
        for want in ["create", "update", "disable", "enable", "delete"] {
            assert!(actions.iter().any(|a| a == want), "{want}: {actions:?}");
        }
        assert!(!ev.to_string().contains(SECRET));
        let (status, v) = id
            .get_as(&format!("/admin/security-events/verify?tenant={a}"), &admin)
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["ok"], true);

        id.stop().await;
        db.cleanup().await;
    }
}

/// A stand-in external provider: discovery documents good and bad.
async fn provider_server() -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = move |issuer: String| {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
        })
    };
    let (b1, b2, b3) = (base.clone(), base.clone(), base.clone());
    let app = Router::new()
        .route(
            "/good/.well-known/openid-configuration",
            get(move || {
                let d = doc(format!("{b1}/good"));
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/wrong/.well-known/openid-configuration",
            get(move || {
                let d = doc(format!("{b2}/somebody-else"));
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/partial/.well-known/openid-configuration",
            get(move || {
                let issuer = format!("{b3}/partial");
                async move { axum::Json(json!({"issuer": issuer, "token_endpoint": "x"})) }
            }),
        )
        .route(
            "/html/.well-known/openid-configuration",
            get(|| async { axum::response::Html("<html>not discovery</html>") }),
        )
        .route(
            "/huge/.well-known/openid-configuration",
            get(|| async { "x".repeat(2 * 1024 * 1024) }),
        )
        .route(
            "/moved/.well-known/openid-configuration",
            get(|| async { axum::response::Redirect::temporary("https://elsewhere.example/") }),
        );
    TestServer::start_on(listener, app)
}

#[tokio::test]
async fn discovery_test_reports_each_failure() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = id.create_tenant("disco").await;
        let upstream = provider_server().await;
        let base = upstream.url("");
        let base = base.trim_end_matches('/');
        // A port nothing listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let cases = [
            (format!("{base}/good"), true, ""),
            (format!("{base}/wrong"), false, "does not match"),
            (
                format!("{base}/partial"),
                false,
                "authorization_endpoint, jwks_uri",
            ),
            (format!("{base}/html"), false, "not JSON"),
            (format!("{base}/huge"), false, "larger than"),
            (format!("{base}/moved"), false, "redirect"),
            (format!("{base}/missing"), false, "HTTP 404"),
            (format!("http://{closed}/x"), false, "could not be reached"),
        ];
        for (issuer, ok, reason) in cases {
            let p = id
                .call_expect(
                    Method::POST,
                    &format!("/admin/tenants/{t}/providers"),
                    &admin,
                    Some(json!({"name": issuer, "issuer": issuer, "client_id": "c"})),
                    201,
                )
                .await;
            let pid = p["id"].as_str().unwrap();
            let (status, r) = id
                .call(
                    Method::POST,
                    &format!("/admin/tenants/{t}/providers/{pid}/test"),
                    &admin,
                    None,
                )
                .await;
            assert_eq!(status, 200, "[{}] {issuer}: {r}", db.name());
            assert_eq!(r["ok"], ok, "{issuer}: {r}");
            assert_eq!(
                r["discovery_url"],
                format!("{issuer}/.well-known/openid-configuration")
            );
            if ok {
                assert_eq!(r["issuer"], issuer.as_str());
                assert_eq!(r["jwks_uri"], format!("{issuer}/jwks"));
                assert!(r.get("reason").is_none());
            } else {
                let why = r["reason"].as_str().unwrap_or_default();
                assert!(why.contains(reason), "{issuer}: {why}");
            }
        }
        // Unknown provider: 404 problem.
        id.call_expect(
            Method::POST,
            &format!("/admin/tenants/{t}/providers/nope/test"),
            &admin,
            None,
            404,
        )
        .await;
        upstream.stop().await;
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tenant_users_never_receive_admin_full() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let t = id.create_tenant("no-full").await;
        // A first-party client that may ask for admin.full (like the dashboard).
        id.create_client(json!({
            "client_id": "console",
            "name": "console",
            "first_party": true,
            "client_type": "public",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://app.example/cb"],
            "scopes": ["openid", "roles", "admin.full", "admin.tenant"],
        }))
        .await;
        id.create_member(&t, "boss@no-full.example", &["Owner"])
            .await;
        let tokens = id
            .user_access(
                "console",
                "boss@no-full.example",
                USER_PASSWORD,
                "openid roles admin.full admin.tenant",
                Some("no-full"),
            )
            .await;
        let at = &tokens;
        let scope = jwt_claims(at)["scope"].as_str().unwrap_or("").to_owned();
        assert!(!scope.split(' ').any(|s| s == "admin.full"), "{scope}");
        assert!(scope.split(' ').any(|s| s == "admin.tenant"), "{scope}");
        // So the tenant owner cannot list tenants (platform only) …
        let (status, _) = id.get_as("/admin/tenants", at).await;
        assert_eq!(status, 403);
        // … but the platform admin signing in through the same client still gets it.
        let tokens = id
            .user_access(
                "console",
                tansu_identity::DEV_ADMIN_EMAIL,
                ADMIN_PASSWORD,
                "openid roles admin.full",
                None,
            )
            .await;
        let scope = jwt_claims(&tokens)["scope"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(scope.split(' ').any(|s| s == "admin.full"), "{scope}");
        id.stop().await;
        db.cleanup().await;
    }
}
