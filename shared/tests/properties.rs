//! Properties of token verification over generated inputs: nothing panics, a signed token
//! round-trips, any change to what was signed is refused, and the tenant a request is served
//! for is the token's, only when the gateway's header names the same one. The `jwt` fuzz
//! target's committed inputs replay here too.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, Request};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt;
use proptest::prelude::*;
use serde_json::json;
use tansu_shared::auth::jws::MAX_TOKEN_LEN;
use tansu_shared::auth::{
    AccessClaims, Audience, AuthError, ClaimChecks, KeySource, SignedToken, Tenant, Verifier,
    VerifierConfig, VerifyKey,
};

const ISSUER: &str = "https://issuer.test/";

struct Signer {
    pair: Ed25519KeyPair,
    key: VerifyKey,
}

fn signer() -> Signer {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    });
    let jwk = serde_json::from_value(jwk).unwrap();
    let (_, key) = VerifyKey::from_jwk(&jwk, &[jsonwebtoken::Algorithm::EdDSA]).unwrap();
    Signer { pair, key }
}

impl Signer {
    fn sign(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims(sub: &str, scope: &str, tid: Option<&str>) -> serde_json::Value {
    json!({
        "iss": ISSUER, "sub": sub, "aud": "tansu.db", "exp": now() + 300, "iat": now(),
        "jti": "j", "client_id": "c", "scope": scope, "tid": tid,
    })
}

fn header() -> serde_json::Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
}

fn checks() -> ClaimChecks<'static> {
    ClaimChecks {
        issuer: ISSUER,
        audience: Some("tansu.db"),
        leeway: Duration::from_secs(30),
    }
}

proptest! {
    #[test]
    fn any_text_is_parsed_or_refused_without_panicking(s in "\\PC{0,600}") {
        if let Ok(t) = SignedToken::parse(&s, MAX_TOKEN_LEN) {
            let _ = t.kid();
            let _ = t.require_access_token();
        }
    }

    #[test]
    fn three_arbitrary_parts_never_verify(
        h in "[A-Za-z0-9_-]{0,120}", p in "[A-Za-z0-9_-]{0,200}", s in "[A-Za-z0-9_-]{0,120}"
    ) {
        let signer = signer();
        let token = format!("{h}.{p}.{s}");
        if let Ok(t) = SignedToken::parse(&token, MAX_TOKEN_LEN) {
            prop_assert!(t.verify::<AccessClaims>(&signer.key).is_err());
        }
    }

    #[test]
    fn a_signed_token_round_trips_and_a_changed_claim_is_refused(
        sub in "\\PC{1,40}", scope in "[a-z.]{0,12}( [a-z.]{1,12}){0,4}",
        tid in proptest::option::of("[0-9a-f-]{36}"), other in "\\PC{1,40}",
    ) {
        let signer = signer();
        let token = signer.sign(&header(), &claims(&sub, &scope, tid.as_deref()));
        let t = SignedToken::parse(&token, MAX_TOKEN_LEN).unwrap();
        let verified: AccessClaims = t.verify(&signer.key).unwrap();
        checks().check(&verified).unwrap();
        prop_assert_eq!(&verified.sub, &sub);
        prop_assert_eq!(verified.tid.as_deref(), tid.as_deref());
        prop_assert_eq!(&verified.aud, &Audience::One("tansu.db".into()));

        // Another subject under the first token's signature.
        prop_assume!(other != sub);
        let (signed, sig) = token.rsplit_once('.').unwrap();
        let (head, _) = signed.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(claims(&other, &scope, tid.as_deref()).to_string())
        );
        let t = SignedToken::parse(&forged, MAX_TOKEN_LEN).unwrap();
        prop_assert!(t.verify::<AccessClaims>(&signer.key).is_err());
    }

    #[test]
    fn the_claim_checks_refuse_every_other_issuer_and_audience(
        iss in "\\PC{0,30}", aud in "\\PC{0,20}"
    ) {
        let mut c: AccessClaims = serde_json::from_value(claims("s", "", None)).unwrap();
        c.iss = iss.clone();
        c.aud = Audience::Many(vec![aud.clone()]);
        let ok = checks().check(&c).is_ok();
        prop_assert_eq!(ok, iss == ISSUER && aud == "tansu.db");
    }
}

