//! The key ring in memory: each key with its lifecycle state at a given time (next, current,
//! retiring, gone; see the module doc of [`crate::keys`]), the signer per algorithm and the
//! keys the JWKS publishes.

use crate::keys::{SigningAlg, SigningPair};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use tansu_shared::auth::VerifyKey;

/// One key of the in-memory ring.
pub struct RingKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: i64,
    pub activate_at: i64,
    /// When the successor activates (this key stops signing); `None` while it has none.
    pub retire_at: Option<i64>,
    pub jwk: serde_json::Value,
    /// The public half, parsed once, as every verifier of our tokens uses it.
    pub verify: Arc<VerifyKey>,
    pub pair: SigningPair,
}

/// A key's place in its lifecycle at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Current,
    Retiring,
    Gone,
}

impl RingKey {
    pub fn state(&self, now: i64, grace_ms: i64) -> KeyState {
        if now < self.activate_at {
            KeyState::Next
        } else {
            match self.retire_at {
                Some(r) if now >= r.saturating_add(grace_ms) => KeyState::Gone,
                Some(r) if now >= r => KeyState::Retiring,
                _ => KeyState::Current,
            }
        }
    }
}

/// An immutable snapshot of the ring; replaced whole on reload.
#[derive(Default)]
pub struct KeyRing {
    /// Sorted by (alg, activate_at).
    pub(crate) keys: Vec<Arc<RingKey>>,
    by_kid: HashMap<String, Arc<RingKey>>,
}

impl KeyRing {
    pub(crate) fn new(mut keys: Vec<Arc<RingKey>>) -> Self {
        keys.sort_by_key(|k| (k.alg.as_str(), k.activate_at));
        let by_kid = keys.iter().map(|k| (k.kid.clone(), k.clone())).collect();
        Self { keys, by_kid }
    }

    /// The key that signs `alg` tokens at `now`.
    pub fn signer(&self, alg: SigningAlg, now: i64) -> Option<&Arc<RingKey>> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.activate_at <= now)
            .max_by_key(|k| k.activate_at)
    }

    /// The keys in the JWKS at `now`: next, current and retiring ones.
    pub fn published(&self, now: i64, grace_ms: i64) -> impl Iterator<Item = &Arc<RingKey>> {
        self.keys
            .iter()
            .filter(move |k| k.state(now, grace_ms) != KeyState::Gone)
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<RingKey>> {
        self.by_kid.get(kid)
    }

    pub fn all(&self) -> &[Arc<RingKey>] {
        &self.keys
    }
}
