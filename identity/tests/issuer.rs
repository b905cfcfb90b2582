//! End-to-end tests of the issuer over real HTTP on 127.0.0.1, each on SQLite and (when
//! `TANSU_TEST_DATABASE_URL` is set) on PostgreSQL, each with a fresh database.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sqlx::Connection;

const SUITE: &str = "identity issuer";

#[tokio::test]
async fn discovery_uses_the_configured_issuer_and_jwks_is_cacheable() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "identity/", |_| {}).await;
        let issuer = id.issuer.clone();
        assert!(issuer.ends_with("/identity/"));
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            let resp = id.http.get(id.url(path)).send_ok().await;
            assert_eq!(resp.status(), 200, "{path}");
            let m: Value = resp.json().await.unwrap();
            assert_eq!(m["issuer"], issuer.as_str(), "{path} on {}", db.name());
            assert_eq!(m["token_endpoint"], format!("{issuer}connect/token"));
            assert_eq!(m["jwks_uri"], format!("{issuer}.well-known/jwks"));
            assert_eq!(
                m["authorization_endpoint"],
                format!("{issuer}connect/authorize")
            );
            assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(m["authorization_response_iss_parameter_supported"], true);
            assert_eq!(m["response_types_supported"], json!(["code"]));
            assert_eq!(m["subject_types_supported"], json!(["public"]));
            let grants = m["grant_types_supported"].as_array().unwrap();
            assert!(grants.contains(&json!("client_credentials")));
            assert!(!grants.contains(&json!("password")));
            assert!(!grants.contains(&json!("implicit")));
            let methods = m["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap();
            for method in ["client_secret_basic", "client_secret_post"] {
                assert!(methods.contains(&json!(method)));
            }
            let scopes = m["scopes_supported"].as_array().unwrap();
            assert!(scopes.contains(&json!("db.read")));
            assert!(
                scopes.contains(&json!("admin.full")),
                "dev mode has admin.full"
            );
            assert_eq!(
                m["id_token_signing_alg_values_supported"],
                json!(["RS256", "ES256", "EdDSA"])
            );
        }

        let (jwks, cache_control) = id.jwks().await;
        let max_age: u64 = cache_control
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no max-age in {cache_control:?}"));
        assert!(cache_control.contains("public"));
        assert!(
            max_age < id.state.config.key_rotation_lead_secs,
            "max-age {max_age} must be shorter than the lead time"
        );
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 3, "one current key per algorithm: {jwks}");
        for key in keys {
            assert_eq!(key["use"], "sig");
            assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
            assert!(key.get("d").is_none(), "no private parts in the JWKS");
            match key["alg"].as_str().unwrap() {
                "RS256" => {
                    assert_eq!(key["kty"], "RSA");
                    let n = key["n"].as_str().unwrap();
                    assert_eq!(n.len(), 342, "RSA-2048 modulus");
                    assert_eq!(key["e"], "AQAB");
                }
                "ES256" => {
                    assert_eq!(key["kty"], "EC");
                    assert_eq!(key["crv"], "P-256");
                }
                "EdDSA" => {
                    assert_eq!(key["kty"], "OKP");
                    assert_eq!(key["crv"], "Ed25519");
                }
                other => panic!("unexpected alg {other}"),
            }
        }
        // Health is served too, and unknown paths are problem+json 404s.
        let ready = id.http.get(id.url("/health/ready")).send_ok().await;
        assert_eq!(ready.status(), 200);
        let missing = id.http.get(id.url("/nope")).send_ok().await;
        assert_eq!(missing.status(), 404);
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn client_credentials_tokens_verify_with_the_shared_verifier() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let tenant = id.create_tenant("reporting").await;
        let (cid, secret) = id
            .create_client(json!({
                "name": "reporting service",
                "tenant_id": tenant,
                "grant_types": ["client_credentials"],
                "scopes": ["db.read", "db.write", "storage.read"],
            }))
            .await;
        let db_verifier = id.verifier("tansu.db").await;
        let storage_verifier = id.verifier("tansu.storage").await;

        // client_secret_basic, two resource servers.
        let resp = id
            .token_basic(&cid, &secret, Some("db.read storage.read"))
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "db.read storage.read");
        let token = body["access_token"].as_str().unwrap();
        let header = jws_header(token);
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "RS256");
        let claims = db_verifier
            .verify(token)
            .await
            .expect("verifies for tansu.db");
        assert_eq!(claims.iss, id.issuer);
        assert_eq!(claims.sub, cid);
        assert_eq!(claims.client_id, cid);
        assert_eq!(claims.scope, "db.read storage.read");
        assert!(claims.aud.contains("tansu.db") && claims.aud.contains("tansu.storage"));
        assert!(!claims.aud.contains("tansu.identity"));
        assert_eq!(claims.tid.as_deref(), Some(tenant.as_str()));
        assert_eq!(claims.nbf, Some(claims.iat));
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(uuid::Uuid::parse_str(&claims.jti).is_ok());
        storage_verifier
            .verify(token)
            .await
            .expect("verifies for tansu.storage");

        // client_secret_post; only db scopes → only tansu.db.
        let resp = id.token_post(&cid, &secret, Some("db.write")).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let claims = db_verifier.verify(token).await.unwrap();
        assert_eq!(claims.scope, "db.write");
        assert!(
            storage_verifier.verify(token).await.is_err(),
            "wrong audience"
        );

        // No scope requested: every allowed scope.
        let token = id.access_token(&cid, &secret, None).await;
        let claims = db_verifier.verify(&token).await.unwrap();
        assert_eq!(claims.scope, "db.read db.write storage.read");

        // Each selectable algorithm, with a per-client lifetime; tokens without a tenant.
        for alg in ["ES256", "EdDSA"] {
            let (cid, secret) = id
                .create_client(json!({
                    "name": format!("{alg} client"),
                    "grant_types": ["client_credentials"],
                    "scopes": ["db.read"],
                    "signing_alg": alg,
                    "access_token_lifetime_secs": 300,
                }))
                .await;
            let token = id.access_token(&cid, &secret, Some("db.read")).await;
            assert_eq!(jws_header(&token)["alg"], alg);
            let claims = db_verifier.verify(&token).await.expect(alg);
            assert_eq!(claims.exp - claims.iat, 300);
            assert_eq!(claims.tid, None);
        }

        // A scope the client may not have → invalid_scope (and a known-but-unknown one too).
        for scope in [
            "db.read secrets.read",
            "admin.full",
            "no.such.scope",
            "db.read \"x",
        ] {
            let resp = id.token_basic(&cid, &secret, Some(scope)).await;
            assert_eq!(resp.status(), 400, "{scope}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid_scope", "{scope}: {body}");
        }
        id.stop().await;
        db.cleanup().await;
    }
}

