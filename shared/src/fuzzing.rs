//! The body of the `jwt` fuzz target (`fuzz/`), also run by the test that replays its corpus
//! (`tests/properties.rs`): arbitrary bytes as a compact JWS access token, a DPoP proof, an
//! `Authorization` header value and a JWK. Nothing may panic, and whatever is accepted must
//! satisfy what acceptance promises (issuer, audience, `typ`, an accepted algorithm, …).
//!
//! The keys are fixed (derived from constants), so that tokens signed once for the seed corpus
//! keep verifying; they are test keys and verify nothing but this harness's inputs.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::{Value, json};

use crate::auth::dpop::{self, ProofRequest};
use crate::auth::jws::MAX_TOKEN_LEN;
use crate::auth::{
    AccessClaims, Algorithm, AuthError, Credential, KeySource, SignedToken, Verifier,
    VerifierConfig, VerifyKey, bearer_token, credential,
};

/// The issuer and audience the harness's verifier requires.
pub const ISSUER: &str = "https://issuer.fuzz.test/";
pub const AUDIENCE: &str = "tansu.db";
/// The key ids of the harness's keys (EdDSA and ES256).
pub const ED_KID: &str = "ed";
pub const EC_KID: &str = "ec";
/// The instant DPoP proofs are checked at (fixed, so a corpus replays the same way).
pub const PROOF_TIME: i64 = 1_900_000_000;
/// The request DPoP proofs are checked for, and the access token they come with.
pub const PROOF_METHOD: &str = "POST";
pub const PROOF_URL: &str = "https://h.fuzz.test/db/api/collections";
pub const PROOF_TOKEN: &str = "the-access-token";

struct Signers {
    ed: Ed25519KeyPair,
    ec: EcdsaKeyPair,
}

/// An RFC 5915 `ECPrivateKey` on P-256 with a fixed scalar (the public key is derived).
fn ec_private_der() -> Vec<u8> {
    let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend_from_slice(&[0x5a; 32]);
    der.extend_from_slice(&[
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    der
}

fn signers() -> &'static Signers {
    static SIGNERS: OnceLock<Signers> = OnceLock::new();
    SIGNERS.get_or_init(|| Signers {
        ed: Ed25519KeyPair::from_seed_unchecked(&[0x17; 32]).expect("a 32-byte seed"),
        ec: EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &ec_private_der())
            .expect("a valid P-256 scalar"),
    })
}

/// The public JWK of the harness's key for `alg` (EdDSA or ES256), without `kid`.
pub fn public_jwk(alg: Algorithm) -> Value {
    let s = signers();
    match alg {
        Algorithm::ES256 => {
            let point = s.ec.public_key().as_ref();
            json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            })
        }
        _ => json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(s.ed.public_key().as_ref()),
        }),
    }
}

/// A compact JWS of `header` and `claims` signed with the harness's key for the header's
/// `alg` (`ES256`, else EdDSA): for seed inputs and tests.
pub fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let s = signers();
    let sig = if header["alg"] == "ES256" {
        s.ec.sign(&SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing")
            .as_ref()
            .to_vec()
    } else {
        s.ed.sign(input.as_bytes()).as_ref().to_vec()
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

struct Keys(HashMap<String, Arc<VerifyKey>>);

impl KeySource for Keys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        self.0.get(kid).cloned()
    }
}

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let accepted = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
        let mut keys = HashMap::new();
        for (kid, alg) in [(ED_KID, Algorithm::EdDSA), (EC_KID, Algorithm::ES256)] {
            let jwk: Jwk = serde_json::from_value(public_jwk(alg)).expect("a JWK");
            let key = VerifyKey::from_public_jwk(&jwk, &accepted).expect("a signature key");
            keys.insert(kid.to_owned(), Arc::new(key));
        }
        Verifier::with_keys(VerifierConfig::new(ISSUER, AUDIENCE), Arc::new(Keys(keys)))
            .expect("asymmetric algorithms only")
    })
}

/// The `jwt` target: `data` as an access token, a DPoP proof, an `Authorization` value, a JWK.
pub fn jwt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = access_token(text);
    dpop_proof(text);
    authorization(text);
    jwk(text);
}

