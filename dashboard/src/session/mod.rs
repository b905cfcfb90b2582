//! Dashboard sessions and pending sign-ins.
//!
//! The browser holds only a random 256-bit session id. The session (who, roles, tokens) lives
//! on the server: in this process's memory by default, or in Redis when `redis_url` is set, so
//! that every replica behind the gateway knows every session ([`store`]). Tokens are never
//! logged (no `Debug` on these types), and in Redis a session is stored sealed with
//! AES-256-GCM under the dashboard's session key, under the SHA-256 of its id: whoever reads
//! Redis learns neither a token nor an id that would sign them in.
//!
//! A pending sign-in (PKCE verifier, nonce, OAuth `state`, where to return) lives in the login
//! cookie, sealed under the same key: the server keeps nothing per started sign-in, so
//! anonymous requests cannot exhaust room that real sign-ins need, and a cookie that was
//! altered, is older than [`PENDING_LIFETIME`] or names another `state` does not open. With a
//! configured key any replica opens it; without one, the key is random per process.

mod store;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tansu_dashboard_session";
/// The cookie binding a pending sign-in to this browser (holds the OAuth `state`).
pub const LOGIN_COOKIE: &str = "tansu_dashboard_login";

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

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub subject: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub tenant: Option<String>,
    pub access_token: String,
    pub id_token: String,
    pub csrf: String,
    /// When the session ends (unix seconds).
    pub expires: u64,
}

impl Session {
    /// Platform and tenant admins (`Admin` or `Owner`) may use the dashboard.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "Admin" || r == "Owner")
    }

    /// The time left until the session ends (zero once it has).
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires.saturating_sub(unix_now()))
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

pub fn unix_now() -> u64 {
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

/// The sessions of this dashboard and the key that seals what leaves the process.
#[derive(Clone)]
pub struct Sessions {
    store: store::Store,
    key: Arc<aws_lc_rs::aead::LessSafeKey>,
}

impl Default for Sessions {
    /// Sessions in this process's memory, sealed under a random key of this process.
    fn default() -> Self {
        let mut key = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut key).is_err() {
            panic!("system random source failed");
        }
        Self::with(store::Store::memory(), &key)
    }
}

impl Sessions {
    /// Sessions in Redis (`redis_url`) or memory, sealed under `key` (32 bytes; random per
    /// process when `None`, which only one replica can use).
    pub fn new(redis_url: Option<&str>, key: Option<[u8; 32]>) -> anyhow::Result<Self> {
        let Some(key) = key else {
            anyhow::ensure!(redis_url.is_none(), "sessions in Redis need a session key");
            return Ok(Self::default());
        };
        let store = match redis_url {
            Some(url) => store::Store::redis(url)?,
            None => store::Store::memory(),
        };
        Ok(Self::with(store, &key))
    }

    fn with(store: store::Store, key: &[u8; 32]) -> Self {
        let key = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
            .unwrap_or_else(|_| panic!("an AES-256 key is 32 bytes"));
        Self {
            store,
            key: Arc::new(aws_lc_rs::aead::LessSafeKey::new(key)),
        }
    }

    /// The live session with this id. A store that cannot be reached counts as signed out
    /// (logged): the user signs in again rather than seeing an error on every page.
    pub async fn get(&self, id: &str) -> Option<Session> {
        if id.len() > 64 {
            return None;
        }
        match self.store.get(id, &self.key).await {
            Ok(found) => found.filter(|s| s.expires > unix_now()),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "dashboard session store unavailable");
                None
            }
        }
    }

    /// Stores a session until it expires; returns its id.
    pub async fn insert(&self, session: Session) -> anyhow::Result<String> {
        let id = random_token();
        self.store.put(&id, &session, &self.key).await?;
        Ok(id)
    }

    pub async fn remove(&self, id: &str) {
        if let Err(e) = self.store.remove(id).await {
            tracing::warn!(error = %format!("{e:#}"), "dashboard session not removed");
        }
    }

    /// Seals a pending sign-in into the login cookie's value.
    pub fn seal_pending(&self, pending: &Pending) -> anyhow::Result<String> {
        let sealed = seal(&self.key, PENDING_AAD, serde_json::to_vec(pending)?)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Opens the login cookie of a sign-in that returned with `state`: the pending sign-in,
    /// if the cookie was sealed under this dashboard's key, unaltered, for that `state` and not
    /// expired.
    pub fn open_pending(&self, cookie: &str, state: &str) -> Option<Pending> {
        if cookie.len() > 4096 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        let plain = open(&self.key, PENDING_AAD, bytes)?;
        let pending: Pending = serde_json::from_slice(&plain).ok()?;
        let fresh = unix_now().saturating_sub(pending.created) < PENDING_LIFETIME.as_secs();
        (fresh && same(&pending.state, state)).then_some(pending)
    }
}

