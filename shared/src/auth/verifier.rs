//! The access-token verifier every holder of a Tansu token uses: the resource servers with the
//! issuer's JWKS as key source ([`Verifier::new`], see [`super::jwks`]), identity with its
//! in-memory key ring ([`Verifier::with_keys`]). Only the configured algorithms are accepted
//! (never `none` or HS*), and the key's own algorithm must match the token header's: the
//! algorithm-confusion attacks have nothing to use.
//!
//! The steps (header, signature with a key parsed once, claims) are [`super::jws`]'s; a
//! [`KeySource`] only answers "which key has this `kid`".

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use futures::future::BoxFuture;
use jsonwebtoken::Algorithm;
use serde::de::DeserializeOwned;
use url::Url;

use super::claims::AccessClaims;
use super::dpop::{self, NonceIssuer, ReplayCache};
use super::error::AuthError;
use super::extract::Credential;
use super::jwks::Jwks;
use super::jws::{ClaimChecks, MAX_TOKEN_LEN, SignedToken, VerifyKey};

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
    /// Require a server nonce in DPoP proofs (RFC 9449 §9); nonces are per process unless
    /// the verifier is given a [`DpopState`] with a shared key.
    pub dpop_nonce: bool,
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
            max_token_len: MAX_TOKEN_LEN,
            http_timeout: Duration::from_secs(5),
            dpop_nonce: false,
        }
    }

    pub(super) fn discovery(&self) -> Result<Url, String> {
        if let Some(u) = &self.discovery_url {
            return Ok(u.clone());
        }
        let base = self.issuer.trim_end_matches('/');
        Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| format!("issuer is not a URL: {e}"))
    }
}

/// Where a [`Verifier`] finds the key a token names.
pub trait KeySource: Send + Sync + 'static {
    /// The key with this `kid` that may verify tokens now, if known.
    fn key(&self, kid: &str) -> Option<Arc<VerifyKey>>;

    /// Asked when [`Self::key`] knows no such key; a fetching source may look again.
    fn key_for_unknown<'a>(
        &'a self,
        _kid: &'a str,
    ) -> BoxFuture<'a, Result<Arc<VerifyKey>, AuthError>> {
        Box::pin(std::future::ready(Err(AuthError::InvalidToken(
            "unknown signing key",
        ))))
    }
}

struct Inner {
    config: VerifierConfig,
    keys: Arc<dyn KeySource>,
    /// The JWKS cache when the keys come from one.
    jwks: Option<Arc<Jwks>>,
    /// The DPoP proofs seen, and the nonces handed out (when required).
    replay: ReplayCache,
    nonces: Option<NonceIssuer>,
}

/// What a verifier keeps of DPoP beyond one request: the proofs seen and the nonce key.
/// The default is this process's own (a replay cache of its own, a random nonce key);
/// replicas that share a Redis and a key share both, so a proof used at one is refused at the
/// others and a nonce handed out by one is accepted by the others.
#[derive(Debug, Default)]
pub struct DpopState {
    pub replay: ReplayCache,
    /// The nonces, when [`VerifierConfig::dpop_nonce`] requires them (`None`: a random key).
    pub nonces: Option<NonceIssuer>,
}

impl DpopState {
    fn nonces_for(self, config: &VerifierConfig) -> (ReplayCache, Option<NonceIssuer>) {
        let nonces = config.dpop_nonce.then(|| {
            self.nonces
                .unwrap_or_else(|| NonceIssuer::new(NONCE_WINDOW_SECS))
        });
        (self.replay, nonces)
    }
}

/// How long a server nonce is current (accepted for up to twice that).
pub const NONCE_WINDOW_SECS: i64 = 60;

/// Verifies RFC 9068 access tokens. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .field("keys", &self.cached_keys())
            .finish()
    }
}

impl Verifier {
    /// A verifier whose keys come from the issuer's JWKS: tries a first fetch and starts the
    /// background refresh. An unreachable issuer is not an error here: keys are fetched when
    /// first needed.
    pub async fn new(config: VerifierConfig) -> Result<Self, String> {
        Self::with_dpop(config, DpopState::default()).await
    }

    /// [`Verifier::new`], keeping DPoP's replay records and nonces in `dpop` (shared by
    /// replicas, see [`DpopState`]).
    pub async fn with_dpop(config: VerifierConfig, dpop: DpopState) -> Result<Self, String> {
        check_algorithms(&config)?;
        crate::install_crypto_provider();
        let jwks = Jwks::start(config.clone()).await?;
        let (replay, nonces) = dpop.nonces_for(&config);
        Ok(Self {
            inner: Arc::new(Inner {
                nonces,
                replay,
                config,
                keys: jwks.clone(),
                jwks: Some(jwks),
            }),
        })
    }