/// Asserts an RFC 6749 §5.2 error response.
async fn expect_error(resp: reqwest::Response, status: u16, error: &str, what: &str) {
    assert_eq!(resp.status().as_u16(), status, "{what}");
    assert_eq!(resp.headers()["cache-control"], "no-store", "{what}");
    if status == 401 {
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Basic"), "{what}: {challenge}");
    }
    let body: Value = resp
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert_eq!(body["error"], error, "{what}: {body}");
}

#[tokio::test]
async fn every_token_endpoint_error_is_rfc6749() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (cid, secret) = id
            .create_client(json!({
                "client_id": "svc.reports~1",
                "name": "reports",
                "grant_types": ["client_credentials"],
                "scopes": ["db.read"],
            }))
            .await;
        let token_url = id.url("/connect/token");
        let post = |body: &'static str| {
            id.http
                .post(&token_url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };

        // Basic credentials are form-urldecoded (RFC 6749 §2.3.1): "." sent as %2E works.
        let resp = id
            .http
            .post(&token_url)
            .basic_auth("svc%2Ereports~1", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "percent-encoded Basic client id");

        for (client, client_secret, what) in [
            ("nobody", secret.as_str(), "unknown client"),
            (cid.as_str(), "wrong", "wrong secret"),
        ] {
            let resp = id.token_basic(client, client_secret, None).await;
            expect_error(resp, 401, "invalid_client", &format!("{what} (basic)")).await;
            let resp = id.token_post(client, client_secret, None).await;
            expect_error(resp, 401, "invalid_client", &format!("{what} (post)")).await;
        }
        let basic = || id.http.post(&token_url).basic_auth(&cid, Some(&secret));
        let basic_body = |body: Vec<u8>| {
            basic()
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
        };
        let huge = format!("grant_type=client_credentials&pad={}", "a".repeat(1 << 20));
        let mut cases = vec![
            (
                post("grant_type=client_credentials"),
                401,
                "invalid_client",
                "no client authentication",
            ),
            (
                post("grant_type=client_credentials&client_id=svc.reports~1"),
                401,
                "invalid_client",
                "confidential client without a secret",
            ),
            (
                id.http
                    .post(&token_url)
                    .header("authorization", "Basic !!!notbase64")
                    .form(&[("grant_type", "client_credentials")]),
                401,
                "invalid_client",
                "malformed Basic",
            ),
            (
                basic().form(&[
                    ("grant_type", "client_credentials"),
                    ("client_secret", secret.as_str()),
                ]),
                400,
                "invalid_request",
                "two authentication methods",
            ),
            (
                basic().form(&[("scope", "db.read")]),
                400,
                "invalid_request",
                "missing grant_type",
            ),
            (
                basic().form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("redirect_uri", "https://a.example/cb"),
                ]),
                400,
                "unauthorized_client",
                "grant not registered for the client",
            ),
            (
                basic().json(&json!({"grant_type": "client_credentials"})),
                400,
                "invalid_request",
                "JSON body",
            ),
            (
                basic_body(b"grant_type=client_credentials&grant_type=client_credentials".to_vec()),
                400,
                "invalid_request",
                "repeated parameter",
            ),
            (
                basic_body(b"grant_type=client_credentials&x=\xff\xfe".to_vec()),
                400,
                "invalid_request",
                "non-UTF-8 body",
            ),
            (
                basic_body(huge.into_bytes()),
                400,
                "invalid_request",
                "oversized body",
            ),
        ];
        for grant in [
            "password",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
        ] {
            let req = basic().form(&[("grant_type", grant)]);
            cases.push((req, 400, "unsupported_grant_type", grant));
        }
        for (req, status, error, what) in cases {
            expect_error(req.send_ok().await, status, error, what).await;
        }
        // A client not registered for the grant.
        let resp = id
            .http
            .post(id.url("/admin/clients"))
            .bearer_auth(id.admin_token().await)
            .json(&json!({
                "client_id": "spa",
                "name": "single page app",
                "client_type": "public",
                "grant_types": ["authorization_code"],
                "redirect_uris": ["https://app.example/cb"],
                "scopes": ["openid"],
            }))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        assert!(
            v.get("client_secret").is_none(),
            "public clients have no secret"
        );
        for (body, status, error, what) in [
            (
                "grant_type=client_credentials&client_id=spa",
                400,
                "unauthorized_client",
                "public client asking for client_credentials",
            ),
            (
                "grant_type=client_credentials&client_id=spa&client_secret=x",
                401,
                "invalid_client",
                "public client presenting a secret",
            ),
        ] {
            expect_error(post(body).send_ok().await, status, error, what).await;
        }
        // GET is not a token request; never a 500 either way.
        let resp = id.http.get(&token_url).send_ok().await;
        assert_eq!(resp.status(), 405);
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn admin_api_manages_clients_and_is_protected() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let clients_url = id.url("/admin/clients");
        // No token, a token without admin.full, a token for another audience.
        let resp = id.http.get(&clients_url).send_ok().await;
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (cid, secret) = id
            .create_client(json!({"name": "plain", "grant_types": ["client_credentials"], "scopes": ["db.read", "secrets.read"]}))
            .await;
        let weak = id.access_token(&cid, &secret, Some("secrets.read")).await;
        let resp = id.http.get(&clients_url).bearer_auth(&weak).send_ok().await;
        assert_eq!(
            resp.status(),
            403,
            "tansu.identity audience but no admin.full"
        );
        let db_token = id.access_token(&cid, &secret, Some("db.read")).await;
        let resp = id
            .http
            .get(&clients_url)
            .bearer_auth(&db_token)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 401, "wrong audience");
        let resp = id
            .http
            .get(&clients_url)
            .bearer_auth("a.b.c")
            .send_ok()
            .await;
        assert_eq!(resp.status(), 401);

        let admin = id.admin_token().await;
        // Validation and conflicts.
        for (body, status) in [
            (json!({"name": "x", "grant_types": ["password"]}), 422),
            (
                json!({"name": "x", "grant_types": ["client_credentials"], "scopes": ["nope"]}),
                422,
            ),
            (
                json!({"name": "x", "grant_types": ["authorization_code"]}),
                422,
            ),
            (
                json!({"name": "x", "grant_types": ["authorization_code"], "redirect_uris": ["http://evil.example/cb"]}),
                422,
            ),
            (
                json!({"name": "x", "grant_types": ["client_credentials"], "signing_alg": "HS256"}),
                422,
            ),
            (
                json!({"name": "x", "grant_types": ["client_credentials"], "client_id": cid}),
                409,
            ),
            (
                json!({"name": "x", "grant_types": ["client_credentials"], "unknown": 1}),
                400,
            ),
        ] {
            let resp = id
                .http
                .post(&clients_url)
                .bearer_auth(&admin)
                .json(&body)
                .send_ok()
                .await;
            assert_eq!(resp.status().as_u16(), status, "{body}");
            assert_eq!(resp.headers()["content-type"], "application/problem+json");
        }
        let resp = id
            .http
            .post(&clients_url)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body("{not json")
            .send_ok()
            .await;
        assert_eq!(resp.status(), 400);

        // List, get, update.
        let list: Value = id
            .http
            .get(&clients_url)
            .bearer_auth(&admin)
            .send_json()
            .await;
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&cid.as_str()) && ids.contains(&"tansu-dashboard"),
            "{list}"
        );
        assert!(!list.to_string().contains("secret_hash"));
        let one_url = id.url(&format!("/admin/clients/{cid}"));
        let got: Value = id.http.get(&one_url).bearer_auth(&admin).send_json().await;
        assert_eq!(got["client_type"], "confidential");
        assert!(got.get("client_secret").is_none());
        let resp = id
            .http
            .patch(&one_url)
            .bearer_auth(&admin)
            .json(&json!({"scopes": ["db.read", "db.write"], "access_token_lifetime_secs": 120}))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let token = id.access_token(&cid, &secret, Some("db.write")).await;
        let claims = id.verifier("tansu.db").await.verify(&token).await.unwrap();
        assert_eq!(claims.exp - claims.iat, 120);
        let resp = id.token_basic(&cid, &secret, Some("secrets.read")).await;
        assert_eq!(resp.status(), 400, "scope removed by the update");

        // Rotate the secret: the old one stops working at once.
        let resp = id
            .http
            .post(id.url(&format!("/admin/clients/{cid}/secret")))
            .bearer_auth(&admin)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let rotated: Value = resp.json().await.unwrap();
        let new_secret = rotated["client_secret"].as_str().unwrap();
        assert!(new_secret.len() >= 43, "256 bits");
        assert_eq!(id.token_basic(&cid, &secret, None).await.status(), 401);
        assert_eq!(id.token_basic(&cid, new_secret, None).await.status(), 200);

        // Delete.
        let resp = id.http.delete(&one_url).bearer_auth(&admin).send_ok().await;
        assert_eq!(resp.status(), 204);
        assert_eq!(
            id.http
                .get(&one_url)
                .bearer_auth(&admin)
                .send_ok()
                .await
                .status(),
            404
        );
        assert_eq!(
            id.http
                .delete(&one_url)
                .bearer_auth(&admin)
                .send_ok()
                .await
                .status(),
            404
        );
        assert_eq!(id.token_basic(&cid, new_secret, None).await.status(), 401);
        id.stop().await;

        // The stored secret is a hash, never the secret.
        let raw = raw_secret_hash(&db, "tansu-dashboard").await;
        assert_eq!(raw.len(), 32);
        assert!(
            !raw.windows(8)
                .any(|w| DEV_SECRET.as_bytes().windows(8).any(|s| s == w))
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn outside_dev_mode_nothing_is_seeded_and_admin_full_does_not_exist() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| c.dev_mode = false).await;
        let m: Value = id
            .http
            .get(id.url("/.well-known/openid-configuration"))
            .send_json()
            .await;
        assert!(
            !m["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("admin.full"))
        );
        expect_error(
            id.token_basic("tansu-dashboard", DEV_SECRET, None).await,
            401,
            "invalid_client",
            "no dev client",
        )
        .await;
        assert!(!db.data_dir().join("tansu-dashboard.secret").exists());
        id.stop().await;
        db.cleanup().await;
    }
}

