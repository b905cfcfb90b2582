//! The verifier against a real JWKS server with real signed tokens.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tansu_shared::auth::{AuthError, Verifier, VerifierConfig};
use tansu_shared::testing::issuer::*;
use url::Url;

fn config(issuer: &TestIssuer) -> VerifierConfig {
    VerifierConfig::new(issuer.issuer.clone(), AUDIENCE)
}

async fn verifier(issuer: &TestIssuer) -> Verifier {
    Verifier::new(config(issuer)).await.unwrap()
}

fn invalid(r: Result<tansu_shared::auth::AccessClaims, AuthError>) -> &'static str {
    match r {
        Err(AuthError::InvalidToken(why)) => why,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn valid_rs256_es256_and_eddsa_tokens_verify() {
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    let issuer = TestIssuer::start(&[&rsa, &ec, &ed]).await;
    let v = verifier(&issuer).await;
    assert_eq!(v.cached_keys(), 3);
    for key in [&rsa, &ec, &ed] {
        let claims = issuer.claims();
        let got = v.verify(&sign(key, &claims)).await.unwrap();
        assert_eq!(got, claims, "{:?}", key.alg);
    }
    // Discovery plus one JWKS fetch; verification itself fetches nothing.
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn unknown_kid_after_rotation_refetches_once_then_verifies() {
    let (k1, k2) = (rsa_key("k1"), rsa_key("k2"));
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    assert_eq!(issuer.fetches(), 1);

    issuer.publish(&k2); // the issuer rotates
    let token = sign(&k2, &issuer.claims());
    v.verify(&token).await.unwrap();
    assert_eq!(issuer.fetches(), 2, "exactly one refetch for the new kid");
    v.verify(&token).await.unwrap();
    v.verify(&sign(&k1, &issuer.claims())).await.unwrap();
    assert_eq!(issuer.fetches(), 2, "the new key is cached");
}

#[tokio::test]
async fn flood_of_unknown_kids_is_rate_limited() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let mut cfg = config(&issuer);
    cfg.min_refetch_interval = Duration::from_secs(3600);
    let v = Verifier::new(cfg).await.unwrap();
    let before = issuer.fetches();

    // 300 tokens with distinct bogus kids, concurrently and then sequentially.
    let bogus: Vec<String> = (0..300)
        .map(|i| {
            let mut k = ec_key("x");
            k.kid = format!("bogus-{i}");
            sign(&k, &issuer.claims())
        })
        .collect();
    let results = futures::future::join_all(bogus[..150].iter().map(|t| v.verify(t))).await;
    for t in &bogus[150..] {
        assert!(v.verify(t).await.is_err());
    }
    assert!(results.iter().all(|r| r.is_err()));
    let extra = issuer.fetches() - before;
    assert!(
        extra <= 1,
        "{extra} JWKS fetches for a flood; the limit is 1 per interval"
    );
    // Genuine tokens are unaffected.
    v.verify(&sign(&k1, &issuer.claims())).await.unwrap();
}

#[tokio::test]
async fn alg_none_is_refused() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    let header = b64(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let payload = b64(&serde_json::to_vec(&issuer.claims()).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.AAAA"),
    ] {
        invalid(v.verify(&token).await);
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    // Algorithm confusion: HMAC keyed with the public key bytes a naive verifier would use.
    let pem_like = serde_json::to_vec(&k1.jwk).unwrap();
    for secret in [k1.public_der.as_slice(), pem_like.as_slice()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        let token =
            jsonwebtoken::encode(&header, &issuer.claims(), &EncodingKey::from_secret(secret))
                .unwrap();
        assert_eq!(invalid(v.verify(&token).await), "algorithm not accepted");
    }
}

#[tokio::test]
async fn key_type_must_match_the_header_alg() {
    let (rsa, ec) = (rsa_key("rsa"), ec_key("ec"));
    let issuer = TestIssuer::start(&[&rsa, &ec]).await;
    let v = verifier(&issuer).await;
    // An ES256 signature presented under the RSA key's kid.
    let mut wrong = ec_key("ec2");
    wrong.kid = "rsa".into();
    assert_eq!(
        invalid(v.verify(&sign(&wrong, &issuer.claims())).await),
        "algorithm does not match the key"
    );
}

#[tokio::test]
async fn wrong_typ_iss_aud_are_refused() {
    let k1 = ec_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    let claims = issuer.claims();
    for typ in [None, Some("JWT"), Some("id_token+jwt")] {
        let why = invalid(v.verify(&sign_with(&k1, &claims, typ)).await);
        assert!(why.contains("typ"), "{why}");
    }
    assert!(
        v.verify(&sign_with(&k1, &claims, Some("application/at+jwt")))
            .await
            .is_ok()
    );

    let mut c = claims.clone();
    c.iss = "http://127.0.0.1:1/other/".into();
    assert_eq!(invalid(v.verify(&sign(&k1, &c)).await), "wrong issuer");
    let mut c = claims.clone();
    c.iss = issuer.issuer.trim_end_matches('/').into(); // exact match: no trailing-slash leniency
    assert_eq!(invalid(v.verify(&sign(&k1, &c)).await), "wrong issuer");
    let mut c = claims.clone();
    c.aud = tansu_shared::auth::Audience::Many(vec!["tansu.storage".into()]);
    assert_eq!(invalid(v.verify(&sign(&k1, &c)).await), "wrong audience");
    let mut c = claims;
    c.aud = tansu_shared::auth::Audience::Many(vec!["tansu.storage".into(), AUDIENCE.into()]);
    assert!(v.verify(&sign(&k1, &c)).await.is_ok());
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_with_leeway() {
    let k1 = ed_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await; // leeway 30 s
    let mut c = issuer.claims();
    c.exp = now() - 120;
    assert_eq!(invalid(v.verify(&sign(&k1, &c)).await), "token expired");
    let mut c = issuer.claims();
    c.exp = now() - 5; // within the leeway
    assert!(v.verify(&sign(&k1, &c)).await.is_ok());
    let mut c = issuer.claims();
    c.nbf = Some(now() + 120);
    assert_eq!(
        invalid(v.verify(&sign(&k1, &c)).await),
        "token not yet valid"
    );
    // Required claims: a token without exp is not accepted.
    let mut no_exp = serde_json::to_value(issuer.claims()).unwrap();
    no_exp.as_object_mut().unwrap().remove("exp");
    invalid(v.verify(&sign(&k1, &no_exp)).await);
}

#[tokio::test]
async fn tampered_malformed_and_oversized_tokens_are_clear_401s() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    let token = sign(&k1, &issuer.claims());
    let parts: Vec<&str> = token.split('.').collect();

    let mut c = issuer.claims();
    c.scope = "db.read db.write admin.full".into();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&c).unwrap()),
        parts[2]
    );
    assert_eq!(invalid(v.verify(&forged).await), "bad signature");

    let huge = format!("{}.{}.{}", parts[0], "A".repeat(20_000), parts[2]);
    assert_eq!(invalid(v.verify(&huge).await), "token too large");

    let garbage = [
        "",
        ".",
        "..",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        &format!("{}.e30.{}", parts[0], parts[2]),
        &format!("{}..{}", parts[0], parts[2]),
        &format!("{}.{}.", parts[0], parts[1]),
        &format!("{}.{}.{}", b64(b"[]"), parts[1], parts[2]),
        &format!("{}.{}.{}", b64(b"\xff\xfe"), parts[1], parts[2]),
        &format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":7}"#),
            parts[1],
            parts[2]
        ),
    ];
    for g in garbage {
        invalid(v.verify(g).await);
    }
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_issuer_is_down() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    let v = verifier(&issuer).await;
    let token = sign(&k1, &issuer.claims());
    issuer.server.stop().await;

    v.verify(&token).await.unwrap();
    // An unknown kid cannot be checked now: a temporary failure, not a verdict on the token.
    let other = sign(&ec_key("new"), &issuer_claims_for(&v));
    assert_eq!(v.verify(&other).await, Err(AuthError::KeysUnavailable));
    v.verify(&token).await.unwrap();
}

