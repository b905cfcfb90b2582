//! Server-side sessions and pending sign-ins (in memory, bounded, expiring).
//!
//! The browser holds only a random 256-bit id. Tokens stay here and are never logged (no
//! `Debug` on these types).

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

/// At most this many live sessions / pending sign-ins (memory bound).
const MAX_SESSIONS: usize = 10_000;
const MAX_PENDING: usize = 10_000;
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

#[derive(Clone)]
pub struct Pending {
    pub pkce_verifier: String,
    pub nonce: String,
    pub return_to: String,
    pub created: Instant,
}

#[derive(Clone, Default)]
pub struct Sessions {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
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

    /// Stores a pending sign-in under its OAuth `state`; false when too many are pending.
    pub fn insert_pending(&self, state: String, pending: Pending) -> bool {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < PENDING_LIFETIME);
        if map.len() >= MAX_PENDING {
            return false;
        }
        map.insert(state, pending);
        true
    }

    /// Takes (one use) a pending sign-in that has not expired.
    pub fn take_pending(&self, state: &str) -> Option<Pending> {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(state)?;
        (p.created.elapsed() < PENDING_LIFETIME).then_some(p)
    }
}
