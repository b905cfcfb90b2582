//! The signing key ring and its rotation.
//!
//! Lifecycle of a key, per algorithm, derived from two stored times and the key's successor:
//! - **next**: published in the JWKS from `created_at`, not signing yet (`now < activate_at`);
//! - **current**: the key with the latest `activate_at <= now` — the only one that signs;
//! - **retiring**: its successor has activated; still published for the grace period so tokens
//!   it signed keep verifying;
//! - **gone**: `successor.activate_at + grace` has passed; deleted by the next maintenance.
//!
//! Why times rather than a status column: every replica decides which key signs from the same
//! rows and the clock, with no state transition that has to be written at the right moment.
//! A new key is always created at least `lead` before it activates, and replicas reload the
//! ring every `check_interval` (validated `< lead`), and the JWKS `max-age` is shorter than the
//! lead, so resource servers hold a key before the first token signed with it.
//!
//! Rotation runs under a database lease (see [`crate::store::lease`]): at most one replica
//! creates keys at a time, and creating is idempotent ("is there already a pending key?"), so
//! concurrent rotation attempts on one database rotate once.
//!
//! Signing is done with key pairs parsed once and kept in memory (aws-lc-rs); the JOSE header
//! and claims are serialised with serde and base64url — no hand-rolled crypto.

mod ring;
mod signing;

pub use ring::{KeyRing, KeyState, RingKey};
pub use signing::{SigningAlg, SigningPair, aad};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::crypto::{MasterKeys, b64url};
use crate::store::keys::SigningKeyRow;
use crate::store::{Store, new_id, now_ms};

/// The rotation policy (from the config).
#[derive(Debug, Clone)]
pub struct RotationPolicy {
    pub period: Duration,
    pub grace: Duration,
    pub lead: Duration,
    /// How often replicas reload the ring and run maintenance.
    pub check_interval: Duration,
    /// The algorithms kept in the ring (the default one first).
    pub algorithms: Vec<SigningAlg>,
}

impl RotationPolicy {
    pub fn jwks_max_age(&self) -> Duration {
        // Verifiers must refetch within `lead` minus the replicas' reload interval.
        let budget = self.lead.saturating_sub(self.check_interval);
        (budget / 2).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

const ROTATION_LEASE: &str = "signing-key-rotation";

#[derive(Debug, Clone, Copy)]
enum Job {
    Maintain,
    Rotate,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// Keys scheduled to take over, with when they start signing (unix ms).
    pub pending: Vec<(String, SigningAlg, i64)>,
    pub created: usize,
    pub deleted: usize,
}

/// Owns the ring: loading it, signing with it, rotating it.
pub struct KeyManager {
    store: Store,
    master: Arc<MasterKeys>,
    policy: RotationPolicy,
    ring: ArcSwap<KeyRing>,
    reload_lock: tokio::sync::Mutex<()>,
    /// One permit per core: signatures are made in the order requests asked for them (tokio's
    /// semaphore is fair), whichever worker thread a request landed on; without it each worker
    /// serves its own queue and, under load, a request can wait behind a longer queue than
    /// another's. (On the session-5 host its effect on p99 was within the noise: BENCHMARKS.md.)
    signing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("policy", &self.policy)
            .field("keys", &self.ring.load().keys.len())
            .finish()
    }
}

/// The key source of identity's own [`tansu_shared::auth::Verifier`]: keys that sign now or
/// retire within the grace period verify; a key not yet active or gone does not.
impl tansu_shared::auth::KeySource for KeyManager {
    fn key(&self, kid: &str) -> Option<Arc<tansu_shared::auth::VerifyKey>> {
        let grace = i64::try_from(self.policy.grace.as_millis()).unwrap_or(i64::MAX);
        self.ring()
            .get(kid)
            .filter(|k| {
                matches!(
                    k.state(now_ms(), grace),
                    KeyState::Current | KeyState::Retiring
                )
            })
            .map(|k| k.verify.clone())
    }
}

impl KeyManager {
    /// The master keys (the vault wraps tenant data keys with the current one).
    pub fn master(&self) -> &Arc<MasterKeys> {
        &self.master
    }