fn issuer_claims_for(v: &Verifier) -> serde_json::Value {
    json!({
        "iss": v.config().issuer, "sub": "s", "aud": AUDIENCE, "exp": now() + 60, "iat": now(),
        "jti": "j", "client_id": "c"
    })
}

#[tokio::test]
async fn issuer_metadata_must_name_the_configured_issuer() {
    let k1 = rsa_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    *issuer.state.issuer.lock().unwrap() = "https://evil.example/".into();
    let v = verifier(&issuer).await;
    assert_eq!(v.cached_keys(), 0);
    assert_eq!(
        v.verify(&sign(&k1, &issuer.claims())).await,
        Err(AuthError::KeysUnavailable)
    );
}

#[tokio::test]
async fn explicit_jwks_uri_skips_discovery_and_symmetric_keys_are_ignored() {
    let k1 = ec_key("k1");
    let issuer = TestIssuer::start(&[&k1]).await;
    issuer
        .state
        .keys
        .lock()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "sym", "k": b64(b"secret"), "alg": "HS256"}));
    let mut cfg = config(&issuer);
    cfg.jwks_uri = Some(Url::parse(&issuer.state.jwks_uri).unwrap());
    *issuer.state.issuer.lock().unwrap() = "ignored-when-jwks-uri-is-set".into();
    let v = Verifier::new(cfg).await.unwrap();
    assert_eq!(v.cached_keys(), 1, "only the EC key is usable");
    v.verify(&sign(&k1, &issuer.claims())).await.unwrap();
}

#[tokio::test]
async fn background_refresh_follows_cache_control() {
    let (k1, k2) = (ed_key("k1"), ed_key("k2"));
    let issuer = TestIssuer::start(&[&k1]).await;
    *issuer.state.cache_control.lock().unwrap() = "max-age=0".into();
    let mut cfg = config(&issuer);
    cfg.min_refresh = Duration::from_millis(20);
    let v = Verifier::new(cfg).await.unwrap();
    issuer.publish(&k2);
    // No verification happens: only the background refresh can load k2.
    let deadline = Instant::now() + Duration::from_secs(10);
    while v.cached_keys() < 2 {
        assert!(Instant::now() < deadline, "background refresh never ran");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fetches = issuer.fetches();
    v.verify(&sign(&k2, &issuer.claims())).await.unwrap();
    assert!(issuer.fetches() <= fetches + 1);
}