/// Whether the harness's verifier accepts `text` as an access token (a seed corpus that stops
/// verifying means the fixed keys changed).
pub fn accepts_access_token(text: &str) -> bool {
    access_token(text)
}

fn access_token(text: &str) -> bool {
    let accepted = match verifier()
        .verify(text)
        .now_or_never()
        .expect("with its keys at hand the verifier never waits")
    {
        Ok(claims) => {
            let t = SignedToken::parse(text, MAX_TOKEN_LEN).expect("a verified token parses");
            assert!(t.require_access_token().is_ok(), "typ is at+jwt");
            assert!(matches!(t.alg(), Algorithm::EdDSA | Algorithm::ES256));
            assert_eq!(claims.iss, ISSUER);
            assert!(claims.aud.contains(AUDIENCE));
            let now = jsonwebtoken::get_current_timestamp() as i64;
            assert!(claims.exp.saturating_add(30) > now, "not expired");
            // What identity serialises, every service reads back the same.
            let again: AccessClaims =
                serde_json::from_value(serde_json::to_value(&claims).expect("claims serialise"))
                    .expect("serialised claims parse");
            assert_eq!(again, claims);
            true
        }
        Err(e) => {
            refused(&e);
            false
        }
    };
    // Any audience (the issuer's own introspection and userinfo).
    let any = verifier()
        .verify_claims::<AccessClaims>(text, None)
        .now_or_never()
        .expect("with its keys at hand the verifier never waits");
    if let Err(e) = any {
        refused(&e);
    }
    accepted
}

/// A refusal renders as an RFC 6750 / RFC 9457 answer without echoing the input.
fn refused(e: &AuthError) {
    let response = e.clone().into_response();
    assert!(response.status().is_client_error() || response.status().is_server_error());
}

fn dpop_proof(text: &str) {
    for access_token in [Some(PROOF_TOKEN), None] {
        let request = ProofRequest {
            method: PROOF_METHOD,
            url: PROOF_URL,
            access_token,
        };
        match dpop::verify_proof(text, &request, PROOF_TIME) {
            Ok(proof) => {
                assert!(!proof.jti.is_empty() && proof.jti.len() <= 256);
                assert!(
                    proof.iat <= PROOF_TIME + dpop::MAX_SKEW_SECS
                        && proof.iat >= PROOF_TIME - dpop::MAX_AGE_SECS
                );
                // A SHA-256 thumbprint, base64url.
                assert_eq!(proof.jkt.len(), 43);
            }
            Err(e) => refused(&e),
        }
    }
}

fn authorization(text: &str) {
    let Ok(value) = HeaderValue::from_str(text) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    headers.insert(dpop::DPOP_HEADER, value);
    match credential(&headers) {
        Ok(Some(c)) => {
            let token = c.token();
            assert!(!token.is_empty() && text.ends_with(token));
            let bearer = bearer_token(&headers).expect("parsed once, parsed again");
            assert_eq!(bearer.is_some(), matches!(c, Credential::Bearer(_)));
        }
        Ok(None) => {}
        Err(e) => refused(&e),
    }
    if let Ok(Some(proof)) = dpop::proof_header(&headers) {
        assert_eq!(proof, text);
    }
}

fn jwk(text: &str) {
    let Ok(jwk) = serde_json::from_str::<Jwk>(text) else {
        return;
    };
    let accepted = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
    if let Some(key) = VerifyKey::from_public_jwk(&jwk, &accepted) {
        assert!(accepted.contains(&key.alg()));
        let _ = key.verify_signature(b"message", &[0u8; 64]);
    }
    let _ = jwk.thumbprint(ThumbprintHash::SHA256);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "u", "aud": AUDIENCE, "exp": 4_102_444_800i64,
            "iat": 1_700_000_000, "jti": "j", "client_id": "c", "tid": "t",
        })
    }

    #[test]
    fn the_harness_keys_sign_tokens_its_verifier_accepts() {
        for (alg, kid) in [("EdDSA", ED_KID), ("ES256", EC_KID)] {
            let token = sign(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}), &claims());
            let verified = verifier().verify(&token).now_or_never().unwrap().unwrap();
            assert_eq!(verified.tid.as_deref(), Some("t"));
            jwt(token.as_bytes());
        }
    }
}
