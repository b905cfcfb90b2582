//! Where sessions are kept: this process's memory (bounded, one replica) or Redis (every
//! replica; sealed, under the hash of the id, expiring with the session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::LessSafeKey;
use aws_lc_rs::digest::{SHA256, digest};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use super::{Session, open, seal, unix_now};

/// At most this many live sessions in memory.
const MAX_SESSIONS: usize = 10_000;
/// At most this many live sessions of one subject in memory: one account signing in over and
/// over replaces its own oldest session, and cannot crowd out everyone else's.
const MAX_SESSIONS_PER_SUBJECT: usize = 5;
/// Bounds one Redis round trip, so a stalled Redis fails a page instead of hanging it.
const REDIS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Clone)]
pub(super) enum Store {
    Memory(Arc<Mutex<HashMap<String, Session>>>),
    Redis {
        client: redis::Client,
        /// Connected on first use (and reconnecting by itself afterwards).
        conn: Arc<OnceCell<ConnectionManager>>,
    },
}

/// The Redis key of a session: its id hashed, so the keys listed in Redis sign nobody in.
fn redis_key(id: &str) -> String {
    let hash = digest(&SHA256, id.as_bytes());
    let hex: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("tansu:dashboard:session:{hex}")
}

/// Binds a sealed session to its key: a value copied under another session's key does not open.
fn aad(key: &str) -> Vec<u8> {
    format!("tansu-dashboard session v1 {key}").into_bytes()
}

impl Store {
    pub(super) fn memory() -> Self {
        Store::Memory(Arc::default())
    }

    pub(super) fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("redis_url: {e}"))?;
        Ok(Store::Redis {
            client,
            conn: Arc::default(),
        })
    }

    async fn connection(
        client: &redis::Client,
        conn: &OnceCell<ConnectionManager>,
    ) -> anyhow::Result<ConnectionManager> {
        let manager = conn
            .get_or_try_init(|| async {
                tokio::time::timeout(REDIS_TIMEOUT, client.get_connection_manager())
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis did not answer"))?
                    .map_err(|e| anyhow::anyhow!("Redis: {e}"))
            })
            .await?;
        Ok(manager.clone())
    }

    pub(super) async fn get(&self, id: &str, key: &LessSafeKey) -> anyhow::Result<Option<Session>> {
        match self {
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let found = map.get(id).cloned();
                if found.as_ref().is_some_and(|s| s.expires <= unix_now()) {
                    map.remove(id);
                    return Ok(None);
                }
                Ok(found)
            }
            Store::Redis { client, conn } => {
                let mut c = Self::connection(client, conn).await?;
                let k = redis_key(id);
                let sealed: Option<Vec<u8>> = tokio::time::timeout(REDIS_TIMEOUT, c.get(&k))
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis did not answer"))??;
                Ok(sealed
                    .and_then(|b| open(key, &aad(&k), b))
                    .and_then(|plain| serde_json::from_slice(&plain).ok()))
            }
        }
    }

    pub(super) async fn put(
        &self,
        id: &str,
        session: &Session,
        key: &LessSafeKey,
    ) -> anyhow::Result<()> {
        match self {
            Store::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = unix_now();
                map.retain(|_, s| s.expires > now);
                let mut own: Vec<(u64, String)> = map
                    .iter()
                    .filter(|(_, s)| s.subject == session.subject)
                    .map(|(k, s)| (s.expires, k.clone()))
                    .collect();
                if own.len() >= MAX_SESSIONS_PER_SUBJECT {
                    own.sort();
                    for (_, k) in &own[..=own.len() - MAX_SESSIONS_PER_SUBJECT] {
                        map.remove(k);
                    }
                }
                if map.len() >= MAX_SESSIONS
                    && let Some(k) = map
                        .iter()
                        .min_by_key(|(_, s)| s.expires)
                        .map(|(k, _)| k.clone())
                {
                    // Evict the session closest to expiry.
                    map.remove(&k);
                }
                map.insert(id.to_owned(), session.clone());
                Ok(())
            }
            Store::Redis { client, conn } => {
                let ttl = session.remaining().as_secs().max(1);
                let k = redis_key(id);
                let sealed = seal(key, &aad(&k), serde_json::to_vec(session)?)?;
                let mut c = Self::connection(client, conn).await?;
                tokio::time::timeout(REDIS_TIMEOUT, c.set_ex::<_, _, ()>(&k, sealed, ttl))
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis did not answer"))??;
                Ok(())
            }
        }
    }

    pub(super) async fn remove(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Store::Memory(map) => {
                map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
                Ok(())
            }
            Store::Redis { client, conn } => {
                let mut c = Self::connection(client, conn).await?;
                tokio::time::timeout(REDIS_TIMEOUT, c.del::<_, ()>(redis_key(id)))
                    .await
                    .map_err(|_| anyhow::anyhow!("Redis did not answer"))??;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
pub(super) fn key_of(id: &str) -> String {
    redis_key(id)
}