    /// Loads the ring, creating the first keys when the database has none.
    pub async fn start(
        store: Store,
        master: Arc<MasterKeys>,
        policy: RotationPolicy,
    ) -> anyhow::Result<Self> {
        let manager = Self {
            store,
            master,
            policy,
            ring: ArcSwap::from_pointee(KeyRing::default()),
            reload_lock: tokio::sync::Mutex::new(()),
            signing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        };
        manager.reload().await?;
        let now = now_ms();
        let complete = manager
            .policy
            .algorithms
            .iter()
            .all(|alg| manager.ring.load().signer(*alg, now).is_some());
        if !complete {
            manager
                .with_lease(Duration::from_secs(30), Job::Maintain)
                .await?;
        }
        Ok(manager)
    }

    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    pub fn ring(&self) -> arc_swap::Guard<Arc<KeyRing>> {
        self.ring.load()
    }

    /// Re-reads the stored keys; keys already parsed are reused, new ones decrypted once.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _guard = self.reload_lock.lock().await;
        let rows = self.store.list_signing_keys().await?;
        let old = self.ring.load_full();
        let mut by_alg: HashMap<SigningAlg, Vec<&SigningKeyRow>> = HashMap::new();
        for row in &rows {
            match SigningAlg::parse(&row.alg) {
                Some(alg) => by_alg.entry(alg).or_default().push(row),
                None => {
                    tracing::warn!(kid = %row.kid, alg = %row.alg, "unknown key algorithm ignored")
                }
            }
        }
        let mut keys = Vec::with_capacity(rows.len());
        for (alg, mut rows) in by_alg {
            rows.sort_by_key(|r| (r.activate_at, r.kid.clone()));
            for (i, row) in rows.iter().enumerate() {
                let retire_at = rows.get(i + 1).map(|next| next.activate_at);
                let unchanged = old
                    .get(&row.kid)
                    .filter(|k| k.activate_at == row.activate_at && k.retire_at == retire_at);
                if let Some(k) = unchanged {
                    keys.push(k.clone());
                    continue;
                }
                match self.load_key(alg, row, retire_at) {
                    Ok(k) => keys.push(Arc::new(k)),
                    Err(e) => tracing::error!(kid = %row.kid, error = %e, "signing key not loaded"),
                }
            }
        }
        self.ring.store(Arc::new(KeyRing::new(keys)));
        Ok(())
    }

