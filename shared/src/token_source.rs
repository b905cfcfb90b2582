//! Client-credentials tokens for service-to-service calls (RFC 6749 §4.4).
//!
//! A [`TokenSource`] asks the issuer's token endpoint for a token once and hands out the
//! cached one until shortly before it expires (a tenth of its lifetime, at most a minute, before),
//! so a service does not call the issuer on every request. Concurrent callers share one request.
//!
//! [`TokenSource::on_behalf_of`] exchanges a user's access token for one for another service
//! (RFC 8693 token exchange) with the same client credentials: the user stays the subject, the
//! service is named as the actor (`act`), the scopes can only narrow. Those tokens are per user
//! and not cached here.
//!
//! [`TokenSource::with_dpop`] makes the tokens DPoP-bound (RFC 9449) to a key of this process:
//! each token request carries a proof (with the issuer's nonce, learnt from its
//! `use_dpop_nonce` answer and retried once), and each call with a token needs a fresh proof
//! of its own ([`TokenSource::proof`], sent with [`TokenSource::authorization`]). A stolen token
//! is then useless without the key.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use serde::Deserialize;
use url::Url;

use crate::config::Secret;

#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_endpoint: Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// Space-separated scopes to ask for (empty: the client's defaults).
    pub scope: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenSourceError {
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// The issuer answered an RFC 6749 §5.2 error.
    #[error("token request refused: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        error: String,
        description: Option<String>,
    },
    #[error("token response malformed: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

struct Cached {
    token: Arc<str>,
    refresh_at: Instant,
}

/// A cached client-credentials token. Cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    creds: ClientCredentials,
    /// The DPoP key the tokens are bound to, and the issuer's latest nonce.
    dpop: Option<(
        crate::auth::dpop::ProofKey,
        std::sync::Mutex<Option<String>>,
    )>,
    /// Read the secret from this file's first line when `creds.client_secret` is empty.
    secret_file: Option<std::path::PathBuf>,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_id", &self.inner.creds.client_id)
            .field("token_endpoint", &self.inner.creds.token_endpoint.as_str())
            .finish()
    }
}

impl TokenSource {
    pub fn new(creds: ClientCredentials) -> Self {
        Self::build(creds, None, None)
    }

    /// A source whose tokens are DPoP-bound to a key made now (see the module doc).
    pub fn with_dpop(creds: ClientCredentials) -> Result<Self, String> {
        let key = crate::auth::dpop::ProofKey::generate()?;
        Ok(Self::build(creds, None, Some(key)))
    }

    /// The thumbprint of the DPoP key the tokens are bound to (`None`: bearer tokens).
    pub fn jkt(&self) -> Option<String> {
        self.inner.dpop.as_ref().map(|(key, _)| key.jkt())
    }

    /// The `Authorization` value for a call with `token`: `DPoP …` for a DPoP source (send
    /// [`Self::proof`] beside it), else `Bearer …`.
    pub fn authorization(&self, token: &str) -> String {
        match self.inner.dpop {
            Some(_) => format!("DPoP {token}"),
            None => format!("Bearer {token}"),
        }
    }

    /// The `DPoP` header value for one call with `token` to `method` `url` (as the callee's
    /// clients call it: the public URL behind the gateway); `None` for a bearer source. Each
    /// call needs its own.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        token: &str,
    ) -> Result<Option<String>, TokenSourceError> {
        let Some((key, nonce)) = &self.inner.dpop else {
            return Ok(None);
        };
        let nonce = nonce.lock().unwrap_or_else(|e| e.into_inner()).clone();
        key.proof(method, url, Some(token), nonce.as_deref())
            .map(Some)
            .map_err(|e| TokenSourceError::Malformed(e.to_string()))
    }

    /// A source whose secret (when `creds.client_secret` is empty) is the first line of
    /// `file`, read at each token request: the file may not exist yet when the caller starts
    /// (in the dev stack identity writes it at its first start).
    pub fn with_secret_file(creds: ClientCredentials, file: std::path::PathBuf) -> Self {
        Self::build(creds, Some(file), None)
    }

    fn build(
        creds: ClientCredentials,
        secret_file: Option<std::path::PathBuf>,
        dpop: Option<crate::auth::dpop::ProofKey>,
    ) -> Self {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                creds,
                dpop: dpop.map(|key| (key, std::sync::Mutex::new(None))),
                secret_file,
                http,
                cached: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// A valid access token, from the cache or freshly requested.
    pub async fn token(&self) -> Result<Arc<str>, TokenSourceError> {
        let mut cached = self.inner.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.inner.request_own().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops the cached token (after a 401 from the callee, for example).
    pub async fn invalidate(&self) {
        *self.inner.cached.lock().await = None;
    }

    /// A token for `audience` (`tansu.db`, …) acting for the user of `user_token` (RFC 8693):
    /// `scopes` (space-separated; empty: all the user's scopes for that audience) must be among
    /// the user token's. The issuer decides whether this client may act for the tenant's users
    /// towards that audience (the tenant's `token_exchange` policy); its refusal is
    /// [`TokenSourceError::OAuth`].
    pub async fn on_behalf_of(
        &self,
        user_token: &str,
        audience: &str,
        scopes: &str,
    ) -> Result<Arc<str>, TokenSourceError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", user_token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", audience),
        ];
        if !scopes.is_empty() {
            form.push(("scope", scopes));
        }
        Ok(self.inner.request(&form).await?.token)
    }
}