/// AES-256-GCM with a random nonce: `nonce || ciphertext || tag`.
fn seal(
    key: &aws_lc_rs::aead::LessSafeKey,
    aad: &[u8],
    mut data: Vec<u8>,
) -> anyhow::Result<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("system random source failed"))?;
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut data,
    )
    .map_err(|_| anyhow::anyhow!("sealing failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

/// The plaintext of [`seal`]'s output, if it was sealed under `key` with `aad` and unaltered.
fn open(key: &aws_lc_rs::aead::LessSafeKey, aad: &[u8], bytes: Vec<u8>) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
    if bytes.len() <= NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut sealed).ok()?;
    Some(plain.to_vec())
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

    fn session(subject: &str) -> Session {
        Session {
            subject: subject.into(),
            email: "a@t.test".into(),
            name: "A".into(),
            roles: vec!["Owner".into()],
            tenant: Some("t1".into()),
            access_token: "access-token-never-in-redis".into(),
            id_token: "id-token".into(),
            csrf: "csrf".into(),
            expires: unix_now() + 600,
        }
    }

    #[tokio::test]
    async fn one_account_keeps_a_bounded_number_of_sessions_in_memory() {
        let sessions = Sessions::default();
        let other = sessions.insert(session("bob")).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..8u64 {
            let mut s = session("mallory");
            s.expires += i;
            ids.push(sessions.insert(s).await.unwrap());
        }
        // The newest five of mallory's sessions remain, bob's is untouched.
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(sessions.get(id).await.is_some(), i >= 3, "session {i}");
        }
        assert!(sessions.get(&other).await.is_some());
    }

    /// The Redis of the shared-session tests: `TANSU_TEST_REDIS_URL`.
    fn redis_url() -> Option<String> {
        match std::env::var("TANSU_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => tansu_shared::testing::skip_or_fail(
                "dashboard shared sessions",
                "TANSU_TEST_REDIS_URL is not set",
            ),
        }
    }

    #[tokio::test]
    async fn sessions_in_redis_are_seen_by_every_replica_and_stored_sealed() {
        let Some(url) = redis_url() else { return };
        let key = [7u8; 32];
        let one = Sessions::new(Some(&url), Some(key)).unwrap();
        let two = Sessions::new(Some(&url), Some(key)).unwrap();
        let id = one.insert(session("alice")).await.unwrap();
        let seen = two
            .get(&id)
            .await
            .expect("the other replica knows the session");
        assert_eq!(seen.subject, "alice");
        assert_eq!(seen.access_token, "access-token-never-in-redis");

        // Stored sealed, under the hash of the id, expiring with the session.
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut raw = client.get_multiplexed_async_connection().await.unwrap();
        let k = store::key_of(&id);
        assert!(!k.contains(&id));
        let value: Vec<u8> = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&value);
        assert!(!text.contains("access-token") && !text.contains("alice"));
        let ttl: i64 = redis::cmd("TTL")
            .arg(&k)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!((1..=600).contains(&ttl), "ttl {ttl}");

        // Another key opens nothing; a value copied under another session's key opens nothing.
        let stranger = Sessions::new(Some(&url), Some([8u8; 32])).unwrap();
        assert!(stranger.get(&id).await.is_none());
        let other = one.insert(session("mallory")).await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(store::key_of(&other))
            .arg(&value)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            two.get(&other).await.is_none(),
            "a copied value does not open"
        );

        // Signing out on one replica signs out everywhere.
        two.remove(&id).await;
        assert!(one.get(&id).await.is_none());
        one.remove(&other).await;

        // A pending sign-in started on one replica completes on the other.
        let p = Pending::new("v".into(), "n".into(), "/".into(), "st".into());
        let sealed = one.seal_pending(&p).unwrap();
        assert_eq!(two.open_pending(&sealed, "st").unwrap().pkce_verifier, "v");
        assert!(stranger.open_pending(&sealed, "st").is_none());
    }

    #[tokio::test]
    async fn redis_sessions_need_a_key_and_an_unreachable_redis_signs_out() {
        assert!(Sessions::new(Some("redis://127.0.0.1:1"), None).is_err());
        let down = Sessions::new(Some("redis://127.0.0.1:1"), Some([1u8; 32])).unwrap();
        assert!(down.insert(session("alice")).await.is_err());
        assert!(down.get("some-session-id").await.is_none());
        down.remove("some-session-id").await;
    }

    #[tokio::test]
    async fn an_expired_session_is_gone() {
        let sessions = Sessions::default();
        let id = sessions
            .insert(Session {
                expires: unix_now() - 1,
                ..session("alice")
            })
            .await
            .unwrap();
        assert!(sessions.get(&id).await.is_none());
        let id = sessions.insert(session("bob")).await.unwrap();
        assert_eq!(sessions.get(&id).await.unwrap().subject, "bob");
    }
}