    fn load_key(
        &self,
        alg: SigningAlg,
        row: &SigningKeyRow,
        retire_at: Option<i64>,
    ) -> anyhow::Result<RingKey> {
        let der = self.master.open(
            &row.master_key_id,
            &row.private_key_enc,
            aad(&row.kid, alg).as_bytes(),
        )?;
        let pair = SigningPair::from_pkcs8(alg, &der)?;
        let jwk = pair.public_jwk(&row.kid, alg);
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())?;
        let (_, verify) = tansu_shared::auth::VerifyKey::from_jwk(&parsed, &[alg.jwt()])
            .ok_or_else(|| {
                anyhow::anyhow!("key {} is not a {} verification key", row.kid, alg.as_str())
            })?;
        Ok(RingKey {
            kid: row.kid.clone(),
            alg,
            created_at: row.created_at,
            activate_at: row.activate_at,
            retire_at,
            jwk,
            verify: Arc::new(verify),
            pair,
        })
    }

    /// Runs `job` while holding the rotation lease, waiting up to `wait` for it, then reloads
    /// the ring. `Ok(None)` when the lease could not be had in time.
    async fn with_lease(&self, wait: Duration, job: Job) -> anyhow::Result<Option<Rotation>> {
        let holder = new_id();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = now_ms();
            let expires = now + 120_000;
            if self
                .store
                .try_acquire_lease(ROTATION_LEASE, &holder, now, expires)
                .await?
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            // Back off before retrying; a holder releases within seconds.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let result = match job {
            Job::Maintain => self.maintain_locked().await,
            Job::Rotate => self.rotate_locked().await,
        };
        if let Err(e) = self.store.release_lease(ROTATION_LEASE, &holder).await {
            tracing::warn!(error = %e, "rotation lease not released; it will expire");
        }
        let out = result?;
        self.reload().await?;
        Ok(Some(out))
    }

    /// The scheduled maintenance: create a successor `lead` before the current key's period
    /// ends, create a first key where there is none, delete keys past their grace period.
    /// Skips (returns `None`) when another replica holds the lease; reloads the ring either way
    /// to pick up what other replicas did.
    pub async fn maintain(&self) -> anyhow::Result<Option<Rotation>> {
        let out = self.with_lease(Duration::ZERO, Job::Maintain).await?;
        if out.is_none() {
            self.reload().await?;
        }
        Ok(out)
    }

    /// Rotate now: a fresh key per algorithm, published now and signing after `lead`. When a
    /// key is already pending, it is brought forward instead of creating another, so repeated
    /// or concurrent requests (on any replica) rotate once.
    pub async fn rotate_now(&self) -> anyhow::Result<Rotation> {
        self.with_lease(Duration::from_secs(30), Job::Rotate)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the rotation lease stayed taken"))
    }

    async fn maintain_locked(&self) -> anyhow::Result<Rotation> {
        let rows = self.store.list_signing_keys().await?;
        let now = now_ms();
        let mut rotation = Rotation {
            pending: Vec::new(),
            created: 0,
            deleted: 0,
        };
        let period = ms(self.policy.period);
        let lead = ms(self.policy.lead);
        let grace = ms(self.policy.grace);
        for alg in &self.policy.algorithms {
            let mut mine: Vec<&SigningKeyRow> =
                rows.iter().filter(|r| r.alg == alg.as_str()).collect();
            mine.sort_by_key(|r| r.activate_at);
            let current = mine.iter().rev().find(|r| r.activate_at <= now);
            let pending = mine.iter().find(|r| r.activate_at > now);
            match (current, pending) {
                (None, None) => {
                    // Bootstrap: nothing has ever signed, so nothing needs a lead time.
                    self.create_key(*alg, None).await?;
                    rotation.created += 1;
                }
                (Some(cur), None) if cur.activate_at.saturating_add(period) <= now + lead => {
                    let earliest = cur.activate_at.saturating_add(period);
                    let (kid, activate) = self.create_key(*alg, Some(earliest)).await?;
                    rotation.created += 1;
                    rotation.pending.push((kid, *alg, activate));
                }
                (_, Some(p)) => rotation.pending.push((p.kid.clone(), *alg, p.activate_at)),
                _ => {}
            }
            // Delete keys whose successor activated more than `grace` ago.
            for pair in mine.windows(2) {
                if pair[1].activate_at.saturating_add(grace) <= now {
                    self.store.delete_signing_key(&pair[0].kid).await?;
                    rotation.deleted += 1;
                    tracing::info!(kid = %pair[0].kid, alg = alg.as_str(), "retired signing key removed");
                }
            }
        }
        Ok(rotation)
    }

    async fn rotate_locked(&self) -> anyhow::Result<Rotation> {
        let rows = self.store.list_signing_keys().await?;
        let now = now_ms();
        let activate = now + ms(self.policy.lead);
        let mut rotation = Rotation {
            pending: Vec::new(),
            created: 0,
            deleted: 0,
        };
        for alg in &self.policy.algorithms {
            let pending = rows
                .iter()
                .filter(|r| r.alg == alg.as_str() && r.activate_at > now)
                .min_by_key(|r| r.activate_at);
            match pending {
                Some(p) => {
                    if p.activate_at > activate {
                        self.store
                            .set_signing_key_activation(&p.kid, activate)
                            .await?;
                    }
                    rotation
                        .pending
                        .push((p.kid.clone(), *alg, p.activate_at.min(activate)));
                }
                None => {
                    let (kid, activate) = self.create_key(*alg, Some(activate)).await?;
                    rotation.created += 1;
                    rotation.pending.push((kid, *alg, activate));
                }
            }
        }
        tracing::info!(created = rotation.created, "signing key rotation requested");
        Ok(rotation)
    }

    /// Creates a key that signs from `activate_at` — but never before `lead` after it is
    /// stored (published) — or at once when `None` (bootstrap). Returns its kid and activation.
    async fn create_key(
        &self,
        alg: SigningAlg,
        activate_at: Option<i64>,
    ) -> anyhow::Result<(String, i64)> {
        let kid = new_id();
        // RSA key generation takes tens of milliseconds: keep it off the async workers.
        let (pair, der) = tokio::task::spawn_blocking(move || SigningPair::generate(alg)).await??;
        // Times are taken after the generation, so the lead is measured from publication.
        let now = now_ms();
        let activate_at = match activate_at {
            None => now,
            Some(at) => at.max(now + ms(self.policy.lead)),
        };
        let jwk = pair.public_jwk(&kid, alg);
        let sealed = self.master.seal(&der, aad(&kid, alg).as_bytes())?;
        self.store
            .insert_signing_key(&SigningKeyRow {
                kid: kid.clone(),
                alg: alg.as_str().to_owned(),
                public_jwk: jwk.to_string(),
                private_key_enc: sealed,
                master_key_id: self.master.id().to_owned(),
                created_at: now,
                activate_at,
            })
            .await?;
        metrics::counter!("identity_signing_keys_created_total", "alg" => alg.as_str())
            .increment(1);
        tracing::info!(kid = %kid, alg = alg.as_str(), activate_at, "signing key created");
        Ok((kid, activate_at))
    }

    /// Signs a JWS (compact serialisation) with the current key for `alg`.
    pub async fn sign_jws(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &impl Serialize,
    ) -> anyhow::Result<String> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'static str,
            typ: &'a str,
            kid: &'a str,
        }
        let key = self
            .ring
            .load()
            .signer(alg, now_ms())
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no {} signing key", alg.as_str()))?;
        let header = serde_json::to_vec(&Header {
            alg: alg.as_str(),
            typ,
            kid: &key.kid,
        })?;
        let claims = serde_json::to_vec(claims)?;
        let mut jws = b64url(&header);
        jws.push('.');
        jws.push_str(&b64url(&claims));
        let signature = {
            let _turn = self
                .signing
                .acquire()
                .await
                .map_err(|_| anyhow::anyhow!("signing stopped"))?;
            key.pair.sign(jws.as_bytes())?
        };
        jws.push('.');
        jws.push_str(&b64url(&signature));
        Ok(jws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_states() {
        let (pair, _) = SigningPair::generate(SigningAlg::EdDSA).unwrap();
        let jwk = pair.public_jwk("k", SigningAlg::EdDSA);
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = RingKey {
            kid: "k".into(),
            alg: SigningAlg::EdDSA,
            created_at: 0,
            activate_at: 100,
            retire_at: Some(200),
            jwk,
            verify: Arc::new(
                tansu_shared::auth::VerifyKey::from_jwk(&parsed, &[SigningAlg::EdDSA.jwt()])
                    .unwrap()
                    .1,
            ),
            pair,
        };
        assert_eq!(key.state(50, 10), KeyState::Next);
        assert_eq!(key.state(100, 10), KeyState::Current);
        assert_eq!(key.state(205, 10), KeyState::Retiring);
        assert_eq!(key.state(210, 10), KeyState::Gone);
        let ring = KeyRing::new(vec![Arc::new(key)]);
        assert!(ring.signer(SigningAlg::EdDSA, 50).is_none());
        assert!(ring.signer(SigningAlg::EdDSA, 100).is_some());
        assert_eq!(ring.published(205, 10).count(), 1);
        assert_eq!(ring.published(210, 10).count(), 0);
    }

    #[test]
    fn every_algorithm_signs_and_verifies_with_its_jwk() {
        for alg in SigningAlg::ALL {
            let (pair, der) = SigningPair::generate(alg).unwrap();
            let reparsed = SigningPair::from_pkcs8(alg, &der).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(pair.public_jwk("k1", alg)).unwrap();
            let (kid, key) = tansu_shared::auth::VerifyKey::from_jwk(&jwk, &[alg.jwt()]).unwrap();
            assert_eq!((kid.as_str(), key.alg()), ("k1", alg.jwt()));
            let msg = b"header.payload";
            let sig = reparsed.sign(msg).unwrap();
            assert!(key.verify_signature(msg, &sig), "{alg:?}");
            assert!(!key.verify_signature(b"header.other", &sig), "{alg:?}");
        }
    }
}
