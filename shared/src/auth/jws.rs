//! The steps of verifying one signed token, shared by every verifier of Tansu tokens: the
//! JWKS-backed [`super::Verifier`] of the resource servers and identity, which verifies its own
//! tokens against its in-memory key ring. Only the key lookup differs between them.
//!
//! Order, and why: the token is split and its JOSE header read ([`SignedToken::parse`]); the
//! caller picks the key by `kid` and may refuse the header's `alg` or `typ`; the signature is
//! checked with a key parsed once ([`VerifyKey`]), and only then is the payload parsed
//! ([`SignedToken::verify`]); the claims are checked last ([`ClaimChecks`]). The key's own
//! algorithm must equal the header's, so the algorithm-confusion attacks have nothing to use.

use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, Header};
use serde::de::DeserializeOwned;

use super::claims::AccessClaims;
use super::error::AuthError;

/// Tokens longer than this are refused unparsed unless a verifier says otherwise.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// One public signature key, parsed once from its JWK (aws-lc-rs verifies with it; parsing an
/// RSA key per token would be a third of the cost of a verification).
pub struct VerifyKey {
    alg: Algorithm,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey").field("alg", &self.alg).finish()
    }
}

impl VerifyKey {
    /// The key id and verification key of a JWK, or `None` when it is not a signature key of
    /// an algorithm in `accepted` (RS256, ES256 and EdDSA are the ones supported). The
    /// algorithm follows from the key type and curve; a declared `alg` must agree.
    pub fn from_jwk(jwk: &Jwk, accepted: &[Algorithm]) -> Option<(String, VerifyKey)> {
        let kid = jwk.common.key_id.clone()?;
        Some((kid, Self::from_public_jwk(jwk, accepted)?))
    }

    /// The verification key of a JWK without a key id (a DPoP proof's own key).
    pub fn from_public_jwk(jwk: &Jwk, accepted: &[Algorithm]) -> Option<VerifyKey> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        let alg = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => match jwk.common.key_algorithm {
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                _ => return None,
            },
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                match jwk.common.key_algorithm {
                    None | Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                    _ => return None,
                }
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                match jwk.common.key_algorithm {
                    None | Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                    _ => return None,
                }
            }
            _ => return None,
        };
        if !accepted.contains(&alg) {
            return None;
        }
        let key = parse_public_key(&jwk.algorithm)?;
        Some(VerifyKey { alg, key })
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Checks a raw signature over `message` (for JWS see [`SignedToken::verify`]).
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// A compact JWS split in its parts with its header read; nothing is trusted yet.
#[derive(Debug)]
pub struct SignedToken<'a> {
    header: Header,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> SignedToken<'a> {
    /// Splits `token` and reads its header; refuses tokens over `max_len` bytes unread.
    pub fn parse(token: &'a str, max_len: usize) -> Result<Self, AuthError> {
        if token.len() > max_len {
            return Err(AuthError::InvalidToken("token too large"));
        }
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(AuthError::InvalidToken("malformed token"));
        }
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or(AuthError::InvalidToken("malformed token"))?;
        let payload = signing_input
            .split_once('.')
            .map(|(_, p)| p)
            .ok_or(AuthError::InvalidToken("malformed token"))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token header"))?;
        Ok(Self {
            header,
            signing_input,
            payload,
            signature,
        })
    }

    pub fn alg(&self) -> Algorithm {
        self.header.alg
    }

    /// The JOSE header, as read (nothing in it is trusted yet).
    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn kid(&self) -> Result<&str, AuthError> {
        self.header
            .kid
            .as_deref()
            .ok_or(AuthError::InvalidToken("token has no key id"))
    }

    /// Refuses anything but an RFC 9068 access token (`typ` `at+jwt`), so an ID token or a
    /// logout token signed by the same key is never taken for one.
    pub fn require_access_token(&self) -> Result<(), AuthError> {
        match self.header.typ.as_deref() {
            Some(t)
                if t.eq_ignore_ascii_case("at+jwt")
                    || t.eq_ignore_ascii_case("application/at+jwt") =>
            {
                Ok(())
            }
            _ => Err(AuthError::InvalidToken(
                "not an access token (typ must be at+jwt)",
            )),
        }
    }

    /// Checks the signature with `key` (whose algorithm must be the header's) and only then
    /// parses the payload as `C`.
    pub fn verify<C: DeserializeOwned>(&self, key: &VerifyKey) -> Result<C, AuthError> {
        if key.alg != self.header.alg {
            return Err(AuthError::InvalidToken("algorithm does not match the key"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| AuthError::InvalidToken("malformed token"))?;
        if !key.verify_signature(self.signing_input.as_bytes(), &signature) {
            return Err(AuthError::InvalidToken("bad signature"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| AuthError::InvalidToken("malformed token claims"))?;
        serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("malformed token claims"))
    }
}

/// The checks on a verified token's claims: exact issuer, the audience (or any, for
/// introspection and userinfo at the issuer itself), `exp` and `nbf` with leeway. `iat`, `sub`,
/// `jti` and `client_id` are required by [`AccessClaims`] itself.
#[derive(Debug, Clone, Copy)]
pub struct ClaimChecks<'a> {
    pub issuer: &'a str,
    pub audience: Option<&'a str>,
    pub leeway: Duration,
}

impl ClaimChecks<'_> {
    pub fn check(&self, c: &AccessClaims) -> Result<(), AuthError> {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = self.leeway.as_secs() as i64;
        if c.iss != self.issuer {
            return Err(AuthError::InvalidToken("wrong issuer"));
        }
        if let Some(aud) = self.audience
            && !c.aud.contains(aud)
        {
            return Err(AuthError::InvalidToken("wrong audience"));
        }
        if c.exp.saturating_add(leeway) <= now {
            return Err(AuthError::InvalidToken("token expired"));
        }
        if c.nbf.is_some_and(|nbf| nbf.saturating_sub(leeway) > now) {
            return Err(AuthError::InvalidToken("token not yet valid"));
        }
        Ok(())
    }
}

/// The aws-lc-rs public key for a JWK's parameters (the caller has matched type and curve).
fn parse_public_key(params: &AlgorithmParameters) -> Option<ParsedPublicKey> {
    let b64 = |v: &str| URL_SAFE_NO_PAD.decode(v).ok();
    match params {
        AlgorithmParameters::RSA(p) => {
            let components = RsaPublicKeyComponents {
                n: b64(&p.n)?,
                e: b64(&p.e)?,
            };
            let der = AsDer::<PublicKeyX509Der>::as_der(&components).ok()?;
            ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04); // SEC1 uncompressed point
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).ok()
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            ParsedPublicKey::new(&sig::ED25519, b64(&p.x)?).ok()
        }
        _ => None,
    }
}
