//! What a DPoP client does (RFC 9449), for tests: a key pair, its thumbprint, and proofs.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A client's DPoP key.
pub struct DpopKey {
    alg: Algorithm,
    enc: EncodingKey,
    jwk: Jwk,
}

impl DpopKey {
    pub fn es256() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        Self::new(Algorithm::ES256, EncodingKey::from_ec_der(pkcs8.as_ref()))
    }

    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        Self::new(Algorithm::EdDSA, EncodingKey::from_ed_der(pkcs8.as_ref()))
    }

    fn new(alg: Algorithm, enc: EncodingKey) -> Self {
        let jwk = Jwk::from_encoding_key(&enc, alg).expect("a public JWK");
        Self { alg, enc, jwk }
    }

    /// The RFC 7638 thumbprint (`cnf.jkt` of tokens bound to this key).
    pub fn jkt(&self) -> String {
        self.jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
    }

    /// A fresh proof for `method` `url`; `access_token` gives `ath`.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut claims = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "htm": method,
            "htu": url,
            "iat": jsonwebtoken::get_current_timestamp(),
        });
        if let Some(t) = access_token {
            claims["ath"] = crate::auth::dpop::token_hash(t).into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        self.sign(&claims)
    }

    /// A proof with exactly these claims.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, claims, &self.enc).unwrap()
    }
}