/// The grant and token type of RFC 8693 token exchange.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl Inner {
    async fn request_own(&self) -> Result<Cached, TokenSourceError> {
        let c = &self.creds;
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if !c.scope.is_empty() {
            form.push(("scope", &c.scope));
        }
        self.request(&form).await
    }

    /// A token request; a DPoP source's is retried once with the issuer's nonce when it asks
    /// for one (RFC 9449 §8).
    async fn request(&self, form: &[(&str, &str)]) -> Result<Cached, TokenSourceError> {
        let first = self.request_once(form).await;
        match (&self.dpop, &first) {
            (Some(_), Err(TokenSourceError::OAuth { error, .. })) if error == "use_dpop_nonce" => {
                self.request_once(form).await
            }
            _ => first,
        }
    }

    /// The `DPoP` proof of a token request (`None` for a bearer source).
    fn token_request_proof(&self) -> Result<Option<String>, TokenSourceError> {
        let Some((key, nonce)) = &self.dpop else {
            return Ok(None);
        };
        let nonce = nonce.lock().unwrap_or_else(|e| e.into_inner()).clone();
        key.proof(
            "POST",
            self.creds.token_endpoint.as_str(),
            None,
            nonce.as_deref(),
        )
        .map(Some)
        .map_err(|e| TokenSourceError::Malformed(e.to_string()))
    }

    async fn request_once(&self, form: &[(&str, &str)]) -> Result<Cached, TokenSourceError> {
        let c = &self.creds;
        // client_secret_basic: id and secret are form-urlencoded before Basic (RFC 6749 §2.3.1).
        let user = form_encode(&c.client_id);
        let pass = match &self.secret_file {
            Some(file) if c.client_secret.is_empty() => form_encode(&read_secret(file).await?),
            _ => form_encode(c.client_secret.expose()),
        };
        let sent = Instant::now();
        let (span, trace) = crate::telemetry::client_call("POST token");
        let mut req = self
            .http
            .post(c.token_endpoint.clone())
            .basic_auth(user, Some(pass))
            .form(form)
            .headers(trace);
        if let Some(proof) = self.token_request_proof()? {
            req = req.header(crate::auth::dpop::DPOP_HEADER, proof);
        }
        let resp = req
            .send()
            .instrument(span)
            .await
            .map_err(|e| TokenSourceError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        if let Some((_, nonce)) = &self.dpop
            && let Some(fresh) = resp
                .headers()
                .get(crate::auth::dpop::NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            *nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.to_owned());
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| TokenSourceError::Transport(e.to_string()))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(e) => TokenSourceError::OAuth {
                    error: e.error,
                    description: e.error_description,
                },
                Err(_) => TokenSourceError::Malformed(format!("HTTP {status}")),
            });
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| TokenSourceError::Malformed(e.to_string()))?;
        let expected = if self.dpop.is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        if !t.token_type.eq_ignore_ascii_case(expected) {
            return Err(TokenSourceError::Malformed(format!(
                "token_type {:?}",
                t.token_type
            )));
        }
        let lifetime = Duration::from_secs(t.expires_in.unwrap_or(60));
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        Ok(Cached {
            token: t.access_token.into(),
            refresh_at: sent + lifetime - margin,
        })
    }
}

/// The first line of a secret file (never echoed in the error).
async fn read_secret(file: &std::path::Path) -> Result<String, TokenSourceError> {
    let text = tokio::fs::read_to_string(file)
        .await
        .map_err(|e| TokenSourceError::Transport(format!("reading {}: {e}", file.display())))?;
    let secret = text.lines().next().unwrap_or("").trim();
    if secret.is_empty() {
        return Err(TokenSourceError::Transport(format!(
            "{} is empty",
            file.display()
        )));
    }
    Ok(secret.to_owned())
}

fn form_encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|v| v.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_encoding_of_credentials() {
        assert_eq!(super::form_encode("a b:c%"), "a+b%3Ac%25");
    }
}
