//! A route that verifies tokens at the gateway (with `tansu-shared`'s verifier and a JWKS).

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use tansu_gateway::{RouteSettings, TokenCheck};
use tansu_shared::testing::http::SendOk;

const ISSUER: &str = "https://gw.tansu.test/identity/";

struct Keys {
    encoding: jsonwebtoken::EncodingKey,
    jwks: serde_json::Value,
}

fn keys() -> Keys {
    let pair = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256
    let raw = pair.public_key_raw(); // 0x04 || X || Y
    assert_eq!(raw.len(), 65);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Keys {
        encoding: jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwks: serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
        }]}),
    }
}

fn token(keys: &Keys, tid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k1".into());
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "user-1", "aud": "tansu.db", "exp": now + 300, "iat": now,
        "jti": "j1", "client_id": "app", "scope": "db.read", "tid": tid,
    });
    jsonwebtoken::encode(&header, &claims, &keys.encoding).unwrap()
}

#[tokio::test]
async fn tokens_are_verified_before_they_reach_the_service() {
    let keys = keys();
    let jwks = keys.jwks.clone();
    let issuer = tansu_shared::testing::TestServer::start(axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    ))
    .await;
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.route_settings = vec![RouteSettings {
        prefix: "/db".into(),
        max_body_bytes: None,
        verify_tokens: Some(TokenCheck {
            issuer: ISSUER.into(),
            audience: "tansu.db".into(),
            discovery_url: None,
            jwks_uri: Some(issuer.url("/jwks")),
        }),
    }];
    let gw = Gateway::start(c).await;
    let client = gw.client();

    let e = echo_of(
        client
            .get(gw.url("/t/acme/db/x"))
            .bearer_auth(token(&keys, "acme"))
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-tansu-tenant"), Some("acme"));

    // A verified token only: its tid is the tenant.
    let e = echo_of(
        client
            .get(gw.url("/db/x"))
            .bearer_auth(token(&keys, "globex"))
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-tansu-tenant"), Some("globex"));

    // A token whose signature does not verify never reaches the service.
    let forged = token_with_tid("acme");
    let resp = client
        .get(gw.url("/t/acme/db/x"))
        .bearer_auth(&forged)
        .send_ok()
        .await;
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    problem_of(resp, 401).await;

    // Verified, but for another tenant than the path names.
    problem_of(
        client
            .get(gw.url("/t/acme/db/x"))
            .bearer_auth(token(&keys, "globex"))
            .send_ok()
            .await,
        403,
    )
    .await;

    // No token: the service decides (public endpoints stay reachable).
    echo_of(client.get(gw.url("/db/x")).send_ok().await).await;
    gw.stop().await;
}
