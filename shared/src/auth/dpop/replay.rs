//! The record of the DPoP proofs already used ([`ReplayCache`]), so each proof is accepted
//! once: per process, or shared by the replicas through Redis.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;

use super::{MAX_AGE_SECS, MAX_SKEW_SECS, Proof, invalid};
use crate::auth::AuthError;

/// The `jti`s of the proofs seen within their `iat` window, so each proof is used once.
///
/// Per process by default. With a Redis ([`ReplayCache::shared`]), the first use is recorded
/// there (`SET NX` with the window as expiry), so every replica sharing the Redis refuses a
/// replay. While Redis does not answer, the process's own record decides (a replay at another
/// replica then goes unnoticed): logged, and counted in
/// `tansu_dpop_replay_local_fallbacks_total`; an unanswered Redis is asked again after
/// [`SHARED_RETRY`], so requests do not each wait for it.
/// Bounded: when full of unexpired entries it refuses new proofs rather than forget one.
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
    #[cfg(feature = "redis")]
    shared: Option<shared::RedisReplay>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ReplayCache");
        d.field("capacity", &self.capacity);
        #[cfg(feature = "redis")]
        d.field("shared", &self.shared.is_some());
        d.finish()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(200_000)
    }
}

/// How long a shared replay cache keeps to its own record after Redis did not answer.
pub const SHARED_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl ReplayCache {
    /// A cache of this process, of at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
            #[cfg(feature = "redis")]
            shared: None,
        }
    }

    /// A cache shared through the Redis at `url` (empty: this process's only). An invalid URL
    /// is an error; an unreachable Redis is not (see the type's doc).
    #[cfg(feature = "redis")]
    pub fn shared(url: &str) -> Result<Self, String> {
        let mut cache = Self::default();
        if !url.is_empty() {
            cache.shared = Some(shared::RedisReplay::new(url)?);
        }
        Ok(cache)
    }

    /// Records the proof's `jti` (per key); an error when it was seen before (a replay) or the
    /// cache is full.
    pub async fn first_use(&self, proof: &Proof, now: i64) -> Result<(), AuthError> {
        let key = replay_key(proof);
        let expires = proof.iat.max(now) + MAX_AGE_SECS + MAX_SKEW_SECS;
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            match shared.first_use(&key, expires - now).await {
                Some(true) => return Ok(()),
                Some(false) => return Err(invalid("proof already used")),
                None => {
                    metrics::counter!("tansu_dpop_replay_local_fallbacks_total").increment(1);
                }
            }
        }
        self.first_use_here(key, expires, now)
    }

    /// [`Self::first_use`] in this process's record.
    fn first_use_here(&self, key: [u8; 32], expires: i64, now: i64) -> Result<(), AuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= self.capacity {
                return Err(invalid("too many recent proofs; retry"));
            }
        }
        match seen.insert(key, expires) {
            Some(old) if old > now => Err(invalid("proof already used")),
            _ => Ok(()),
        }
    }
}

/// SHA-256 of the proof's key thumbprint and `jti`: a proof's identity, of fixed size.
fn replay_key(proof: &Proof) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(proof.jkt.as_bytes());
    ctx.update(&[0]);
    ctx.update(proof.jti.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(feature = "redis")]
mod shared {
    use std::time::{Duration, Instant};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// How long one Redis round trip (connecting included) may take before the process's own
    /// record decides.
    const TIMEOUT: Duration = Duration::from_millis(500);
    /// The prefix of the replay records' keys.
    const PREFIX: &str = "tansu:dpop:jti:";

    pub(super) struct RedisReplay {
        client: redis::Client,
        conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
        /// Until when Redis is not asked, after it did not answer.
        resting_until: std::sync::Mutex<Option<Instant>>,
    }

    impl RedisReplay {
        pub(super) fn new(url: &str) -> Result<Self, String> {
            Ok(Self {
                client: redis::Client::open(url).map_err(|_| "not a valid Redis URL".to_owned())?,
                conn: tokio::sync::Mutex::new(None),
                resting_until: std::sync::Mutex::new(None),
            })
        }

        /// `Some(true)`: the first use, now recorded for `ttl_secs`; `Some(false)`: seen
        /// before; `None`: Redis did not answer (or is resting after it did not).
        pub(super) async fn first_use(&self, key: &[u8; 32], ttl_secs: i64) -> Option<bool> {
            {
                let mut resting = self.resting_until.lock().unwrap_or_else(|e| e.into_inner());
                match *resting {
                    Some(until) if Instant::now() < until => return None,
                    Some(_) => *resting = None,
                    None => {}
                }
            }
            let name = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(key));
            let attempt = tokio::time::timeout(TIMEOUT, async {
                let mut conn = self.connection().await?;
                redis::cmd("SET")
                    .arg(&name)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl_secs.max(1))
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await;
            let error = match attempt {
                Ok(Ok(set)) => return Some(set.is_some()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer in time".to_owned(),
            };
            *self.conn.lock().await = None;
            *self.resting_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + super::SHARED_RETRY);
            tracing::warn!(
                error = %error,
                "DPoP replay check: Redis did not answer; this process's own record decides"
            );
            None
        }

        async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
            let mut slot = self.conn.lock().await;
            if let Some(c) = slot.as_ref() {
                return Ok(c.clone());
            }
            let c = self.client.get_multiplexed_async_connection().await?;
            *slot = Some(c.clone());
            Ok(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_proof_is_used_once_and_a_full_cache_refuses() {
        let cache = ReplayCache::new(2);
        let proof = |jti: &str| Proof {
            jkt: "k".into(),
            jti: jti.into(),
            iat: 100,
            nonce: None,
        };
        assert!(cache.first_use(&proof("a"), 100).await.is_ok());
        assert!(cache.first_use(&proof("a"), 101).await.is_err());
        assert!(cache.first_use(&proof("b"), 101).await.is_ok());
        assert!(
            cache.first_use(&proof("c"), 102).await.is_err(),
            "full of live entries"
        );
        // Once the first ones expired, there is room again.
        assert!(
            cache
                .first_use(&proof("c"), 100 + MAX_AGE_SECS + MAX_SKEW_SECS + 1)
                .await
                .is_ok()
        );
    }
}
