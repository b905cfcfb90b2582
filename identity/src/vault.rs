//! The secrets vault: per-tenant named secrets with versions.
//!
//! Envelope encryption: each tenant has a random 256-bit data key, stored only sealed with
//! AES-256-GCM under the master key (AAD `tansu-dek:<tenant>`); every secret version is sealed
//! under the tenant's data key (AAD `<tenant>\n<name>\n<version>`, so a ciphertext moved to
//! another row does not open). Values never appear in listings or logs. A master-key rotation
//! re-wraps only the data keys ([`crate::master_keys`]); the values stay as they are.
//!
//! Access ([`crate::admin::vault`]): `secrets.read` (list, read) and `secrets.write` (put = new
//! version, revoke) in a token whose `tid` is the tenant, or a platform admin.
#![allow(clippy::result_large_err)]

use zeroize::Zeroizing;

use crate::crypto::MasterKeys;
use crate::crypto::{self, MasterKey};
use crate::store::Store;
use crate::store::now_ms;

pub const SECRETS_READ: &str = "secrets.read";
pub const SECRETS_WRITE: &str = "secrets.write";

pub(crate) fn dek_aad(tid: &str) -> Vec<u8> {
    format!("tansu-dek:{tid}").into_bytes()
}

pub(crate) fn value_aad(tid: &str, name: &str, version: i64) -> Vec<u8> {
    format!("{tid}\n{name}\n{version}").into_bytes()
}

/// A new tenant's vault, sealed before it is stored (registration stores it in the same
/// transaction as the tenant).
pub struct SealedVault {
    pub wrapped_key: Vec<u8>,
    pub master_key_id: String,
    /// (name, version 1, ciphertext)
    pub secrets: Vec<(String, i64, Vec<u8>)>,
}

/// Seals the first version of each secret of a tenant that has no data key yet, under a new
/// data key.
pub fn seal_new_tenant(
    master: &MasterKeys,
    tid: &str,
    secrets: &[(&str, &[u8])],
) -> anyhow::Result<SealedVault> {
    let raw = Zeroizing::new(crypto::random_bytes(32)?);
    let wrapped_key = master.seal(&raw, &dek_aad(tid))?;
    let dek = MasterKey::from_bytes(&raw)?;
    let mut sealed = Vec::with_capacity(secrets.len());
    for (name, value) in secrets {
        anyhow::ensure!(valid_name(name), "invalid secret name");
        sealed.push((
            (*name).to_owned(),
            1,
            dek.seal(value, &value_aad(tid, name, 1))?,
        ));
    }
    Ok(SealedVault {
        wrapped_key,
        master_key_id: master.id().to_owned(),
        secrets: sealed,
    })
}

/// The tenant's data key, created on first use.
pub(crate) async fn data_key(
    store: &Store,
    master: &MasterKeys,
    tid: &str,
) -> anyhow::Result<MasterKey> {
    for _ in 0..3 {
        if let Some((wrapped, master_id)) = store.data_key(tid).await? {
            let raw = master.open(&master_id, &wrapped, &dek_aad(tid))?;
            return MasterKey::from_bytes(&raw);
        }
        let raw = Zeroizing::new(crypto::random_bytes(32)?);
        let wrapped = master.seal(&raw, &dek_aad(tid))?;
        match store
            .insert_data_key(tid, &wrapped, master.id(), now_ms())
            .await
        {
            Ok(()) => return MasterKey::from_bytes(&raw),
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not create the tenant's data key")
}

pub(crate) fn valid_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
