//! The JWKS-backed access-token verifier.
//!
//! Key handling, and why:
//! - Keys are cached by `kid`. A token with an unknown `kid` triggers one refetch of the JWKS
//!   (a key rotation published a key we have not seen). Refetches are single-flight (concurrent
//!   requests wait for the one fetch in progress) and rate-limited to one per
//!   `min_refetch_interval`, so a flood of tokens with bogus `kid`s cannot hammer the issuer.
//! - A background task refreshes the JWKS on the schedule the issuer's `Cache-Control: max-age`
//!   sets (clamped), so retired keys drop out and new keys arrive before they are first used.
//! - When the issuer is unreachable, the cached keys keep verifying: an outage of the issuer is
//!   not an outage of every service.
//! - Only asymmetric keys are ever loaded (symmetric `oct` keys in a JWKS are ignored), only the
//!   configured algorithms are accepted (never `none` or HS*), and the key's own type and `alg`
//!   must match the token header's `alg`: the algorithm-confusion attacks have nothing to use.
//!
//! Division of labour: `jsonwebtoken` parses the JOSE header and the JWKs; the signature is
//! checked by aws-lc-rs with a public key parsed once when the JWKS is loaded (jsonwebtoken's
//! `decode` re-parses the RSA key on every call, a third of the cost of a verification); the
//! claims are deserialised once into [`AccessClaims`] and checked here (exact `iss`, required
//! `aud`, `exp`/`nbf` with leeway; `iat`, `sub`, `jti`, `client_id` are required by the type).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;
use url::Url;

use super::claims::AccessClaims;
use super::error::AuthError;

/// How a [`Verifier`] checks tokens.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The exact `iss` value (Tansu issuers end with '/').
    pub issuer: String,
    /// The audience this resource server requires in `aud` (e.g. `tansu.db`).
    pub audience: String,
    /// Accepted signature algorithms; anything else is refused before any key is touched.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Where to read the issuer metadata; default `{issuer}.well-known/openid-configuration`.
    /// Set when services reach the issuer on an internal address.
    pub discovery_url: Option<Url>,
    /// Skip discovery and read keys from here.
    pub jwks_uri: Option<Url>,
    /// At most one JWKS fetch per this interval on unknown `kid`s.
    pub min_refetch_interval: Duration,
    /// Background refresh when the JWKS response has no usable `Cache-Control: max-age`.
    pub default_refresh: Duration,
    /// Bounds for the `max-age` the issuer asks for.
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    /// Tokens longer than this are refused unparsed.
    pub max_token_len: usize,
    /// Timeout of one metadata or JWKS request.
    pub http_timeout: Duration,
}

impl VerifierConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            discovery_url: None,
            jwks_uri: None,
            min_refetch_interval: Duration::from_secs(10),
            default_refresh: Duration::from_secs(300),
            min_refresh: Duration::from_secs(30),
            max_refresh: Duration::from_secs(24 * 3600),
            max_token_len: 8 * 1024,
            http_timeout: Duration::from_secs(5),
        }
    }

    fn discovery(&self) -> Result<Url, String> {
        if let Some(u) = &self.discovery_url {
            return Ok(u.clone());
        }
        let base = self.issuer.trim_end_matches('/');
        Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| format!("issuer is not a URL: {e}"))
    }
}

/// One verification key from the JWKS, parsed once.
struct VerifyKey {
    alg: Algorithm,
    key: ParsedPublicKey,
}

type KeySet = HashMap<String, Arc<VerifyKey>>;

struct RefreshState {
    /// The last fetch triggered by an unknown `kid` (the rate-limited kind).
    last_on_demand: Option<Instant>,
    last_ok: bool,
    jwks_uri: Option<Url>,
}

