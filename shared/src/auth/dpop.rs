//! DPoP (RFC 9449): access tokens bound to a key the client holds, proven per request.
//!
//! A DPoP-bound access token carries `cnf.jkt`, the RFC 7638 thumbprint of the client's public
//! key, and is presented as `Authorization: DPoP <token>` with a `DPoP` header: a JWT
//! (`typ` `dpop+jwt`) signed by that key, whose header carries the public key (`jwk`) and whose
//! claims name the request (`htm`, `htu`), its time (`iat`), a unique id (`jti`), the token's
//! hash (`ath`) and, where the server asks for one, its `nonce`. A stolen token is useless
//! without the private key, and a captured proof is useless for another request, later, or a
//! second time.
//!
//! The checks follow RFC 9449 §4.3 in order; the signature is checked with the header's key by
//! the same code that checks access tokens ([`super::jws`]), for the asymmetric algorithms in
//! [`ALGORITHMS`] only. Replays are caught by [`ReplayCache`]: per process, or, given a Redis
//! (feature `redis`), shared by every replica that uses it, so a proof replayed at another
//! replica is refused too. Nonces ([`NonceIssuer`]) are an HMAC under a key that is random per
//! process or, given one, shared by the replicas (identity derives it from its master key).

use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::ThumbprintHash;
use serde::Deserialize;

use super::error::AuthError;
use super::jws::{SignedToken, VerifyKey};

mod replay;
pub use replay::{ReplayCache, SHARED_RETRY};

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying a server nonce.
pub const NONCE_HEADER: &str = "dpop-nonce";
/// Proof signature algorithms accepted (`dpop_signing_alg_values_supported`).
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::EdDSA];
pub const ALGORITHM_NAMES: [&str; 2] = ["ES256", "EdDSA"];
/// A proof is accepted this long after its `iat`, and this far before it (clock skew).
pub const MAX_AGE_SECS: i64 = 300;
pub const MAX_SKEW_SECS: i64 = 60;
/// Proofs longer than this are refused unread (a P-256 or Ed25519 proof is ~ 600 bytes).
const MAX_PROOF_LEN: usize = 4096;

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// `htm`: the HTTP method.
    pub method: &'a str,
    /// `htu`: the URL as the client called it (query and fragment are not compared).
    pub url: &'a str,
    /// `ath`: required with an access token (at a resource server), absent at the token
    /// endpoint.
    pub access_token: Option<&'a str>,
}

/// A proof whose signature and claims were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

fn invalid(why: &'static str) -> AuthError {
    AuthError::InvalidDpopProof(why)
}

/// The request's one `DPoP` header, if any (several: refused, RFC 9449 §4.3 step 1).
pub fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| invalid("malformed DPoP header")),
        (Some(_), Some(_)) => Err(invalid("more than one DPoP header")),
    }
}

/// `base64url(SHA-256(token))`: the `ath` of a proof sent with `token`.
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

/// Checks a proof for `request` at time `now` (seconds): RFC 9449 §4.3 steps 2 to 11 but the
/// nonce (the caller's, [`NonceIssuer`]) and the `jti` replay check ([`ReplayCache`]).
pub fn verify_proof(proof: &str, request: &ProofRequest<'_>, now: i64) -> Result<Proof, AuthError> {
    let jws = SignedToken::parse(proof, MAX_PROOF_LEN).map_err(|_| invalid("malformed proof"))?;
    let header = jws.header();
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(invalid("typ must be dpop+jwt"));
    }
    if !ALGORITHMS.contains(&header.alg) {
        return Err(invalid("algorithm not accepted"));
    }
    let jwk = header.jwk.as_ref().ok_or(invalid("no jwk in the header"))?;
    if has_private_part(proof) {
        return Err(invalid("the jwk carries a private key"));
    }
    let key = VerifyKey::from_public_jwk(jwk, &ALGORITHMS)
        .ok_or(invalid("the jwk is not a key for the algorithm"))?;
    let claims: ProofClaims = jws.verify(&key).map_err(|e| match e {
        AuthError::InvalidToken("bad signature") => invalid("bad signature"),
        _ => invalid("malformed proof"),
    })?;
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(invalid("jti missing or too long"));
    }
    if claims.htm != request.method {
        return Err(invalid("htm does not match the request"));
    }
    if !same_url(&claims.htu, request.url) {
        return Err(invalid("htu does not match the request"));
    }
    if claims.iat > now + MAX_SKEW_SECS || claims.iat < now - MAX_AGE_SECS {
        return Err(invalid("iat outside the accepted window"));
    }
    match (request.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), _) => return Err(invalid("ath does not match the access token")),
        (None, _) => {}
    }
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| invalid("the jwk has no thumbprint"))?;
    Ok(Proof {
        jkt,
        jti: claims.jti,
        iat: claims.iat,
        nonce: claims.nonce,
    })
}

