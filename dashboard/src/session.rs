//! Server-side sessions (in memory, bounded, expiring) and pending sign-ins (sealed in the
//! browser's login cookie).
//!
//! The browser holds only a random 256-bit session id. Tokens stay here and are never logged
//! (no `Debug` on these types). A pending sign-in (PKCE verifier, nonce, OAuth `state`, where
//! to return) lives in the login cookie, sealed with AES-256-GCM under a key of this process:
//! the server keeps nothing per started sign-in, so anonymous requests cannot exhaust room that
//! real sign-ins need, and a cookie that was altered, is older than [`PENDING_LIFETIME`] or
//! names another `state` does not open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tansu_dashboard_session";
/// The cookie binding a pending sign-in to this browser (holds the OAuth `state`).
pub const LOGIN_COOKIE: &str = "tansu_dashboard_login";

/// At most this many live sessions (memory bound).
const MAX_SESSIONS: usize = 10_000;
/// A sign-in must complete within this time.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// 256 random bits, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system random source failing is not recoverable; never hand out a weak id.
        panic!("system random source failed");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time string comparison.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[derive(Clone)]
pub struct Session {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    pub access_token: String,
    pub id_token: String,
    pub csrf: String,
    pub expires: Instant,
}

impl Session {
    /// Platform and tenant admins (`Admin` or `Owner`) may use the dashboard.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "Admin" || r == "Owner")
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
    /// The OAuth `state` the sign-in was started with.
    pub state: String,
    /// When the sign-in started (unix seconds).
    pub created: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Pending {
    pub fn new(pkce_verifier: String, nonce: String, return_to: String, state: String) -> Self {
        Self {
            pkce_verifier,
            nonce,
            return_to,
            state,
            created: unix_now(),
        }
    }
}

const PENDING_AAD: &[u8] = b"tansu-dashboard pending sign-in v1";

#[derive(Clone)]
pub struct Sessions {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Seals pending sign-ins (a random key of this process).
    pending_key: Arc<aws_lc_rs::aead::LessSafeKey>,
}

impl Default for Sessions {
    fn default() -> Self {
        let mut key = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut key).is_err() {
            panic!("system random source failed");
        }
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &key)
            .unwrap_or_else(|_| panic!("an AES-256 key is 32 bytes"));
        Self {
            sessions: Arc::default(),
            pending_key: Arc::new(aws_lc_rs::aead::LessSafeKey::new(key)),
        }
    }
}

impl Sessions {
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Stores a session; returns its id.
    pub fn insert(&self, session: Session) -> String {
        let id = random_token();
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            // Evict the session closest to expiry.
            if let Some(k) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        map.insert(id.clone(), session);
        id
    }

    pub fn remove(&self, id: &str) -> Option<Session> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
    }

    /// Seals a pending sign-in into the login cookie's value.
    pub fn seal_pending(&self, pending: &Pending) -> anyhow::Result<String> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| anyhow::anyhow!("system random source failed"))?;
        let mut data = serde_json::to_vec(pending)?;
        self.pending_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PENDING_AAD),
                &mut data,
            )
            .map_err(|_| anyhow::anyhow!("sealing a pending sign-in failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens the login cookie of a sign-in that returned with `state`: the pending sign-in,
    /// if the cookie is this process's, unaltered, for that `state` and not expired.
    pub fn open_pending(&self, cookie: &str, state: &str) -> Option<Pending> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        if cookie.len() > 4096 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .pending_key
            .open_in_place(nonce, Aad::from(PENDING_AAD), &mut sealed)
            .ok()?;
        let pending: Pending = serde_json::from_slice(plain).ok()?;
        let fresh = unix_now().saturating_sub(pending.created) < PENDING_LIFETIME.as_secs();
        (fresh && same(&pending.state, state)).then_some(pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_opens_only_unaltered_for_its_state_and_in_time() {
        let sessions = Sessions::default();
        let p = Pending::new("verifier".into(), "nonce".into(), "/".into(), "st".into());
        let sealed = sessions.seal_pending(&p).unwrap();
        let opened = sessions.open_pending(&sealed, "st").expect("opens");
        assert_eq!(opened.pkce_verifier, "verifier");
        assert!(sessions.open_pending(&sealed, "other").is_none());
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            sessions
                .open_pending(&URL_SAFE_NO_PAD.encode(bytes), "st")
                .is_none()
        );
        // Another process's cookie does not open.
        assert!(Sessions::default().open_pending(&sealed, "st").is_none());
        let old = Pending {
            created: unix_now() - PENDING_LIFETIME.as_secs() - 1,
            ..p
        };
        let sealed = sessions.seal_pending(&old).unwrap();
        assert!(sessions.open_pending(&sealed, "st").is_none());
    }
}