struct Inner {
    config: VerifierConfig,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

/// Verifies RFC 9068 access tokens against the issuer's JWKS. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .field("keys", &self.inner.keys.load().len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: Url,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

impl Verifier {
    /// Creates the verifier, tries a first JWKS fetch and starts the background refresh.
    /// An unreachable issuer is not an error here: keys are fetched when first needed.
    pub async fn new(config: VerifierConfig) -> Result<Self, String> {
        config.discovery()?;
        if config.algorithms.iter().any(|a| !is_asymmetric(*a)) {
            return Err("only asymmetric algorithms may be accepted".into());
        }
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let verifier = Self {
            inner: Arc::new(Inner {
                config,
                http,
                keys: ArcSwap::from_pointee(HashMap::new()),
                refresh: tokio::sync::Mutex::new(RefreshState {
                    last_on_demand: None,
                    last_ok: false,
                    jwks_uri: None,
                }),
            }),
        };
        let first = {
            let mut state = verifier.inner.refresh.lock().await;
            verifier.inner.fetch(&mut state).await
        };
        let next = match &first {
            Ok(max_age) => *max_age,
            Err(e) => {
                tracing::warn!(error = %e, "token keys not fetched yet; will retry");
                verifier.inner.config.min_refresh
            }
        };
        tokio::spawn(background_refresh(Arc::downgrade(&verifier.inner), next));
        Ok(verifier)
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// Number of keys currently cached.
    pub fn cached_keys(&self) -> usize {
        self.inner.keys.load().len()
    }

    /// Verifies a compact JWS access token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let inner = &*self.inner;
        if token.len() > inner.config.max_token_len {
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
        if !inner.config.algorithms.contains(&header.alg) {
            return Err(AuthError::InvalidToken("algorithm not accepted"));
        }
        match header.typ.as_deref() {
            Some(t)
                if t.eq_ignore_ascii_case("at+jwt")
                    || t.eq_ignore_ascii_case("application/at+jwt") => {}
            _ => {
                return Err(AuthError::InvalidToken(
                    "not an access token (typ must be at+jwt)",
                ));
            }
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(AuthError::InvalidToken("token has no key id"))?;
        let key = match inner.keys.load().get(kid) {
            Some(k) => k.clone(),
            None => inner.key_for_unknown_kid(kid).await?,
        };
        if key.alg != header.alg {
            return Err(AuthError::InvalidToken("algorithm does not match the key"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::InvalidToken("malformed token"))?;
        key.key
            .verify_sig(signing_input.as_bytes(), &signature)
            .map_err(|_| AuthError::InvalidToken("bad signature"))?;
        // Only now, with the signature checked, is the payload parsed.
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::InvalidToken("malformed token claims"))?;
        let claims: AccessClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::InvalidToken("malformed token claims"))?;
        inner.check_claims(&claims)?;
        Ok(claims)
    }

    /// Fetches the JWKS now, outside the unknown-`kid` rate limit. For warm-up and readiness.
    pub async fn refresh_now(&self) -> Result<(), String> {
        let mut state = self.inner.refresh.lock().await;
        self.inner.fetch(&mut state).await.map(|_| ())
    }
}

impl Inner {
    fn check_claims(&self, c: &AccessClaims) -> Result<(), AuthError> {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let leeway = self.config.leeway.as_secs() as i64;
        if c.iss != self.config.issuer {
            return Err(AuthError::InvalidToken("wrong issuer"));
        }
        if !c.aud.contains(&self.config.audience) {
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

    async fn key_for_unknown_kid(&self, kid: &str) -> Result<Arc<VerifyKey>, AuthError> {
        let mut state = self.refresh.lock().await;
        // Whoever held the lock before us may have fetched the key already.
        if let Some(k) = self.keys.load().get(kid) {
            return Ok(k.clone());
        }
        // After a failed fetch the issuer is retried sooner (it may just have started); a
        // healthy issuer is asked at most once per `min_refetch_interval`.
        let interval = if state.last_ok {
            self.config.min_refetch_interval
        } else {
            self.config.min_refetch_interval.min(Duration::from_secs(1))
        };
        if let Some(last) = state.last_on_demand
            && last.elapsed() < interval
        {
            return Err(if state.last_ok {
                AuthError::InvalidToken("unknown signing key")
            } else {
                AuthError::KeysUnavailable
            });
        }
        state.last_on_demand = Some(Instant::now());
        match self.fetch(&mut state).await {
            Ok(_) => self
                .keys
                .load()
                .get(kid)
                .cloned()
                .ok_or(AuthError::InvalidToken("unknown signing key")),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed");
                Err(AuthError::KeysUnavailable)
            }
        }
    }

    /// One fetch of the JWKS (discovering its URI first if needed). Replaces the cached key set
    /// on success and returns how long to wait before the next scheduled refresh.
    async fn fetch(&self, state: &mut RefreshState) -> Result<Duration, String> {
        let result = self.fetch_inner(state).await;
        state.last_ok = result.is_ok();
        result
    }

    async fn fetch_inner(&self, state: &mut RefreshState) -> Result<Duration, String> {
        let jwks_uri = match (&self.config.jwks_uri, &state.jwks_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let url = self.config.discovery()?;
                let meta: Metadata = self
                    .http
                    .get(url.clone())
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("issuer metadata {url}: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("issuer metadata {url}: {e}"))?;
                if meta.issuer != self.config.issuer {
                    return Err(format!(
                        "issuer metadata names issuer {:?}, expected {:?}",
                        meta.issuer, self.config.issuer
                    ));
                }
                state.jwks_uri = Some(meta.jwks_uri.clone());
                meta.jwks_uri
            }
        };
        let resp = self
            .http
            .get(jwks_uri.clone())
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("JWKS {jwks_uri}: {e}"))?;
        let max_age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let set: RawJwkSet = resp
            .json()
            .await
            .map_err(|e| format!("JWKS {jwks_uri}: {e}"))?;
        let keys: KeySet = set
            .keys
            .into_iter()
            .filter_map(|raw| {
                let jwk: Jwk = serde_json::from_value(raw).ok()?;
                let (kid, key) = self.verify_key(&jwk)?;
                Some((kid, Arc::new(key)))
            })
            .collect();
        tracing::debug!(keys = keys.len(), "JWKS loaded");
        self.keys.store(Arc::new(keys));
        let refresh = max_age
            .unwrap_or(self.config.default_refresh)
            .clamp(self.config.min_refresh, self.config.max_refresh);
        Ok(refresh)
    }

    /// The verification key for one JWK, or `None` when it is not a signing key we may use.
    fn verify_key(&self, jwk: &Jwk) -> Option<(String, VerifyKey)> {
        let kid = jwk.common.key_id.clone()?;
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return None;
        }
        // The algorithm is implied by the key type and curve; a declared `alg` must agree.
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
        if !self.config.algorithms.contains(&alg) {
            return None;
        }
        let key = parse_public_key(&jwk.algorithm)?;
        Some((kid, VerifyKey { alg, key }))
    }
}

async fn background_refresh(inner: Weak<Inner>, mut wait: Duration) {
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.refresh.lock().await;
        wait = match inner.fetch(&mut state).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refresh failed; keeping cached keys");
                inner.config.min_refresh
            }
        };
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

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// `max-age` from a `Cache-Control` value; `no-store`/`no-cache` mean "refresh soon".
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            max_age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
