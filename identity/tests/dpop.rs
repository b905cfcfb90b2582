//! DPoP at the token endpoint (RFC 9449 §5, §8), on SQLite and PostgreSQL: a proof with the
//! server's nonce binds the access token (`cnf.jkt`, `token_type` DPoP) and a public client's
//! refresh token to the proof's key; a proof for another URL, a replayed one, one without the
//! nonce, or a refresh of a bound token without a proof of its key is refused. Bound tokens
//! are then accepted only with a proof (userinfo), and discovery names the algorithms.
//! Replicas on one database and one Redis act as one server: a nonce handed out by one is
//! accepted by another, and a proof used at one is refused at another; while Redis is away,
//! each replica still refuses the proofs it saw itself. A `TokenSource` with a DPoP key gets
//! bound tokens (the nonce round trip its own) and proves each call.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use tansu_shared::config::Secret;
use tansu_shared::testing::dpop::DpopKey;
use tansu_shared::testing::processes::Redis;

const EMAIL: &str = "ada@dpop.example";

/// (status, body, `DPoP-Nonce`) of a token request.
async fn token(
    inst: &Instance,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut req = inst.http.post(inst.url("/connect/token")).form(form);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let resp = req.send_ok().await;
    let nonce = resp
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), resp.json().await.unwrap(), nonce)
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn proofs_bind_tokens_to_the_clients_key() {
    for db in backends("dpop").await {
        let n = db.name();
        let inst = Instance::start(&db, "", |_| {}).await;
        let tid = inst.create_tenant("dpop-shop").await;
        inst.create_member(&tid, EMAIL, &["User"]).await;
        inst.tenant_app().await;
        let key = DpopKey::es256();
        let url = inst.url("/connect/token");

        let meta: Value = inst
            .http
            .get(inst.url("/.well-known/openid-configuration"))
            .send_ok()
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            meta["dpop_signing_alg_values_supported"],
            serde_json::json!(["ES256", "EdDSA"])
        );

        let (query, verifier) = auth_query("tenant-app", "openid offline_access", Some(&tid));
        let signed = inst.sign_in(&query, EMAIL, USER_PASSWORD).await;
        let code = query_param(&signed.location, "code").expect("a code");
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", "tenant-app"),
            ("code", code.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", verifier.as_str()),
        ];

        // Without the server's nonce: use_dpop_nonce, and the nonce to use.
        let (status, v, nonce) =
            token(&inst, &form, Some(&key.proof("POST", &url, None, None))).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("use_dpop_nonce")),
            "{n}: {v}"
        );
        let nonce = nonce.expect("a DPoP-Nonce header");
        // A proof for another URL, or signed for another method: invalid_dpop_proof (the code
        // stays unused).
        for bad in [
            key.proof("POST", &inst.url("/connect/userinfo"), None, Some(&nonce)),
            key.proof("GET", &url, None, Some(&nonce)),
            "not.a.proof".to_owned(),
        ] {
            let (status, v, _) = token(&inst, &form, Some(&bad)).await;
            assert_eq!(
                (status, v["error"].as_str()),
                (400, Some("invalid_dpop_proof")),
                "{n}: {v}"
            );
        }

        // A good proof: DPoP-bound tokens.
        let proof = key.proof("POST", &url, None, Some(&nonce));
        let (status, v, _) = token(&inst, &form, Some(&proof)).await;
        assert_eq!(status, 200, "{n}: {v}");
        assert_eq!(v["token_type"], "DPoP");
        let access = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["cnf"]["jkt"], key.jkt(), "{n}: cnf.jkt");
        let refresh_token = v["refresh_token"].as_str().unwrap().to_owned();
        let refresh = [
            ("grant_type", "refresh_token"),
            ("client_id", "tenant-app"),
            ("refresh_token", refresh_token.as_str()),
        ];

        // The same proof again: a replay.
        let (status, v, _) = token(&inst, &refresh, Some(&proof)).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{n}: replay {v}"
        );
        // The bound refresh token without a proof, or with another key's: refused.
        let (status, v, _) = token(&inst, &refresh, None).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{n}: no proof {v}"
        );
        let other = DpopKey::ed25519().proof("POST", &url, None, Some(&nonce));
        let (status, v, _) = token(&inst, &refresh, Some(&other)).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{n}: other key {v}"
        );
        // With a proof of its key: rotated, still bound.
        let (status, v, _) = token(
            &inst,
            &refresh,
            Some(&key.proof("POST", &url, None, Some(&nonce))),
        )
        .await;
        assert_eq!(status, 200, "{n}: refresh {v}");
        assert_eq!(v["token_type"], "DPoP");
        let access = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["cnf"]["jkt"], key.jkt());

        // The bound token at userinfo: not as a bearer token; with a proof (and the nonce).
        let userinfo = inst.url("/connect/userinfo");
        let resp = inst
            .http
            .get(&userinfo)
            .bearer_auth(&access)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 401, "{n}: a bound token as a bearer token");
        let at = |proof: String| {
            inst.http
                .get(&userinfo)
                .header("authorization", format!("DPoP {access}"))
                .header("DPoP", proof)
                .send_ok()
        };
        let resp = at(key.proof("GET", &userinfo, Some(&access), Some(&nonce))).await;
        assert_eq!(resp.status(), 200, "{n}: userinfo with a proof");
        let resp = at(key.proof("GET", &userinfo, Some(&access), None)).await;
        assert_eq!(resp.status(), 401, "{n}: userinfo without the nonce");
        assert!(resp.headers().get("dpop-nonce").is_some());
        let challenge = resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.contains("use_dpop_nonce"), "{n}: {challenge}");
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn replicas_share_nonces_and_the_record_of_used_proofs() {
    if !Redis::available() {
        tansu_shared::testing::skip_or_fail::<()>(
            "dpop (replicas)",
            "redis-server is not installed",
        );
        return;
    }
    for db in backends("dpop (replicas)").await {
        let n = db.name();
        let mut redis = Redis::start();
        let url = redis.url();
        let one = Instance::start(&db, "", |c| c.redis_url = Secret::new(url.clone())).await;
        // The second replica: the same issuer, database, master key and Redis.
        let issuer = one.issuer.clone();
        let two = Instance::start(&db, "", |c| {
            c.redis_url = Secret::new(url.clone());
            c.issuer = issuer.clone();
        })
        .await;
        let htu = format!("{issuer}connect/token");
        let key = DpopKey::es256();
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "admin.full"),
        ];
        let token_at = |inst: &Instance, proof: String| {
            inst.http
                .post(inst.url("/connect/token"))
                .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
                .header("DPoP", proof)
                .form(&form)
                .send_ok()
        };
        let answer = |resp: reqwest::Response| async move {
            let status = resp.status().as_u16();
            let nonce = resp
                .headers()
                .get("dpop-nonce")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = resp.json().await.unwrap();
            (status, v, nonce)
        };

        // Replica one hands out the nonce; replica two accepts it.
        let (status, v, nonce) =
            answer(token_at(&one, key.proof("POST", &htu, None, None)).await).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("use_dpop_nonce")),
            "{n}: {v}"
        );
        let nonce = nonce.expect("a DPoP-Nonce header");
        let proof = key.proof("POST", &htu, None, Some(&nonce));
        let (status, v, _) = answer(token_at(&two, proof.clone()).await).await;
        assert_eq!(
            status, 200,
            "{n}: replica two takes replica one's nonce: {v}"
        );
        assert_eq!(
            claims(v["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.jkt()
        );

        // The same proof at replica one: a replay, though replica one never saw it.
        let (status, v, _) = answer(token_at(&one, proof.clone()).await).await;
        assert_eq!(
            (status, v["error"].as_str(), v["error_description"].as_str()),
            (400, Some("invalid_dpop_proof"), Some("proof already used")),
            "{n}: {v}"
        );
        let (status, v, _) = answer(token_at(&two, proof).await).await;
        assert_eq!(status, 400, "{n}: and at replica two again: {v}");

        // Redis away: each replica still takes a fresh proof once, and refuses its replay.
        redis.stop_server();
        let proof = key.proof("POST", &htu, None, Some(&nonce));
        let (status, v, _) = answer(token_at(&one, proof.clone()).await).await;
        assert_eq!(status, 200, "{n}: without Redis: {v}");
        let (status, v, _) = answer(token_at(&one, proof).await).await;
        assert_eq!(
            (status, v["error_description"].as_str()),
            (400, Some("proof already used")),
            "{n}: without Redis, the replica's own record: {v}"
        );
        two.stop().await;
        one.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_token_source_binds_its_tokens_and_proves_each_call() {
    use tansu_shared::token_source::{ClientCredentials, TokenSource};
    let db = TestDb::sqlite().await;
    let inst = Instance::start(&db, "", |_| {}).await;
    let source = TokenSource::with_dpop(ClientCredentials {
        token_endpoint: inst.url("/connect/token").parse().unwrap(),
        client_id: tansu_identity::DEV_CLIENT_ID.into(),
        client_secret: Secret::new(DEV_SECRET),
        scope: "admin.full".into(),
    })
    .unwrap();
    // The issuer asks for its nonce first; the source answers it by itself.
    let token = source.token().await.unwrap();
    assert_eq!(claims(&token)["cnf"]["jkt"], source.jkt().unwrap());
    assert_eq!(source.token().await.unwrap(), token, "cached");

    let url = inst.url("/admin/tenants");
    let call = |authorization: String, proof: Option<String>| {
        let mut req = inst.http.get(&url).header("authorization", authorization);
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.send_ok()
    };
    let proof = source.proof("GET", &url, &token).unwrap().expect("a proof");
    let resp = call(source.authorization(&token), Some(proof.clone())).await;
    assert_eq!(resp.status(), 200, "a call with the source's proof");
    let resp = call(source.authorization(&token), Some(proof)).await;
    assert_eq!(resp.status(), 401, "the same proof again");
    let resp = call(format!("Bearer {token}"), None).await;
    assert_eq!(resp.status(), 401, "the bound token as a bearer token");
    let fresh = source.proof("GET", &url, &token).unwrap();
    let resp = call(source.authorization(&token), fresh).await;
    assert_eq!(resp.status(), 200, "each call its own proof");
    inst.stop().await;
}
