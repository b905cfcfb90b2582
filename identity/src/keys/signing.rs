//! Signing algorithms and key pairs: generated and parsed with aws-lc-rs, kept in memory, their
//! public halves published as JWKs; and the AAD a private key is sealed with.

use crate::crypto::b64url;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A JWS signature algorithm the issuer signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// A parsed private key, ready to sign.
pub enum SigningPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl SigningPair {
    /// A fresh key pair and its PKCS#8 DER (the form that is sealed and stored).
    pub fn generate(alg: SigningAlg) -> anyhow::Result<(Self, Zeroizing<Vec<u8>>)> {
        let err = |_| anyhow::anyhow!("{} key generation failed", alg.as_str());
        Ok(match alg {
            SigningAlg::RS256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(err)?;
                let der = Zeroizing::new(
                    AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                        .map_err(err)?
                        .as_ref()
                        .to_vec(),
                );
                (SigningPair::Rsa(pair), der)
            }
            SigningAlg::ES256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(err)?;
                let der = Zeroizing::new(pair.to_pkcs8v1().map_err(err)?.as_ref().to_vec());
                (SigningPair::Ec(pair), der)
            }
            SigningAlg::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(err)?;
                let der = Zeroizing::new(pair.to_pkcs8v1().map_err(err)?.as_ref().to_vec());
                (SigningPair::Ed(pair), der)
            }
        })
    }

    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> anyhow::Result<Self> {
        let err = |e: aws_lc_rs::error::KeyRejected| {
            anyhow::anyhow!("stored {} key rejected: {e}", alg.as_str())
        };
        Ok(match alg {
            SigningAlg::RS256 => SigningPair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(err)?),
            SigningAlg::ES256 => SigningPair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(err)?,
            ),
            SigningAlg::EdDSA => SigningPair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(err)?),
        })
    }

    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let failed = |_| anyhow::anyhow!("signing failed");
        Ok(match self {
            SigningPair::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(failed)?;
                sig
            }
            SigningPair::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SigningPair::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        })
    }

    /// The public JWK (RFC 7517/7518/8037) for this key.
    pub fn public_jwk(&self, kid: &str, alg: SigningAlg) -> serde_json::Value {
        match self {
            SigningPair::Rsa(pair) => {
                let public = pair.public_key();
                serde_json::json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": alg.as_str(),
                    "kid": kid,
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero()),
                })
            }
            SigningPair::Ec(pair) => {
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let xy = pair.public_key().as_ref().get(1..).unwrap_or_default();
                let (x, y) = xy.split_at(xy.len() / 2);
                serde_json::json!({
                    "kty": "EC",
                    "use": "sig",
                    "alg": alg.as_str(),
                    "kid": kid,
                    "crv": "P-256",
                    "x": b64url(x),
                    "y": b64url(y),
                })
            }
            SigningPair::Ed(pair) => serde_json::json!({
                "kty": "OKP",
                "use": "sig",
                "alg": alg.as_str(),
                "kid": kid,
                "crv": "Ed25519",
                "x": b64url(pair.public_key().as_ref()),
            }),
        }
    }
}

/// The associated data a private key is sealed with: its id and algorithm.
pub fn aad(kid: &str, alg: SigningAlg) -> String {
    format!("signing_keys:{kid}:{}", alg.as_str())
}
