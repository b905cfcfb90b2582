//! Presigned URLs: time-limited capability URLs for one object and one method.
//!
//! Security choices, and why:
//! - The signature is HMAC-SHA256 (`hmac` crate) over a canonical string binding the method,
//!   tenant, bucket, key and expiry, each length-prefixed so no two different tuples share a
//!   canonical form. Changing any part — a different tenant's path, another key, a later expiry,
//!   PUT instead of GET — invalidates it.
//! - Each tenant has its own random 256-bit key: a URL of tenant A can never verify for tenant B
//!   even with every path part rewritten, and a tenant's keys could be rotated alone.
//! - Keys are stored sealed with AES-256-GCM (aws-lc-rs) under the service's master key, with
//!   the tenant id as associated data (a sealed key moved to another tenant's row fails to open).
//!   The master key lives in a file (created 0600) or the configuration, never in the database.
//! - Signatures are checked with `Mac::verify_slice` (constant time).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::store::{Store, StoreError};

pub const Q_TENANT: &str = "X-Tansu-Tenant";
pub const Q_METHOD: &str = "X-Tansu-Method";
pub const Q_EXPIRES: &str = "X-Tansu-Expires";
pub const Q_SIGNATURE: &str = "X-Tansu-Signature";

type Key = Arc<Zeroizing<[u8; 32]>>;

/// The per-tenant presigning keys, sealed in the store and cached open in memory.
pub struct PresignKeys {
    master: LessSafeKey,
    cache: Mutex<HashMap<Uuid, Key>>,
}