struct OneKey(Arc<VerifyKey>);

impl KeySource for OneKey {
    fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        (kid == "k1").then(|| self.0.clone())
    }
}

const TENANT_A: &str = "0190f5c0-0000-7000-8000-00000000000a";
const TENANT_B: &str = "0190f5c0-0000-7000-8000-00000000000b";

/// A tenant id as a token or a client might spell it.
fn tenant_spelling() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(TENANT_A.to_owned()),
        Just(TENANT_B.to_owned()),
        Just(TENANT_A.to_uppercase()),
        Just(format!(" {TENANT_A} ")),
        Just(TENANT_A.replace('-', "")),
        Just(format!("urn:uuid:{TENANT_B}")),
        "[0-9a-f-]{0,40}",
        "\\PC{0,20}",
    ]
}

proptest! {
    /// Whatever tenant header a request carries, the `Tenant` extractor serves the token's
    /// tenant and only when the one header names that same tenant.
    #[test]
    fn the_tenant_served_is_the_tokens_and_the_headers(
        tid in proptest::option::of(tenant_spelling()),
        header_values in proptest::collection::vec(tenant_spelling(), 0..3),
    ) {
        let signer = signer();
        let verifier = Verifier::with_keys(
            VerifierConfig::new(ISSUER, "tansu.db"),
            Arc::new(OneKey(Arc::new(signer.key))),
        )
        .unwrap();
        let token = signer_token(&signer.pair, tid.as_deref());
        let mut req = Request::builder()
            .uri("/api/collections")
            .header("authorization", format!("Bearer {token}"));
        let mut sent = Vec::new();
        for v in &header_values {
            if let Ok(v) = HeaderValue::from_str(v) {
                req = req.header(tansu_shared::TENANT_HEADER, v.clone());
                sent.push(v);
            }
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let served = Tenant::from_request_parts(&mut parts, &verifier)
            .now_or_never()
            .expect("with its keys at hand the verifier never waits");
        // The token's `tid` as issued; the header as the gateway wrote it, spaces aside.
        let token_tenant = tid.as_deref().and_then(|t| uuid::Uuid::parse_str(t).ok());
        let header_tenant = match sent.as_slice() {
            [one] => one.to_str().ok().and_then(|h| uuid::Uuid::parse_str(h.trim()).ok()),
            _ => None,
        };
        match served {
            Ok(t) => {
                prop_assert_eq!(Some(t.id), token_tenant);
                prop_assert_eq!(Some(t.id), header_tenant);
                prop_assert_eq!(t.principal.tid.as_deref(), tid.as_deref());
            }
            Err(e) => {
                prop_assert_eq!(e, AuthError::TenantMismatch);
                prop_assert!(token_tenant.is_none() || header_tenant != token_tenant);
            }
        }
    }
}

fn signer_token(pair: &Ed25519KeyPair, tid: Option<&str>) -> String {
    let claims = claims("s", "db.read", tid);
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header().to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// The `jwt` fuzz target's committed inputs replay without a fault, and the seed tokens signed
/// with its fixed keys still verify.
#[test]
fn the_jwt_fuzz_corpus_replays() {
    let corpus = tansu_shared::testing::fuzz_corpus("jwt");
    for (name, data) in &corpus {
        eprintln!("{name}");
        tansu_shared::fuzzing::jwt(data);
    }
    let verified: Vec<&str> = corpus
        .iter()
        .filter(|(_, d)| {
            std::str::from_utf8(d).is_ok_and(tansu_shared::fuzzing::accepts_access_token)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(verified, ["seed-access-eddsa", "seed-access-es256"]);
}