    /// A verifier with its keys at hand (the issuer verifying its own tokens).
    pub fn with_keys(config: VerifierConfig, keys: Arc<dyn KeySource>) -> Result<Self, String> {
        Self::with_keys_and_dpop(config, keys, DpopState::default())
    }

    /// [`Verifier::with_keys`], keeping DPoP's replay records and nonces in `dpop` (shared by
    /// replicas, see [`DpopState`]).
    pub fn with_keys_and_dpop(
        config: VerifierConfig,
        keys: Arc<dyn KeySource>,
        dpop: DpopState,
    ) -> Result<Self, String> {
        check_algorithms(&config)?;
        let (replay, nonces) = dpop.nonces_for(&config);
        Ok(Self {
            inner: Arc::new(Inner {
                nonces,
                replay,
                config,
                keys,
                jwks: None,
            }),
        })
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// Number of keys in the JWKS cache (0 for a verifier with its keys at hand).
    pub fn cached_keys(&self) -> usize {
        self.inner.jwks.as_ref().map_or(0, |j| j.len())
    }

    /// Verifies a compact JWS access token for the configured audience.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        self.verify_claims(token, Some(&self.inner.config.audience))
            .await
    }

    /// Verifies a token into its claims type `C` (the issuer's own claims carry more than
    /// [`AccessClaims`]). `audience: None` accepts any audience: only for the issuer itself
    /// (introspection and userinfo answer for tokens of every audience).
    pub async fn verify_claims<C>(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<C, AuthError>
    where
        C: DeserializeOwned + AsRef<AccessClaims>,
    {
        let inner = &*self.inner;
        let jws = SignedToken::parse(token, inner.config.max_token_len)?;
        if !inner.config.algorithms.contains(&jws.alg()) {
            return Err(AuthError::InvalidToken("algorithm not accepted"));
        }
        jws.require_access_token()?;
        let kid = jws.kid()?;
        let key = match inner.keys.key(kid) {
            Some(k) => k,
            None => inner.keys.key_for_unknown(kid).await?,
        };
        let claims: C = jws.verify(&key)?;
        ClaimChecks {
            issuer: &inner.config.issuer,
            audience,
            leeway: inner.config.leeway,
        }
        .check(claims.as_ref())?;
        Ok(claims)
    }

    /// Checks how a verified token was presented: a DPoP-bound one (`cnf.jkt`) only with the
    /// `DPoP` scheme and a valid proof of its key for this request (RFC 9449 §7.1), a bearer
    /// one only with the `Bearer` scheme.
    /// `method` and `url` are the request's as the client made it ([`dpop::request_url`]).
    pub async fn check_binding(
        &self,
        claims: &AccessClaims,
        credential: Credential<'_>,
        method: &str,
        url: &str,
        headers: &HeaderMap,
    ) -> Result<(), AuthError> {
        let jkt = match (&claims.cnf, credential) {
            (None, Credential::Bearer(_)) => return Ok(()),
            (None, Credential::Dpop(_)) => {
                return Err(AuthError::InvalidToken("not a DPoP-bound token"));
            }
            (Some(_), Credential::Bearer(_)) => {
                return Err(AuthError::InvalidDpopProof(
                    "the token is DPoP-bound: send it with the DPoP scheme and a proof",
                ));
            }
            (Some(cnf), Credential::Dpop(_)) => &cnf.jkt,
        };
        let proof =
            dpop::proof_header(headers)?.ok_or(AuthError::InvalidDpopProof("no DPoP proof"))?;
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let proof = dpop::verify_proof(
            proof,
            &dpop::ProofRequest {
                method,
                url,
                access_token: Some(credential.token()),
            },
            now,
        )?;
        if proof.jkt != *jkt {
            return Err(AuthError::InvalidDpopProof(
                "the proof is not signed by the token's key",
            ));
        }
        self.check_dpop_nonce_and_replay(&proof, now).await
    }

    /// The last checks of a verified DPoP proof: the server's nonce (when this verifier
    /// requires one) and that its `jti` was not seen before.
    pub async fn check_dpop_nonce_and_replay(
        &self,
        proof: &dpop::Proof,
        now: i64,
    ) -> Result<(), AuthError> {
        if let Some(nonces) = &self.inner.nonces
            && !proof
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now))
        {
            return Err(AuthError::UseDpopNonce(nonces.current(now)));
        }
        self.inner.replay.first_use(proof, now).await
    }

    /// Fetches the JWKS now, outside the unknown-`kid` rate limit. For warm-up and readiness.
    pub async fn refresh_now(&self) -> Result<(), String> {
        match &self.inner.jwks {
            Some(jwks) => jwks.refresh_now().await,
            None => Ok(()),
        }
    }
}

fn check_algorithms(config: &VerifierConfig) -> Result<(), String> {
    if config.algorithms.iter().any(|a| !is_asymmetric(*a)) {
        return Err("only asymmetric algorithms may be accepted".into());
    }
    Ok(())
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}