/// Reads the master key: from the configured value (base64 of 32 bytes), else from the key
/// file, created with 32 random bytes and mode 0600 when missing.
pub fn load_master_key(configured: &str, file: &Path) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if !configured.is_empty() {
        let raw = Zeroizing::new(
            STANDARD
                .decode(configured.trim())
                .map_err(|_| anyhow::anyhow!("master_key is not base64"))?,
        );
        anyhow::ensure!(raw.len() == 32, "master_key must be 32 bytes (base64)");
        key.copy_from_slice(&raw);
        return Ok(key);
    }
    match std::fs::read(file) {
        Ok(raw) => {
            let raw = Zeroizing::new(raw);
            anyhow::ensure!(
                raw.len() == 32,
                "master key file {} must hold 32 bytes",
                file.display()
            );
            key.copy_from_slice(&raw);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            aws_lc_rs::rand::fill(key.as_mut_slice())
                .map_err(|_| anyhow::anyhow!("no randomness"))?;
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(file)?;
            std::io::Write::write_all(&mut f, key.as_slice())?;
            f.sync_all()?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(key)
}

impl PresignKeys {
    pub fn new(master: &[u8; 32]) -> anyhow::Result<Self> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, master).map_err(|_| anyhow::anyhow!("bad master key"))?;
        Ok(Self {
            master: LessSafeKey::new(unbound),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn seal(&self, tenant: Uuid, key: &[u8; 32]) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| crypto_error("no randomness"))?;
        let mut buf = key.to_vec();
        self.master
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(tenant.as_bytes()),
                &mut buf,
            )
            .map_err(|_| crypto_error("seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        buf.iter_mut().for_each(|b| *b = 0);
        Ok(STANDARD.encode(out))
    }

    fn open(&self, tenant: Uuid, sealed: &str) -> Result<Key, StoreError> {
        let raw = STANDARD
            .decode(sealed)
            .map_err(|_| crypto_error("sealed key is not base64"))?;
        if raw.len() < NONCE_LEN {
            return Err(crypto_error("sealed key too short"));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| crypto_error("nonce"))?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .master
            .open_in_place(nonce, Aad::from(tenant.as_bytes()), &mut buf)
            .map_err(|_| crypto_error("sealed key does not open (wrong master key?)"))?;
        if plain.len() != 32 {
            return Err(crypto_error("sealed key has the wrong length"));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(plain);
        Ok(Arc::new(key))
    }

    /// The tenant's key if it has one. Verification uses this: an anonymous request naming
    /// some tenant must never make the service create (and store) a key.
    pub async fn existing_key(
        &self,
        store: &Store,
        tenant: Uuid,
    ) -> Result<Option<Key>, StoreError> {
        if let Some(k) = self.cache.lock().map_err(|_| poisoned())?.get(&tenant) {
            return Ok(Some(k.clone()));
        }
        let Some(sealed) = store.presign_key(tenant).await? else {
            return Ok(None);
        };
        let key = self.open(tenant, &sealed)?;
        self.cache
            .lock()
            .map_err(|_| poisoned())?
            .insert(tenant, key.clone());
        Ok(Some(key))
    }

    /// The tenant's key, created on first use (minting, by an authenticated caller).
    pub async fn key(&self, store: &Store, tenant: Uuid) -> Result<Key, StoreError> {
        if let Some(k) = self.cache.lock().map_err(|_| poisoned())?.get(&tenant) {
            return Ok(k.clone());
        }
        let sealed = match store.presign_key(tenant).await? {
            Some(s) => s,
            None => {
                let mut fresh = Zeroizing::new([0u8; 32]);
                aws_lc_rs::rand::fill(fresh.as_mut_slice())
                    .map_err(|_| crypto_error("no randomness"))?;
                store
                    .insert_presign_key(tenant, &self.seal(tenant, &fresh)?)
                    .await?;
                // Another request may have won the insert: use what is stored.
                store
                    .presign_key(tenant)
                    .await?
                    .ok_or_else(|| crypto_error("presign key vanished"))?
            }
        };
        let key = self.open(tenant, &sealed)?;
        self.cache
            .lock()
            .map_err(|_| poisoned())?
            .insert(tenant, key.clone());
        Ok(key)
    }
}

fn crypto_error(what: &'static str) -> StoreError {
    StoreError::Db(sqlx::Error::Protocol(format!("presign key: {what}")))
}

fn poisoned() -> StoreError {
    crypto_error("cache lock poisoned")
}

/// The string a presigned URL's signature covers.
fn canonical(method: &str, tenant: Uuid, bucket: &str, key: &str, expires: i64) -> Vec<u8> {
    let mut out = b"tansu-presign-v1".to_vec();
    for part in [
        method.as_bytes(),
        tenant.to_string().as_bytes(),
        bucket.as_bytes(),
        key.as_bytes(),
        expires.to_string().as_bytes(),
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

pub fn sign(
    secret: &[u8; 32],
    method: &str,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    expires: i64,
) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(&canonical(method, tenant, bucket, key, expires));
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Constant-time check of a presigned URL's signature.
pub fn verify(
    secret: &[u8; 32],
    method: &str,
    tenant: Uuid,
    bucket: &str,
    key: &str,
    expires: i64,
    signature: &str,
) -> bool {
    let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(&canonical(method, tenant, bucket, key, expires));
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_every_part() {
        let k = [7u8; 32];
        let t = Uuid::now_v7();
        let s = sign(&k, "GET", t, "b", "k", 100);
        assert!(verify(&k, "GET", t, "b", "k", 100, &s));
        assert!(!verify(&k, "PUT", t, "b", "k", 100, &s));
        assert!(!verify(&k, "GET", Uuid::now_v7(), "b", "k", 100, &s));
        assert!(!verify(&k, "GET", t, "bb", "k", 100, &s));
        assert!(!verify(&k, "GET", t, "b", "k2", 100, &s));
        assert!(!verify(&k, "GET", t, "b", "k", 101, &s));
        assert!(!verify(&[8u8; 32], "GET", t, "b", "k", 100, &s));
        assert!(!verify(&k, "GET", t, "b", "k", 100, "%%%"));
    }

    #[test]
    fn sealed_keys_are_bound_to_their_tenant() {
        let keys = PresignKeys::new(&[1u8; 32]).unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = keys.seal(a, &[9u8; 32]).unwrap();
        assert_eq!(**keys.open(a, &sealed).unwrap(), [9u8; 32]);
        assert!(keys.open(b, &sealed).is_err());
        let other = PresignKeys::new(&[2u8; 32]).unwrap();
        assert!(other.open(a, &sealed).is_err());
    }
}