/// Whether the proof's header `jwk` has a private member (`d`, or RSA's primes).
fn has_private_part(proof: &str) -> bool {
    let Some(header) = proof.split('.').next() else {
        return true;
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(header) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return true;
    };
    ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| v["jwk"].get(m).is_some())
}

/// `htu` compared as RFC 9449 §4.3 says: scheme, host, port and path; no query or fragment.
fn same_url(htu: &str, url: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(htu), url::Url::parse(url)) else {
        return false;
    };
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path() == b.path()
}

/// The URL of a request as its client called it: behind the gateway its `X-Forwarded-Proto`,
/// `-Host` and `-Prefix` (the gateway replaces whatever a client sent), else `http` and `Host`.
pub fn request_url(parts: &Parts) -> String {
    let h = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let proto = h("x-forwarded-proto").unwrap_or("http");
    let host = h("x-forwarded-host")
        .or_else(|| h(header::HOST.as_str()))
        .unwrap_or("localhost");
    let prefix = h("x-forwarded-prefix").unwrap_or("").trim_end_matches('/');
    format!("{proto}://{host}{prefix}{}", parts.uri.path())
}

/// A client's DPoP key (ES256, made in this process, never stored): it proves possession for
/// the tokens bound to it ([`ProofKey::proof`]), e.g. [`crate::token_source::TokenSource`]'s.
pub struct ProofKey {
    enc: jsonwebtoken::EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl std::fmt::Debug for ProofKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofKey")
            .field("jkt", &self.jkt())
            .finish()
    }
}

impl ProofKey {
    /// A fresh P-256 key from the system's random source.
    pub fn generate() -> Result<Self, String> {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|_| "the system's random source failed".to_owned())?;
        let enc = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::ES256)
            .map_err(|e| format!("the key's public JWK: {e}"))?;
        Ok(Self { enc, jwk })
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn jkt(&self) -> String {
        self.jwk
            .thumbprint(ThumbprintHash::SHA256)
            .unwrap_or_default()
    }

    /// A fresh proof (its own `jti`, `iat` now) for `method` `url`; `access_token` gives its
    /// `ath` (at a resource server), `nonce` the server's nonce.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, AuthError> {
        let mut claims = serde_json::json!({
            "jti": crate::ids::uuid_v7().to_string(),
            "htm": method,
            "htu": url,
            "iat": jsonwebtoken::get_current_timestamp(),
        });
        if let Some(t) = access_token {
            claims["ath"] = token_hash(t).into();
        }
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.enc)
            .map_err(|_| AuthError::InvalidDpopProof("the proof could not be signed"))
    }
}

/// Server nonces (RFC 9449 §8): an HMAC of the current time window; a nonce of the current or
/// the previous window is accepted. The key is random per process ([`NonceIssuer::new`]), or
/// given ([`NonceIssuer::with_keys`]): replicas given the same key accept each other's nonces.
pub struct NonceIssuer {
    /// The key nonces are made with, then keys whose nonces are still accepted.
    keys: Vec<hmac::Key>,
    window_secs: i64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("keys", &self.keys.len())
            .field("window_secs", &self.window_secs)
            .finish()
    }
}

