//! A browser app on its own origin, in headless Chromium: the sample app
//! (`dev/samples/browser-app/index.html`) served on a second 127.0.0.1 origin signs in with
//! code + PKCE as a public client, redeems the code at the token endpoint and calls the
//! tenant's `/db` — every request cross-origin through the gateway (CORS). A page on an origin
//! the tenant does not allow is refused by the browser: its preflight is denied, and the token
//! endpoint does not answer it either. Identity on SQLite and on PostgreSQL.

#[path = "apps/common.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::browser::Chromium;
use tansu_shared::testing::http::SendOk;

const OWNER: &str = "owner@notes.example";

#[tokio::test]
async fn a_page_on_an_allowed_origin_signs_in_and_calls_the_database_on_sqlite() {
    browser_app(false).await;
}

#[tokio::test]
async fn a_page_on_an_allowed_origin_signs_in_and_calls_the_database_on_postgres() {
    browser_app(true).await;
}

/// The page of an origin the tenant does not allow: it tries the database API (a preflighted
/// request) and the token endpoint (a simple one) and records what the browser let it read.
const STRANGER_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>stranger</title>
<script type="module">
const config = await (await fetch('config.json')).json()
const attempt = (p) => p.then((r) => `read ${r.status}`, () => 'blocked')
window.result = {
  db: await attempt(fetch(new URL('api/collections', config.api), { headers: { authorization: 'Bearer x' } })),
  token: await attempt(fetch(new URL('connect/token', config.issuer), {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', client_id: config.client_id, code_verifier: 'x'.repeat(43), redirect_uri: location.origin + '/' }),
  })),
  discovery: await attempt(fetch(new URL('.well-known/openid-configuration', config.issuer))),
}
</script>"#;

type Config = Arc<Mutex<Value>>;

/// A static site on its own 127.0.0.1 origin: `page` at `/`, `config` at `/config.json`.
async fn site(page: &'static str, config: Config) -> TestServer {
    TestServer::start(
        axum::Router::new()
            .route("/", get(move || async move { axum::response::Html(page) }))
            .route(
                "/config.json",
                get(move || async move {
                    let body = config.lock().unwrap().to_string();
                    ([("content-type", "application/json")], body)
                }),
            ),
    )
    .await
}

