//! Discovery and authorization as a standard client library meets them, through the gateway:
//! oauth4webapi (npm) discovers the issuer with `algorithm: 'oauth2'` (RFC 8414 §3: the
//! well-known segment inserted at the host root, before the issuer's path) and `'oidc'`
//! (appended to the issuer), and redeems a code obtained by POSTing the authorization request
//! (OIDC Core §3.1.2.1), which is validated and answered exactly like GET. WebFinger (RFC 7033)
//! at the host root names the issuer. Identity on SQLite and on PostgreSQL.

#[path = "apps/common.rs"]
mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::http::{SendOk, hidden_field, set_cookie};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const ISSUER_REL: &str = "http://openid.net/specs/connect/1.0/issuer";

#[tokio::test]
async fn standard_clients_discover_and_authorize_by_post_on_sqlite() {
    discovery_and_post_authorize(false).await;
}

#[tokio::test]
async fn standard_clients_discover_and_authorize_by_post_on_postgres() {
    discovery_and_post_authorize(true).await;
}

async fn discovery_and_post_authorize(postgres: bool) {
    let Some(p) = Platform::start("discovery (PostgreSQL)", postgres).await else {
        return;
    };
    let issuer = p.stack.issuer.clone();

    // The documents at the host root and below the issuer: one issuer, exactly.
    for path in [
        "/.well-known/oauth-authorization-server/identity",
        "/.well-known/oauth-authorization-server/identity/",
        "/.well-known/openid-configuration/identity",
        "/identity/.well-known/openid-configuration",
        "/identity/.well-known/oauth-authorization-server",
    ] {
        let resp = p.http.get(format!("{}{path}", p.base)).send_ok().await;
        assert_eq!(resp.status(), 200, "{path}");
        let meta: Value = resp.json().await.unwrap();
        assert_eq!(meta["issuer"], issuer.as_str(), "{path}");
        assert_eq!(meta["response_types_supported"], json!(["code"]), "{path}");
    }
    // No issuer lives at the root itself.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/db",
    ] {
        let resp = p.http.get(format!("{}{path}", p.base)).send_ok().await;
        assert_eq!(resp.status(), 404, "{path}");
    }

    // WebFinger names the issuer for any account (and so tells nothing about accounts).
    for resource in ["acct:admin@tansu.local", "acct:nobody@elsewhere.example"] {
        let url = with_query(
            &format!("{}/.well-known/webfinger", p.base),
            &[("resource", resource), ("rel", ISSUER_REL)],
        );
        let resp = p.http.get(url).send_ok().await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/jrd+json");
        let jrd: Value = resp.json().await.unwrap();
        assert_eq!(jrd["subject"], resource);
        assert_eq!(
            jrd["links"],
            json!([{"rel": ISSUER_REL, "href": issuer}]),
            "{jrd}"
        );
    }
    let resp = p
        .http
        .get(format!("{}/.well-known/webfinger", p.base))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 400, "resource is required");

    // A public client for the library.
    let admin = p.admin_token().await;
    let (status, client) = p
        .admin(
            &admin,
            Method::POST,
            "clients",
            Some(json!({
                "client_id": "spa", "name": "Library RP", "first_party": true,
                "client_type": "public", "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT], "scopes": ["openid", "profile", "email"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{client}");

    let Some(js) = oauth4webapi("discovery (oauth4webapi)").await else {
        p.shutdown().await;
        return;
    };
    let cert = p.certificate_file();
    let found = node_rp(&js, &cert, &["discover", &issuer, "oauth2"]).await;
    assert_eq!(
        found["fetched"],
        format!("{}/.well-known/oauth-authorization-server/identity", p.base),
        "RFC 8414 §3: the well-known segment goes before the issuer's path"
    );
    assert_eq!(found["issuer"], issuer.as_str());
    assert_eq!(found["token_endpoint"], format!("{issuer}connect/token"));
    let found = node_rp(&js, &cert, &["discover", &issuer, "oidc"]).await;
    assert_eq!(
        found["fetched"],
        format!("{issuer}.well-known/openid-configuration")
    );
    assert_eq!(found["issuer"], issuer.as_str());
    let authorize = found["authorization_endpoint"].as_str().unwrap().to_owned();

    // Authorization by POST answers exactly what GET answers, refusals included.
    let start = node_rp(&js, &cert, &["start"]).await;
    let s = |k: &str| start[k].as_str().unwrap().to_owned();
    let (state, nonce, verifier) = (s("state"), s("nonce"), s("verifier"));
    let good: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "spa".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid email".into()),
        ("state", state.clone()),
        ("nonce", nonce.clone()),
        ("code_challenge", s("challenge")),
        ("code_challenge_method", "S256".into()),
    ];
    let with = |key: &'static str, value: Option<&str>| -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> =
            good.iter().filter(|(k, _)| *k != key).cloned().collect();
        if let Some(value) = value {
            v.push((key, value.to_owned()));
        }
        v
    };
    for (what, params) in [
        ("no client", with("client_id", None)),
        ("unknown client", with("client_id", Some("nope"))),
        (
            "unregistered redirect",
            with("redirect_uri", Some("http://127.0.0.1:9/elsewhere")),
        ),
        ("implicit flow", with("response_type", Some("token"))),
        ("no PKCE", with("code_challenge", None)),
        ("plain PKCE", with("code_challenge_method", Some("plain"))),
        ("prompt=none", {
            let mut v = good.clone();
            v.push(("prompt", "none".into()));
            v
        }),
    ] {
        let by_get = p.http.get(with_query(&authorize, &params)).send_ok().await;
        let by_post = p.http.post(&authorize).form(&params).send_ok().await;
        assert_eq!(by_get.status(), by_post.status(), "{what}");
        assert_ne!(by_post.status(), 200, "{what} is refused");
        assert_eq!(
            by_get.headers().get("location"),
            by_post.headers().get("location"),
            "{what}: the same redirect (error, state, iss) or none"
        );
    }
    let not_a_form = p
        .http
        .post(&authorize)
        .json(&json!({"client_id": "spa"}))
        .send_ok()
        .await;
    assert_eq!(not_a_form.status(), 415);

    // The real one: the sign-in page, the login, the code; the library redeems it.
    let resp = p.http.post(&authorize).form(&good).send_ok().await;
    assert_eq!(resp.status(), 200, "the login page");
    let csrf_cookie = set_cookie(&resp, "tansu_csrf").expect("CSRF cookie");
    let html = resp.text().await.unwrap();
    let resp = p
        .http
        .post(format!("{}/identity/login", p.base))
        .header("cookie", csrf_cookie)
        .form(&[
            ("csrf", hidden_field(&html, "csrf").unwrap().as_str()),
            ("request", hidden_field(&html, "request").unwrap().as_str()),
            ("email", "admin@tansu.local"),
            ("password", PASSWORD),
        ])
        .send_ok()
        .await;
    let callback = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(REDIRECT), "{callback}");
    let done = node_rp(
        &js,
        &cert,
        &[
            "redeem", &issuer, "oauth2", "spa", REDIRECT, &callback, &state, &nonce, &verifier,
        ],
    )
    .await;
    assert_eq!(done["iss"], issuer.as_str(), "{done}");
    assert_eq!(done["aud"], "spa", "{done}");
    assert!(
        done["sub"].as_str().is_some_and(|s| !s.is_empty()),
        "{done}"
    );
    p.shutdown().await;
}
