//! A tenant's backend acting for a signed-in user towards database-svc (RFC 8693 token
//! exchange, `TokenSource::on_behalf_of`): database-svc serves the user's data with the
//! exchanged token, refuses what the narrowed scopes do not cover, and its denial event names
//! the user as the actor and the backend as acting for them. Identity on SQLite and PostgreSQL.

#[path = "apps/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::http::SendOk;
use tansu_shared::token_source::{ClientCredentials, TokenSource};

const OWNER: &str = "owner@orders.example";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn database_svc_sees_the_user_a_service_acts_for_on_sqlite() {
    on_behalf_of(false).await;
}

#[tokio::test]
async fn database_svc_sees_the_user_a_service_acts_for_on_postgres() {
    on_behalf_of(true).await;
}

async fn on_behalf_of(postgres: bool) {
    let Some(p) = Platform::start("token exchange (PostgreSQL)", postgres).await else {
        return;
    };
    let (tenant, _slug) = p.register(OWNER, "Orders").await;
    let admin = p.admin_token().await;
    let (status, v) = p
        .admin(
            &admin,
            Method::POST,
            "clients",
            Some(json!({
                "client_id": "orders-web", "name": "Orders web", "tenant_id": tenant,
                "client_type": "public", "first_party": true,
                "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT],
                "scopes": ["openid", "db.read", "db.write"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, backend) = p
        .admin(
            &admin,
            Method::POST,
            "clients",
            Some(json!({
                "client_id": "orders-backend", "name": "Orders backend", "tenant_id": tenant,
                "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{backend}");
    let secret = backend["client_secret"].as_str().unwrap().to_owned();
    let (status, t) = p
        .admin(&admin, Method::GET, &format!("tenants/{tenant}"), None)
        .await;
    assert_eq!(status, 200);
    let mut policy = t["policy"].clone();
    policy["token_exchange"] = json!([{"client_id": "orders-backend", "audiences": ["tansu.db"]}]);
    let (status, v) = p
        .admin(
            &admin,
            Method::PATCH,
            &format!("tenants/{tenant}"),
            Some(json!({ "policy": policy })),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The user signs in to the web app, which hands the token to its backend.
    let user = p
        .user_token("orders-web", REDIRECT, OWNER, "openid db.read db.write")
        .await;
    let backend = TokenSource::new(ClientCredentials {
        token_endpoint: p.identity_url("/connect/token").parse().unwrap(),
        client_id: "orders-backend".into(),
        client_secret: tansu_shared::config::Secret::new(secret),
        scope: String::new(),
    });
    let token = backend
        .on_behalf_of(&user, "tansu.db", "db.read")
        .await
        .unwrap();

    // database-svc serves the user's tenant with it…
    let list = p
        .http
        .get(format!("{}/db/api/collections", p.base))
        .bearer_auth(&*token)
        .send_ok()
        .await;
    assert_eq!(list.status(), 200);
    // …refuses what the narrowed scopes do not cover…
    let write = p
        .http
        .post(format!("{}/db/api/collections", p.base))
        .bearer_auth(&*token)
        .json(&json!({"name": "orders"}))
        .send_ok()
        .await;
    assert_eq!(write.status(), 403);
    // …and its denial names the user, acted for by the backend.
    let claims: Value = {
        use base64::Engine;
        let payload = user.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let sub = claims["sub"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let (status, page) = p
            .admin(
                &admin,
                Method::GET,
                &format!("security-events?tenant={tenant}&type=access.denied"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        if let Some(e) = page["items"]
            .as_array()
            .and_then(|items| items.iter().find(|e| e["actor"] == sub).cloned())
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "database-svc's denial reached identity: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        event["details"]["act"],
        json!(["orders-backend"]),
        "{event}"
    );
    assert_eq!(event["details"]["path"], "/api/collections", "{event}");
    p.shutdown().await;
}