impl NonceIssuer {
    /// A fresh random key; nonces live one to two `window_secs`.
    pub fn new(window_secs: i64) -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system's random source");
        Self::with_keys(key, Vec::new(), window_secs)
    }

    /// Nonces made with `key`; those made with `also_accepted` (earlier keys, during a key
    /// change) are accepted too.
    pub fn with_keys(key: hmac::Key, also_accepted: Vec<hmac::Key>, window_secs: i64) -> Self {
        let mut keys = vec![key];
        keys.extend(also_accepted);
        Self {
            keys,
            window_secs: window_secs.max(1),
        }
    }

    fn for_window(key: &hmac::Key, window: i64) -> String {
        let tag = hmac::sign(key, &window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: i64) -> String {
        Self::for_window(&self.keys[0], now.div_euclid(self.window_secs))
    }

    /// Whether `nonce` is one handed out recently.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let w = now.div_euclid(self.window_secs);
        self.keys.iter().any(|key| {
            [w, w - 1].iter().any(|w| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    Self::for_window(key, *w).as_bytes(),
                    nonce.as_bytes(),
                )
                .is_ok()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_without_query_and_with_default_ports() {
        assert!(same_url(
            "https://H.example/db/x?a=1",
            "https://h.example:443/db/x"
        ));
        assert!(!same_url("https://h.example/db/x", "http://h.example/db/x"));
        assert!(!same_url(
            "https://h.example/db/x",
            "https://h.example/db/y"
        ));
        assert!(!same_url("https://h.example:8443/x", "https://h.example/x"));
        assert!(!same_url("not a url", "https://h.example/x"));
    }

    #[test]
    fn nonces_live_two_windows_and_are_this_servers() {
        let n = NonceIssuer::new(60);
        let now = 1_700_000_000;
        let nonce = n.current(now);
        assert!(n.accepts(&nonce, now));
        assert!(n.accepts(&nonce, now + 60));
        assert!(!n.accepts(&nonce, now + 180));
        assert!(!NonceIssuer::new(60).accepts(&nonce, now));
        assert!(!n.accepts("", now));
    }

    #[test]
    fn a_proof_keys_proofs_verify_for_their_request_only() {
        let key = ProofKey::generate().unwrap();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let request = ProofRequest {
            method: "GET",
            url: "https://h.example/db/api/collections",
            access_token: Some("token"),
        };
        let proof = key
            .proof("GET", request.url, Some("token"), Some("n"))
            .unwrap();
        let checked = verify_proof(&proof, &request, now).unwrap();
        assert_eq!(checked.jkt, key.jkt());
        assert_eq!(checked.nonce.as_deref(), Some("n"));
        let other = key.proof("GET", request.url, Some("token"), None).unwrap();
        assert_ne!(
            verify_proof(&other, &request, now).unwrap().jti,
            checked.jti
        );
        let wrong = key.proof("POST", request.url, Some("token"), None).unwrap();
        assert!(verify_proof(&wrong, &request, now).is_err());
    }

    #[test]
    fn issuers_given_one_key_accept_each_others_nonces() {
        let key = |b: u8| hmac::Key::new(hmac::HMAC_SHA256, &[b; 32]);
        let one = NonceIssuer::with_keys(key(1), Vec::new(), 60);
        let two = NonceIssuer::with_keys(key(1), Vec::new(), 60);
        let now = 1_700_000_000;
        assert!(two.accepts(&one.current(now), now));
        // A key change: the new key's issuer still accepts the old key's nonces.
        let changed = NonceIssuer::with_keys(key(2), vec![key(1)], 60);
        assert!(changed.accepts(&one.current(now), now));
        assert_ne!(changed.current(now), one.current(now));
        assert!(!one.accepts(&changed.current(now), now));
    }
}