/// Polls `expr` in the tab until it is not null (at most 30 s).
async fn wait_for(c: &mut Chromium, tab: &str, expr: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = c.eval(tab, expr).await
            && !v.is_null()
        {
            return v;
        }
        assert!(Instant::now() < deadline, "{expr} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn browser_app(postgres: bool) {
    let suite = "browser app (Chromium, PostgreSQL)";
    let Some(chromium) = tansu_shared::testing::chromium(suite) else {
        return;
    };
    let Some(p) = Platform::start(suite, postgres).await else {
        return;
    };
    let issuer = p.stack.issuer.clone();
    let (tenant, slug) = p.register(OWNER, "Notes").await;
    let api = format!("{}/t/{slug}/db/", p.base);

    // Two sites: the app, and a stranger the tenant does not allow.
    let config = Config::default();
    let app = site(
        include_str!("../samples/browser-app/index.html"),
        config.clone(),
    )
    .await;
    let app_origin = app.url("").trim_end_matches('/').to_owned();
    let stranger = site(STRANGER_PAGE, config.clone()).await;
    let stranger_origin = stranger.url("").trim_end_matches('/').to_owned();
    let admin = p.admin_token().await;
    let (status, client) = p
        .admin(
            &admin,
            Method::POST,
            "clients",
            Some(json!({
                "name": "Notes", "tenant_id": tenant, "client_type": "public",
                "first_party": true, "grant_types": ["authorization_code"],
                "redirect_uris": [format!("{app_origin}/")],
                "scopes": ["openid", "db.read", "db.write"],
                "allowed_origins": [app_origin],
            })),
        )
        .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(client["allowed_origins"], json!([app_origin]));
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    *config.lock().unwrap() = json!({
        "issuer": issuer, "api": api, "client_id": client_id,
        "scope": "openid db.read db.write",
    });

    // The tenant allows the app's origin (an origin must be exactly what browsers send).
    let (status, t) = p
        .admin(&admin, Method::GET, &format!("tenants/{tenant}"), None)
        .await;
    assert_eq!(status, 200, "{t}");
    let mut policy = t["policy"].clone();
    policy["allowed_origins"] = json!([format!("{app_origin}/")]);
    let (status, refused) = p
        .admin(
            &admin,
            Method::PATCH,
            &format!("tenants/{tenant}"),
            Some(json!({ "policy": policy })),
        )
        .await;
    assert_eq!(status, 422, "a path is not an origin: {refused}");
    policy["allowed_origins"] = json!([app_origin]);
    let (status, saved) = p
        .admin(
            &admin,
            Method::PATCH,
            &format!("tenants/{tenant}"),
            Some(json!({ "policy": policy })),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["policy"]["allowed_origins"], json!([app_origin]));

    // The preflights as the gateway answers them.
    let preflight = |origin: &str, url: &str| {
        p.http
            .request(Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
    };
    let collections = format!("{api}api/collections");
    let ok = preflight(&app_origin, &collections).send_ok().await;
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        app_origin.as_str()
    );
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert!(
        ok.headers()["vary"].to_str().unwrap().contains("Origin"),
        "Vary: Origin"
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    for (what, origin, url) in [
        (
            "an origin the tenant does not allow",
            stranger_origin.as_str(),
            collections.clone(),
        ),
        (
            "no tenant named (a preflight has no token)",
            app_origin.as_str(),
            format!("{}/db/api/collections", p.base),
        ),
        (
            "a path without cross-origin access",
            app_origin.as_str(),
            format!("{}/identity/admin/clients", p.base),
        ),
    ] {
        let resp = preflight(origin, &url).send_ok().await;
        assert_eq!(resp.status(), 403, "{what}");
        assert!(
            resp.headers().get("access-control-allow-origin").is_none(),
            "{what}"
        );
    }

    // The app in the browser: sign in, redeem, call the database.
    let mut c = Chromium::start_with(&chromium, &["--ignore-certificate-errors"]).await;
    let tab = c.tab().await;
    c.navigate(&tab, &format!("{app_origin}/")).await;
    let first = wait_for(&mut c, &tab, "window.result").await;
    assert_eq!(first["signed_in"], false, "{first}");
    c.eval(&tab, "document.getElementById('sign-in').click()")
        .await;
    wait_for(
        &mut c,
        &tab,
        "document.querySelector('input[name=password]') ? true : null",
    )
    .await;
    c.eval(
        &tab,
        &format!(
            "document.querySelector('input[name=email]').value = {OWNER:?};
             document.querySelector('input[name=password]').value = {PASSWORD:?};
             document.querySelector('form').submit()"
        ),
    )
    .await;
    let done = wait_for(
        &mut c,
        &tab,
        "window.result && window.result.signed_in !== false ? window.result : null",
    )
    .await;
    assert!(done.get("error").is_none(), "{done}");
    assert_eq!(done["signed_in"], true, "{done}");
    assert_eq!(done["created"], 201, "{done}");
    assert!(
        done["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "an exposed header is readable: {done}"
    );
    assert!(done["collections"].to_string().contains("notes"), "{done}");

    // The stranger's page: the browser keeps every answer from it but the public document.
    c.navigate(&tab, &format!("{stranger_origin}/")).await;
    let seen = wait_for(&mut c, &tab, "window.result").await;
    assert_eq!(seen["db"], "blocked", "{seen}");
    assert_eq!(seen["token"], "blocked", "{seen}");
    assert_eq!(seen["discovery"], "read 200", "{seen}");

    drop(c);
    app.stop().await;
    stranger.stop().await;
    p.shutdown().await;
}
