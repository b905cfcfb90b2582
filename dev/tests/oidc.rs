//! An independent relying party (the `openidconnect` crate) signs in through the TLS gateway:
//! discovery at the public issuer, authorization code + PKCE through the real login form,
//! ID token verification (signature, iss, aud, nonce, at_hash, exp) and userinfo.

use std::time::Duration;

use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};
use tansu_shared::testing::http::{SendOk, hidden_field, query_param, set_cookie};
use tansu_shared::testing::rp::RelyingParty;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "correct horse battery staple 42";

fn client(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn relying_party_signs_in_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tansu.toml");
    std::fs::write(
        &config,
        format!("[identity]\ndev_admin_password = \"{PASSWORD}\"\n"),
    )
    .unwrap();
    let mut stack = Stack::start(StackOptions {
        config_file: Some(config),
        ..StackOptions::for_tests(dir.path())
    })
    .await
    .unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    let http = client(&stack.certificate_pem);
    let base = format!("https://{}", stack.gateway);

    // Register the relying party with the dev-mode admin client.
    let secret =
        std::fs::read_to_string(dir.path().join("identity/tansu-dashboard.secret")).unwrap();
    let resp = http
        .post(format!("{base}/identity/connect/token"))
        .basic_auth("tansu-dashboard", Some(secret.trim()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.full"),
        ])
        .send_ok()
        .await;
    let admin: Value = resp.json().await.unwrap();
    let resp = http
        .post(format!("{base}/identity/admin/clients"))
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": "rp", "name": "Relying party", "first_party": true,
            "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT], "scopes": ["openid", "profile", "email"],
        }))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201);

    let rp = RelyingParty::discover(&http, &stack.issuer, "rp", REDIRECT).await;
    let auth = rp.authorize(&stack.issuer, &["email"]);

    // The browser's part: the login form, through the gateway.
    let resp = http.get(auth.url.as_str()).send_ok().await;
    assert_eq!(resp.status(), 200, "the login page");
    let csrf_cookie = set_cookie(&resp, "tansu_csrf").expect("CSRF cookie");
    let html = resp.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").expect("csrf field");
    let request = hidden_field(&html, "request").expect("request field");
    let resp = http
        .post(format!("{base}/identity/login"))
        .header("cookie", csrf_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("email", "admin@tansu.local"),
            ("password", PASSWORD),
        ])
        .send_ok()
        .await;
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(auth.state.secret().as_str())
    );
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(stack.issuer.as_str()),
        "RFC 9207"
    );
    let code = query_param(&location, "code").unwrap();

    let done = rp.finish(auth, code).await;
    assert_eq!(
        done.userinfo.email().map(|e| e.as_str()),
        Some("admin@tansu.local")
    );
    stack.shutdown().await.unwrap();
}