async fn raw_secret_hash(db: &TestDb, client_id: &str) -> Vec<u8> {
    let sql = "SELECT secret_hash FROM clients WHERE client_id = $1";
    if db.name() == "postgres" {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(client_id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(client_id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

async fn raw_keys(db: &TestDb) -> Vec<(String, String, Vec<u8>, i64)> {
    let sql =
        "SELECT kid, alg, private_key_enc, activate_at FROM signing_keys ORDER BY activate_at";
    if db.name() == "postgres" {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    }
}

#[tokio::test]
async fn private_keys_are_stored_encrypted() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (jwks, _) = id.jwks().await;
        id.stop().await;
        let rows = raw_keys(&db).await;
        assert_eq!(rows.len(), 3);
        let master = tansu_identity::crypto::MasterKey::from_base64(&master_key_b64()).unwrap();
        for (kid, alg, sealed, _) in rows {
            // Not PEM, not parseable as a key (its first byte is the nonce's: random, so it
            // says nothing about DER by itself).
            assert!(!String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"));
            let alg = tansu_identity::keys::SigningAlg::parse(&alg).unwrap();
            assert!(tansu_identity::keys::SigningPair::from_pkcs8(alg, &sealed).is_err());
            // Yet it opens under the master key (bound to its kid) to the key the JWKS shows.
            let aad = format!("signing_keys:{kid}:{}", alg.as_str());
            let der = master
                .open(&sealed, aad.as_bytes())
                .expect("opens with the master key");
            assert_eq!(der[0], 0x30);
            // The key's DER appears nowhere in what is stored, not even in part.
            assert!(
                !sealed.windows(32).any(|w| der.windows(32).any(|d| d == w)),
                "{kid}: 32 bytes of the key's DER are stored in the clear"
            );
            assert!(master.open(&sealed, b"signing_keys:other").is_err());
            let pair = tansu_identity::keys::SigningPair::from_pkcs8(alg, &der).unwrap();
            let published = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid.as_str())
                .unwrap();
            assert_eq!(&pair.public_jwk(&kid, alg), published);
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn rotation_publishes_before_signing_and_old_tokens_keep_verifying() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (cid, secret) = id
            .create_client(json!({"name": "svc", "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        let verifier = id.verifier("tansu.db").await;
        let before = id.access_token(&cid, &secret, Some("db.read")).await;
        let old_kid = kid_of(&before);
        verifier.verify(&before).await.unwrap();

        let admin = id.admin_token().await;
        let resp = id
            .http
            .post(id.url("/admin/keys/rotate-now"))
            .bearer_auth(&admin)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 202);
        // The new key was stored before this answer and signs >= 4 s (the lead) after that.
        let accepted = std::time::Instant::now();
        let within_lead = || accepted.elapsed() < Duration::from_secs(3);
        let body: Value = resp.json().await.unwrap();
        let new_kid = body["pending"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["alg"] == "RS256")
            .unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(new_kid, old_kid);

        // Published now, next to the current key; not signing yet (lead time 4 s).
        let (jwks, _) = id.jwks().await;
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(
            kids.contains(&new_kid.as_str()) && kids.contains(&old_kid.as_str()),
            "{jwks}"
        );
        let during = id.access_token(&cid, &secret, Some("db.read")).await;
        if within_lead() {
            assert_eq!(
                kid_of(&during),
                old_kid,
                "the new key must not sign before its lead time"
            );
        }
        let policies: Value = id
            .http
            .get(id.url("/admin/keys/policies"))
            .bearer_auth(&admin)
            .send_json()
            .await;
        assert_eq!(policies["rotation_period_secs"], 30 * 86_400);
        assert_eq!(policies["grace_secs"], 7 * 86_400);
        let state_of = |kid: &str| {
            policies["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid)
                .unwrap()["state"]
                .clone()
        };
        if within_lead() {
            assert_eq!(state_of(&new_kid), "next");
            assert_eq!(state_of(&old_kid), "current");
        }

        // Once the lead time has passed, the new key signs (bounded wait).
        let after = eventually(Duration::from_secs(30), "the new key to sign", || async {
            let t = id.access_token(&cid, &secret, Some("db.read")).await;
            (kid_of(&t) == new_kid).then_some(t)
        })
        .await;
        // The verifier learned the new key from the JWKS; old tokens keep verifying (grace).
        verifier.verify(&after).await.expect("token of the new key");
        verifier
            .verify(&before)
            .await
            .expect("token signed before the rotation");
        verifier
            .verify(&during)
            .await
            .expect("token signed during the lead time");
        let (jwks, _) = id.jwks().await;
        assert!(
            jwks.to_string().contains(&old_kid),
            "retiring key stays in the JWKS"
        );
        let policies: Value = id
            .http
            .get(id.url("/admin/keys/policies"))
            .bearer_auth(&admin)
            .send_json()
            .await;
        let state_of = |kid: &str| {
            policies["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid)
                .unwrap()["state"]
                .clone()
        };
        assert_eq!(state_of(&new_kid), "current");
        assert_eq!(state_of(&old_kid), "retiring");

        // A restart (another instance on the same database) signs with the same key.
        id.stop().await;
        let again = Instance::start(&db, "", |_| {}).await;
        let t = again.access_token(&cid, &secret, Some("db.read")).await;
        assert_eq!(kid_of(&t), new_kid);
        again.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_rotations_on_one_database_rotate_once() {
    for db in backends(SUITE).await {
        // Three replicas sharing the database (and the master key).
        let a = Instance::start(&db, "", |_| {}).await;
        let b = Instance::start(&db, "", |_| {}).await;
        let c = Instance::start(&db, "", |_| {}).await;
        assert_eq!(
            raw_keys(&db).await.len(),
            3,
            "replicas share the first keys"
        );
        let tokens = [
            a.admin_token().await,
            b.admin_token().await,
            c.admin_token().await,
        ];
        let replicas = [&a, &b, &c];
        let requests = (0..9).map(|i| {
            let r = replicas[i % 3];
            let t = tokens[i % 3].clone();
            async move {
                r.http
                    .post(r.url("/admin/keys/rotate-now"))
                    .bearer_auth(t)
                    .send_ok()
                    .await
                    .status()
            }
        });
        let statuses = futures::future::join_all(requests).await;
        assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
        let rows = raw_keys(&db).await;
        for alg in ["RS256", "ES256", "EdDSA"] {
            let n = rows.iter().filter(|r| r.1 == alg).count();
            assert_eq!(n, 2, "{alg}: exactly one new key on {}", db.name());
        }
        // The lease itself: of simultaneous takers exactly one wins.
        let now = tansu_identity::store::now_ms();
        let takers = (0..8).map(|i| {
            let store = replicas[i % 3].state.store.clone();
            async move {
                store
                    .try_acquire_lease("test-lease", &format!("holder-{i}"), now, now + 60_000)
                    .await
                    .unwrap()
            }
        });
        let won = futures::future::join_all(takers)
            .await
            .into_iter()
            .filter(|w| *w)
            .count();
        assert_eq!(won, 1);
        // An expired lease can be taken over.
        assert!(
            a.state
                .store
                .try_acquire_lease("test-lease", "late", now + 60_000, now + 120_000)
                .await
                .unwrap()
        );
        a.stop().await;
        b.stop().await;
        c.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn introspection_and_revocation() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (rs, rs_secret) = id
            .create_client(json!({"name": "resource server", "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        let (app, app_secret) = id
            .create_client(json!({"name": "app", "tenant_id": id.create_tenant("introspected").await, "grant_types": ["client_credentials"], "scopes": ["db.read", "storage.read"]}))
            .await;
        let token = id
            .access_token(&app, &app_secret, Some("db.read storage.read"))
            .await;
        let introspect = |who: &str, secret: &str, token: &str| {
            id.http
                .post(id.url("/connect/introspect"))
                .basic_auth(form_encode(who), Some(form_encode(secret)))
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send_ok()
        };

        let resp = introspect(&rs, &rs_secret, &token).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["active"], true, "{v}");
        assert_eq!(v["client_id"], app.as_str());
        assert_eq!(v["scope"], "db.read storage.read");
        assert_eq!(v["iss"], id.issuer.as_str());
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["tid"].is_string() && v["exp"].is_i64() && v["jti"].is_string());

        // Garbage and foreign tokens: exactly {"active": false}.
        for bad in ["nonsense", "a.b.c", &format!("{token}x")] {
            let v: Value = introspect(&rs, &rs_secret, bad).await.json().await.unwrap();
            assert_eq!(v, json!({"active": false}), "{bad}");
        }
        // Introspection needs client authentication; a missing token is invalid_request.
        expect_error(
            introspect(&rs, "wrong", &token).await,
            401,
            "invalid_client",
            "bad secret",
        )
        .await;
        expect_error(
            id.http
                .post(id.url("/connect/introspect"))
                .form(&[("token", token.as_str())])
                .send_ok()
                .await,
            401,
            "invalid_client",
            "anonymous introspection",
        )
        .await;
        expect_error(
            id.http
                .post(id.url("/connect/introspect"))
                .basic_auth(&rs, Some(&rs_secret))
                .form(&[("token_type_hint", "access_token")])
                .send_ok()
                .await,
            400,
            "invalid_request",
            "no token",
        )
        .await;

        // Revocation: another client may not revoke the app's token; the app may.
        let revoke = |who: &str, secret: &str, token: &str| {
            id.http
                .post(id.url("/connect/revocation"))
                .basic_auth(form_encode(who), Some(form_encode(secret)))
                .form(&[("token", token)])
                .send_ok()
        };
        expect_error(
            revoke(&rs, &rs_secret, &token).await,
            400,
            "unauthorized_client",
            "foreign token",
        )
        .await;
        let v: Value = introspect(&rs, &rs_secret, &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["active"], true, "still active after a refused revocation");
        let resp = revoke(&app, &app_secret, &token).await;
        assert_eq!(resp.status(), 200);
        let v: Value = introspect(&rs, &rs_secret, &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v, json!({"active": false}), "revoked");
        // Revoking again, or revoking garbage, is fine (RFC 7009 §2.2).
        assert_eq!(revoke(&app, &app_secret, &token).await.status(), 200);
        assert_eq!(revoke(&app, &app_secret, "garbage").await.status(), 200);
        expect_error(
            revoke(&app, "wrong", &token).await,
            401,
            "invalid_client",
            "revocation with a bad secret",
        )
        .await;
        // Other tokens of the same client stay active.
        let other = id.access_token(&app, &app_secret, Some("db.read")).await;
        let v: Value = introspect(&rs, &rs_secret, &other)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["active"], true);
        id.stop().await;
        db.cleanup().await;
    }
}

/// Scheduled rotation by the background maintenance, under continuous issuance and
/// verification: a verifier that only refreshes on the JWKS `max-age` (its unknown-kid refetch
/// is effectively off) sees zero failures, because every key is published before it signs.
#[tokio::test]
async fn scheduled_rotation_under_load_has_zero_verification_failures() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| {
            c.key_rotation_period_secs = 7;
            c.key_rotation_lead_secs = 5;
            c.key_check_interval_secs = 1;
        })
        .await;
        let maintenance = id.state.spawn_maintenance();
        let (cid, secret) = id
            .create_client(json!({"name": "svc", "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        let mut vc = tansu_shared::auth::VerifierConfig::new(id.issuer.clone(), "tansu.db");
        vc.discovery_url = Some(id.url("/.well-known/openid-configuration").parse().unwrap());
        vc.min_refresh = Duration::from_secs(1);
        vc.min_refetch_interval = Duration::from_secs(3600);
        let verifier = tansu_shared::auth::Verifier::new(vc).await.unwrap();

        let first_kid = kid_of(&id.access_token(&cid, &secret, Some("db.read")).await);
        let mut kids = vec![first_kid];
        let mut issued = 0u32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        // Until two rotations have happened (three distinct signing keys), bounded in time.
        while kids.len() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no rotation within 40 s: {kids:?}"
            );
            let token = id.access_token(&cid, &secret, Some("db.read")).await;
            issued += 1;
            if let Err(e) = verifier.verify(&token).await {
                panic!("verification failed after {issued} tokens ({kids:?}): {e}");
            }
            let kid = kid_of(&token);
            if !kids.contains(&kid) {
                kids.push(kid);
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // pacing, not synchronisation
        }
        assert!(issued > 10);
        maintenance.abort();
        id.stop().await;
        db.cleanup().await;
    }
}

/// The dev stack's contract: `serve_on` with a bound listener, the gateway-facing issuer, an
/// embedded SQLite database under the data dir and dev mode, nothing else configured.
#[tokio::test]
async fn serve_on_in_dev_mode_bootstraps_the_data_dir() {
    tansu_shared::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("identity");
    let issuer = "https://127.0.0.1:8443/identity/";
    let mut kids = Vec::new();
    for run in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = tansu_identity::Config {
            listen: addr.to_string(),
            issuer: issuer.into(),
            data_dir: data_dir.clone(),
            database_url: tansu_shared::config::Secret::new(format!(
                "sqlite://{}/identity.db",
                data_dir.display()
            )),
            dev_mode: true,
            dev_admin_password: tansu_shared::config::Secret::new("dev-admin-password-0123"),
            ..tansu_identity::Config::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(tansu_identity::serve_on(listener, config, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::new();
        let base = format!("http://{addr}");
        let meta: Value = eventually(Duration::from_secs(30), "the service to answer", || {
            let http = http.clone();
            let url = format!("{base}/.well-known/openid-configuration");
            async move { http.get(url).send().await.ok()?.json().await.ok() }
        })
        .await;
        assert_eq!(meta["issuer"], issuer);
        assert_eq!(meta["token_endpoint"], format!("{issuer}connect/token"));
        #[cfg(unix)]
        for file in ["master.key", "tansu-dashboard.secret"] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data_dir.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file} on run {run}");
        }
        let secret = std::fs::read_to_string(data_dir.join("tansu-dashboard.secret")).unwrap();
        let resp = http
            .post(format!("{base}/connect/token"))
            .basic_auth("tansu-dashboard", Some(secret.trim()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full db.read"),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200, "run {run}");
        let body: Value = resp.json().await.unwrap();
        kids.push(kid_of(body["access_token"].as_str().unwrap()));
        if run == 0 {
            // Behind the gateway: cookies are Secure and scoped to the issuer's path, and the
            // login form posts to the public URL.
            let admin = body["access_token"].as_str().unwrap();
            let resp = http
                .post(format!("{base}/admin/clients"))
                .bearer_auth(admin)
                .json(&json!({"client_id": "spa", "name": "spa", "client_type": "public", "first_party": true,
                              "grant_types": ["authorization_code"], "redirect_uris": ["https://127.0.0.1:8443/app/cb"],
                              "scopes": ["openid"]}))
                .send_ok().await;
            assert_eq!(resp.status(), 201);
            let (_, challenge) = pkce();
            let resp = http
                .get(format!("{base}/connect/authorize?response_type=code&client_id=spa&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256", form_encode("https://127.0.0.1:8443/app/cb")))
                .send_ok().await;
            assert_eq!(resp.status(), 200);
            let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
            assert!(
                cookie.contains("; Secure")
                    && cookie.contains("Path=/identity/")
                    && cookie.contains("HttpOnly"),
                "{cookie}"
            );
            let html = resp.text().await.unwrap();
            assert!(
                html.contains("action=\"https://127.0.0.1:8443/identity/login\""),
                "{html}"
            );
        }
        let _ = stop.send(());
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        kids[0], kids[1],
        "a restart keeps the key ring and the master key"
    );
}

/// A client assertion (RFC 7523) signed with `pair`.
fn assertion(
    pair: &tansu_identity::keys::SigningPair,
    alg: &str,
    kid: &str,
    claims: Value,
) -> String {
    use base64::Engine;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let signing_input = format!(
        "{}.{}",
        b64(&json!({"alg": alg, "typ": "JWT", "kid": kid})),
        b64(&claims)
    );
    let sig = pair.sign(signing_input.as_bytes()).unwrap();
    format!(
        "{signing_input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    use tansu_identity::keys::{SigningAlg, SigningPair};
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (pair, _) = SigningPair::generate(SigningAlg::ES256).unwrap();
        let (other, _) = SigningPair::generate(SigningAlg::ES256).unwrap();
        let jwk = pair.public_jwk("client-key-1", SigningAlg::ES256);
        let resp = id
            .http
            .post(id.url("/admin/clients"))
            .bearer_auth(id.admin_token().await)
            .json(&json!({
                "client_id": "signed-client",
                "name": "signs its requests",
                "grant_types": ["client_credentials"],
                "scopes": ["db.read"],
                "jwks": {"keys": [jwk]},
            }))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        assert!(created.get("client_secret").is_none());
        assert_eq!(
            created["token_endpoint_auth_methods"],
            json!(["private_key_jwt"])
        );
        let token_url = format!("{}connect/token", id.issuer);
        let now = tansu_identity::store::now_ms() / 1000;
        let claims = |aud: &str, exp: i64| {
            json!({"iss": "signed-client", "sub": "signed-client", "aud": aud, "exp": exp,
                   "iat": now, "jti": uuid::Uuid::now_v7().to_string()})
        };
        let request = |jwt: String, extra: Vec<(&'static str, String)>| {
            let mut form = vec![
                ("grant_type", "client_credentials".to_owned()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion", jwt),
            ];
            form.extend(extra);
            id.http.post(id.url("/connect/token")).form(&form).send_ok()
        };

        let good = assertion(&pair, "ES256", "client-key-1", claims(&token_url, now + 60));
        let resp = request(good.clone(), vec![]).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let claims_out = id
            .verifier("tansu.db")
            .await
            .verify(body["access_token"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(claims_out.client_id, "signed-client");

        expect_error(
            request(good, vec![]).await,
            401,
            "invalid_client",
            "replayed assertion",
        )
        .await;
        for (what, jwt) in [
            (
                "other key",
                assertion(
                    &other,
                    "ES256",
                    "client-key-1",
                    claims(&token_url, now + 60),
                ),
            ),
            (
                "wrong audience",
                assertion(
                    &pair,
                    "ES256",
                    "client-key-1",
                    claims("https://elsewhere.example/token", now + 60),
                ),
            ),
            (
                "expired",
                assertion(
                    &pair,
                    "ES256",
                    "client-key-1",
                    claims(&token_url, now - 120),
                ),
            ),
            (
                "lives too long",
                assertion(
                    &pair,
                    "ES256",
                    "client-key-1",
                    claims(&token_url, now + 7200),
                ),
            ),
            (
                "alg not the key's",
                assertion(&pair, "RS256", "client-key-1", claims(&token_url, now + 60)),
            ),
            ("garbage", "a.b.c".to_owned()),
        ] {
            expect_error(request(jwt, vec![]).await, 401, "invalid_client", what).await;
        }
        let fresh = assertion(&pair, "ES256", "client-key-1", claims(&token_url, now + 60));
        expect_error(
            request(fresh.clone(), vec![("client_secret", "x".into())]).await,
            400,
            "invalid_request",
            "assertion and secret",
        )
        .await;
        expect_error(
            id.http
                .post(id.url("/connect/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:other"),
                    ("client_assertion", fresh.as_str()),
                ])
                .send_ok()
                .await,
            401,
            "invalid_client",
            "unknown assertion type",
        )
        .await;
        // The same client introspects with an assertion addressed to the issuer.
        let resp = id
            .http
            .post(id.url("/connect/introspect"))
            .form(&[
                ("token", body["access_token"].as_str().unwrap()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                (
                    "client_assertion",
                    &assertion(&pair, "ES256", "client-key-1", claims(&id.issuer, now + 60)),
                ),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["active"], true);
        // It has no secret to rotate; a private key in the JWK Set is refused.
        let admin = id.admin_token().await;
        let resp = id
            .http
            .post(id.url("/admin/clients/signed-client/secret"))
            .bearer_auth(&admin)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 409);
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        let resp = id
            .http
            .post(id.url("/admin/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bad", "grant_types": ["client_credentials"], "jwks": {"keys": [private]}}))
            .send_ok().await;
        assert_eq!(resp.status(), 422);
        id.stop().await;
        db.cleanup().await;
    }
}

/// Whatever arrives — any method, content type or body — nothing answers 5xx.
#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let paths = [
            "/connect/token",
            "/connect/introspect",
            "/connect/revocation",
            "/connect/authorize",
            "/connect/userinfo",
            "/connect/endsession",
            "/login",
            "/consent",
            "/admin/clients",
            "/admin/clients/x",
            "/admin/clients/x/secret",
            "/admin/keys/rotate-now",
            "/admin/keys/policies",
            "/.well-known/jwks",
        ];
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("application/x-www-form-urlencoded", b"".to_vec()),
            (
                "application/x-www-form-urlencoded",
                b"%%%&&&===&grant_type".to_vec(),
            ),
            (
                "application/x-www-form-urlencoded",
                b"grant_type=refresh_token&refresh_token=\xff".to_vec(),
            ),
            (
                "application/x-www-form-urlencoded",
                b"grant_type=authorization_code&code=x&client_id=tansu-dashboard".to_vec(),
            ),
            (
                "application/x-www-form-urlencoded",
                b"request=client_id%3Dtansu-dashboard&csrf=x&decision=allow".to_vec(),
            ),
            ("application/json", b"{\"name\": 1}".to_vec()),
            ("application/json", b"[".to_vec()),
            ("text/plain", vec![0u8; 70_000]),
        ];
        let auths = [
            None,
            Some("Basic Og=="),
            Some("Bearer x.y.z"),
            Some("Basic dGFuc3UtZGFzaGJvYXJkOg=="),
        ];
        let http = no_redirects();
        // Prometheus counters (the first scrape installs the recorder).
        let _ = id.http.get(id.url("/metrics")).send_ok().await;
        let _ = id.admin_token().await;
        let _ = id.token_basic("nobody", "x", None).await;
        let text = id.http.get(id.url("/metrics")).send_text().await;
        assert!(
            text.contains("identity_tokens_issued_total{grant=\"client_credentials\"}"),
            "{text}"
        );
        assert!(
            text.contains("identity_token_errors_total{error=\"invalid_client\"}"),
            "{text}"
        );
        for path in paths {
            for method in [
                reqwest::Method::GET,
                reqwest::Method::POST,
                reqwest::Method::PATCH,
                reqwest::Method::DELETE,
            ] {
                for (ct, body) in &bodies {
                    for auth in auths {
                        let mut req = http
                            .request(
                                method.clone(),
                                id.url(&format!(
                                    "{path}?client_id=%ff&redirect_uri=x&id_token_hint=a.b.c"
                                )),
                            )
                            .header("content-type", *ct)
                            .body(body.clone());
                        if let Some(a) = auth {
                            req = req.header("authorization", a);
                        }
                        let status = req.send_ok().await.status();
                        assert!(
                            status.as_u16() < 500,
                            "{method} {path} {ct} {auth:?}: {status}"
                        );
                    }
                }
            }
        }
        id.stop().await;
        db.cleanup().await;
    }
}

/// A replaced key stays in the JWKS for the grace period and then leaves it (and the database).
/// Time is moved by rewriting the stored activation times, not by waiting days.
#[tokio::test]
async fn retired_keys_leave_the_jwks_after_the_grace_period() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let (cid, secret) = id
            .create_client(json!({"name": "svc", "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        let old = kid_of(&id.access_token(&cid, &secret, Some("db.read")).await);
        let rotation = id.state.keys.rotate_now().await.unwrap();
        let new = rotation
            .pending
            .iter()
            .find(|p| p.1 == tansu_identity::keys::SigningAlg::RS256)
            .unwrap()
            .0
            .clone();
        let day = 86_400_000;
        let now = tansu_identity::store::now_ms();
        let store = &id.state.store;

        // The new key took over 6 days ago: the old one is retiring, still published.
        store
            .set_signing_key_activation(&old, now - 10 * day)
            .await
            .unwrap();
        store
            .set_signing_key_activation(&new, now - 6 * day)
            .await
            .unwrap();
        id.state.keys.reload().await.unwrap();
        let (jwks, _) = id.jwks().await;
        assert!(jwks.to_string().contains(&old), "within the grace period");
        assert_eq!(
            kid_of(&id.access_token(&cid, &secret, Some("db.read")).await),
            new
        );
        id.state.keys.maintain().await.unwrap();
        assert!(
            raw_keys(&db).await.iter().any(|k| k.0 == old),
            "kept during the grace period"
        );

        // 8 days ago (grace 7 days): gone from the JWKS, and removed by the maintenance.
        store
            .set_signing_key_activation(&new, now - 8 * day)
            .await
            .unwrap();
        id.state.keys.reload().await.unwrap();
        let (jwks, _) = id.jwks().await;
        assert!(!jwks.to_string().contains(&old), "past the grace period");
        assert!(jwks.to_string().contains(&new));
        id.state.keys.maintain().await.unwrap();
        assert!(!raw_keys(&db).await.iter().any(|k| k.0 == old), "deleted");
        assert_eq!(
            kid_of(&id.access_token(&cid, &secret, Some("db.read")).await),
            new
        );
        id.stop().await;
        db.cleanup().await;
    }
}
