//! Properties of token verification over generated inputs: nothing panics, a signed token
//! round-trips, and any change to what was signed is refused.

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use serde_json::json;
use tansu_shared::auth::jws::MAX_TOKEN_LEN;
use tansu_shared::auth::{AccessClaims, Audience, ClaimChecks, SignedToken, VerifyKey};

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
