//! DPoP-bound access tokens (RFC 9449 §7) at the database service, on SQLite and PostgreSQL:
//! a token with `cnf.jkt` is accepted only with the `DPoP` scheme and a proof of its key for
//! this very request (method, URL, the token's hash, a fresh `iat`), once; every other
//! presentation is refused with a `DPoP` challenge (`invalid_dpop_proof`). Unbound tokens work
//! as before.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tansu_shared::auth::Confirmation;
use tansu_shared::testing::dpop::DpopKey;
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::issuer::sign;

const T: uuid::Uuid = TENANT_A;

/// (status, `WWW-Authenticate`) of `GET /api/collections` with these headers.
async fn call(env: &Env, method: Method, auth: &str, proof: Option<&str>) -> (StatusCode, String) {
    let mut r = env
        .http
        .request(method, env.url("/api/collections"))
        .header("authorization", auth)
        .header("x-tansu-tenant", T.to_string());
    if let Some(p) = proof {
        r = r.header("dpop", p);
    }
    let resp = r.json(&json!({ "name": "more" })).send_ok().await;
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status(), challenge)
}

fn refused_as_invalid_proof(n: &str, what: &str, (status, challenge): (StatusCode, String)) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{n}: {what}");
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{n}: {what}: {challenge}"
    );
}

#[tokio::test]
async fn a_dpop_bound_token_is_accepted_only_with_a_valid_proof_of_its_key() {
    for env in envs("database dpop").await {
        let n = env.ready(T, "notes").await;
        let key = DpopKey::es256();
        let mut claims =
            env.issuer
                .claims_for("tansu.db", Some(&T.to_string()), "db.read db.write");
        claims.cnf = Some(Confirmation { jkt: key.jkt() });
        let token = sign(&env.key, &claims);
        let dpop = format!("DPoP {token}");
        let url = env.url("/api/collections");
        let get = Method::GET;

        // The token with a proof for this request: accepted.
        let proof = key.proof("GET", &url, Some(&token), None);
        let (status, _) = call(&env, get.clone(), &dpop, Some(&proof)).await;
        assert_eq!(status, StatusCode::OK, "{n}: a valid proof");
        // The same proof again: a replay.
        refused_as_invalid_proof(
            n,
            "replayed proof",
            call(&env, get.clone(), &dpop, Some(&proof)).await,
        );
        // A new proof of the same key: accepted (each proof once).
        let again = key.proof("GET", &url, Some(&token), None);
        assert_eq!(
            call(&env, get.clone(), &dpop, Some(&again)).await.0,
            StatusCode::OK,
            "{n}"
        );

        // As a bearer token, or without a proof: refused.
        refused_as_invalid_proof(
            n,
            "as a bearer token",
            call(&env, get.clone(), &format!("Bearer {token}"), None).await,
        );
        refused_as_invalid_proof(n, "no proof", call(&env, get.clone(), &dpop, None).await);
        // A proof for another URL, another method, without or with another token's hash, of
        // another key, too old, or not a DPoP proof at all: refused.
        let changes = env.url("/api/changes");
        for (what, proof) in [
            ("another URL", key.proof("GET", &changes, Some(&token), None)),
            ("another method", key.proof("POST", &url, Some(&token), None)),
            ("no ath", key.proof("GET", &url, None, None)),
            ("another token's ath", key.proof("GET", &url, Some(&env.rw(T)), None)),
            ("another key", DpopKey::ed25519().proof("GET", &url, Some(&token), None)),
            (
                "iat ten minutes ago",
                key.sign(&json!({
                    "jti": "old", "htm": "GET", "htu": url, "ath": tansu_shared::auth::dpop::token_hash(&token),
                    "iat": now() - 600,
                })),
            ),
            ("the access token itself", token.clone()),
        ] {
            refused_as_invalid_proof(n, what, call(&env, get.clone(), &dpop, Some(&proof)).await);
        }
        // A POST with a proof for POST: accepted (201), so the method really is compared.
        let post = key.proof("POST", &url, Some(&token), None);
        assert_eq!(
            call(&env, Method::POST, &dpop, Some(&post)).await.0,
            StatusCode::CREATED,
            "{n}"
        );

        // An unbound token: as a bearer token as before; with the DPoP scheme, refused.
        let plain = env.rw(T);
        assert_eq!(
            call(&env, get.clone(), &format!("Bearer {plain}"), None)
                .await
                .0,
            StatusCode::OK,
            "{n}"
        );
        let proof = key.proof("GET", &url, Some(&plain), None);
        let (status, challenge) =
            call(&env, get.clone(), &format!("DPoP {plain}"), Some(&proof)).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{n}: an unbound token as DPoP"
        );
        assert!(challenge.contains("invalid_token"), "{n}: {challenge}");
        env.finish().await;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
