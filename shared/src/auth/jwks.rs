//! The key source of the resource servers: the issuer's JWKS, fetched and cached.
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
//! - Metrics: `jwks_cache_lookups_total{result="hit"|"miss"}` per token's key lookup and
//!   `jwks_fetches_total{outcome="ok"|"error"}` per fetch of the JWKS.
//! - Only asymmetric keys are ever loaded (symmetric `oct` keys in a JWKS are ignored) and only
//!   those of the configured algorithms ([`VerifyKey::from_jwk`]).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use url::Url;

use super::error::AuthError;
use super::jws::VerifyKey;
use super::verifier::{KeySource, VerifierConfig};

type KeySet = HashMap<String, Arc<VerifyKey>>;

struct RefreshState {
    /// The last fetch triggered by an unknown `kid` (the rate-limited kind).
    last_on_demand: Option<Instant>,
    last_ok: bool,
    jwks_uri: Option<Url>,
}

/// The JWKS cache of one verifier.
pub(super) struct Jwks {
    config: VerifierConfig,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
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

impl Jwks {
    /// Tries a first fetch and starts the background refresh. An unreachable issuer is not an
    /// error here: keys are fetched when first needed.
    pub(super) async fn start(config: VerifierConfig) -> Result<Arc<Self>, String> {
        config.discovery()?;
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let jwks = Arc::new(Self {
            config,
            http,
            keys: ArcSwap::from_pointee(HashMap::new()),
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_on_demand: None,
                last_ok: false,
                jwks_uri: None,
            }),
        });
        let first = {
            let mut state = jwks.refresh.lock().await;
            jwks.fetch(&mut state).await
        };
        let next = match &first {
            Ok(max_age) => *max_age,
            Err(e) => {
                tracing::warn!(error = %e, "token keys not fetched yet; will retry");
                jwks.config.min_refresh
            }
        };
        tokio::spawn(background_refresh(Arc::downgrade(&jwks), next));
        Ok(jwks)
    }

    pub(super) fn len(&self) -> usize {
        self.keys.load().len()
    }

    /// Fetches now, outside the unknown-`kid` rate limit.
    pub(super) async fn refresh_now(&self) -> Result<(), String> {
        let mut state = self.refresh.lock().await;
        self.fetch(&mut state).await.map(|_| ())
    }
}

impl KeySource for Jwks {
    fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        let key = self.keys.load().get(kid).cloned();
        let result = if key.is_some() { "hit" } else { "miss" };
        metrics::counter!("jwks_cache_lookups_total", "result" => result).increment(1);
        key
    }

    fn key_for_unknown<'a>(
        &'a self,
        kid: &'a str,
    ) -> BoxFuture<'a, Result<Arc<VerifyKey>, AuthError>> {
        Box::pin(self.key_for_unknown_kid(kid))
    }
}

impl Jwks {
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
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!("jwks_fetches_total", "outcome" => outcome).increment(1);
        result
    }

    async fn fetch_inner(&self, state: &mut RefreshState) -> Result<Duration, String> {
        let jwks_uri = match (&self.config.jwks_uri, &state.jwks_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let url = self.config.discovery()?;
                let (span, trace) = crate::telemetry::client_call("GET issuer metadata");
                let meta: Metadata = self
                    .http
                    .get(url.clone())
                    .headers(trace)
                    .send()
                    .instrument(span)
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
        let (span, trace) = crate::telemetry::client_call("GET jwks");
        let resp = self
            .http
            .get(jwks_uri.clone())
            .headers(trace)
            .send()
            .instrument(span)
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
                let (kid, key) = VerifyKey::from_jwk(&jwk, &self.config.algorithms)?;
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
}

async fn background_refresh(jwks: Weak<Jwks>, mut wait: Duration) {
    loop {
        tokio::time::sleep(wait).await;
        let Some(inner) = jwks.upgrade() else { return };
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
