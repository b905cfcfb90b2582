//! Small, well-known building blocks over aws-lc-rs (the workspace's one crypto provider):
//! the master key and AES-256-GCM sealing of secrets at rest, keys derived from the master key
//! with HKDF (RFC 5869), SHA-256, random bytes, base64url.
//! Nothing here implements a primitive; it only fixes how the primitives are used.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

/// Unpadded base64url (RFC 4648 §5), as JOSE uses it.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// `n` bytes from the operating system's CSPRNG (through aws-lc).
pub fn random_bytes(n: usize) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("random source failed"))?;
    Ok(buf)
}

/// A random 256-bit secret, base64url (43 characters).
pub fn random_secret() -> anyhow::Result<String> {
    Ok(b64url(&random_bytes(32)?))
}

/// The 256-bit master key that seals secrets at rest. Never stored in the database; identified
/// there only by [`MasterKey::id`] (a hash prefix) so a later master-key rotation can find what
/// each row was sealed under.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
    /// HKDF's pseudorandom key over the master key, for [`MasterKey::derive_hmac_key`].
    derivation: hkdf::Prk,
}

/// The HKDF salt of keys derived from a master key (fixed: the master key is already uniformly
/// random; the salt only separates this use from any other HKDF over the same bytes).
const DERIVATION_SALT: &[u8] = b"tansu identity master key derivation";

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish()
    }
}

/// Where the master key came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Config,
    Env,
    File(std::path::PathBuf),
    Created(std::path::PathBuf),
    /// The OS keyring entry (service, user).
    Keyring(String, String),
    /// Dev mode created the OS keyring entry (service, user).
    KeyringCreated(String, String),
}

pub const MASTER_KEY_ENV: &str = "TANSU_MASTER_KEY";
/// Earlier master keys (comma- or whitespace-separated base64), still able to open what they
/// sealed until the re-wrap moved it under the current key.
pub const PREVIOUS_MASTER_KEYS_ENV: &str = "TANSU_PREVIOUS_MASTER_KEYS";

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bytes.len() == 32,
            "the master key must be 32 bytes, got {}",
            bytes.len()
        );
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes)
                .map_err(|_| anyhow::anyhow!("invalid master key"))?,
        );
        let mut idmat = b"tansu master key id\0".to_vec();
        idmat.extend_from_slice(bytes);
        let id = hex(&sha256(&idmat)[..8]);
        let derivation = hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVATION_SALT).extract(bytes);
        Ok(Self {
            key,
            id,
            derivation,
        })
    }

    /// An HMAC-SHA256 key for `purpose` derived from this master key (HKDF-SHA256 expand, the
    /// purpose as `info`): the same in every replica holding the master key, and independent
    /// of the sealing key and of every other purpose's key.
    pub fn derive_hmac_key(&self, purpose: &[u8]) -> hmac::Key {
        let info = [purpose];
        let okm = self
            .derivation
            .expand(&info, hmac::HMAC_SHA256)
            .expect("32 bytes are within HKDF-SHA256's output bound");
        hmac::Key::from(okm)
    }

    /// A base64 (standard or url-safe, padded or not) encoded 32-byte key.
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| anyhow::anyhow!("the master key is not valid base64"))?,
        );
        Self::from_bytes(&bytes)
    }

    /// Loads the master key: the configured value, else `TANSU_MASTER_KEY`, else the key file
    /// (created 0600 with a fresh key when `create` is set and it does not exist yet).
    pub fn load(
        configured: &str,
        file: &Path,
        create: bool,
    ) -> anyhow::Result<(Self, MasterKeySource)> {
        if !configured.is_empty() {
            return Ok((Self::from_base64(configured)?, MasterKeySource::Config));
        }
        if let Ok(value) = std::env::var(MASTER_KEY_ENV)
            && !value.is_empty()
        {
            let key =
                Self::from_base64(&value).map_err(|e| anyhow::anyhow!("{MASTER_KEY_ENV}: {e}"))?;
            return Ok((key, MasterKeySource::Env));
        }
        match std::fs::metadata(file) {
            Ok(_) => Ok((read_key_file(file)?, MasterKeySource::File(file.to_owned()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let bytes = Zeroizing::new(random_bytes(32)?);
                write_private_file(file, format!("{}\n", STANDARD.encode(&*bytes)).as_bytes())?;
                Ok((
                    Self::from_bytes(&bytes)?,
                    MasterKeySource::Created(file.to_owned()),
                ))
            }
            Err(e) => Err(anyhow::anyhow!(
                "no master key: set {MASTER_KEY_ENV} (base64 of 32 bytes) or provide {} ({e})",
                file.display()
            )),
        }
    }

    /// Loads the master key from the OS keyring entry `service`/`user` (the `keyring` crate:
    /// on Linux the kernel keyring through keyutils, headless, no D-Bus; the Keychain on macOS,
    /// the Credential Manager on Windows). The entry holds the base64 of the 32 bytes. With
    /// `create` (dev mode), a missing entry is created with a fresh key.
    pub fn load_from_keyring(
        service: &str,
        user: &str,
        create: bool,
    ) -> anyhow::Result<(Self, MasterKeySource)> {
        ensure_session_keyring();
        let entry = keyring::Entry::new(service, user)
            .map_err(|e| anyhow::anyhow!("OS keyring entry {service}/{user}: {e}"))?;
        match entry.get_password() {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let key = Self::from_base64(&text)
                    .map_err(|e| anyhow::anyhow!("OS keyring entry {service}/{user}: {e}"))?;
                Ok((
                    key,
                    MasterKeySource::Keyring(service.to_owned(), user.to_owned()),
                ))
            }
            Err(keyring::Error::NoEntry) if create => {
                let bytes = Zeroizing::new(random_bytes(32)?);
                let text = Zeroizing::new(STANDARD.encode(&*bytes));
                entry.set_password(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot store the master key in the OS keyring ({service}/{user}): {e}"
                    )
                })?;
                Ok((
                    Self::from_bytes(&bytes)?,
                    MasterKeySource::KeyringCreated(service.to_owned(), user.to_owned()),
                ))
            }
            Err(keyring::Error::NoEntry) => Err(anyhow::anyhow!(
                "no master key in the OS keyring (service {service:?}, user {user:?}): store the base64 of 32 random bytes there"
            )),
            Err(e) => Err(anyhow::anyhow!(
                "the OS keyring is unavailable (service {service:?}, user {user:?}): {e}"
            )),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `nonce || ciphertext || tag`. `aad` binds the ciphertext to its context (e.g. the key id),
    /// so a sealed value copied into another row does not open there.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce_bytes = random_bytes(NONCE_LEN)?;
        let nonce =
            Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| anyhow::anyhow!("nonce"))?;
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce_bytes;
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed value too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("nonce"))?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| anyhow::anyhow!("cannot open a sealed value (wrong master key?)"))?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// Linux: gives the process a session keyring when it has none (a service started without a
/// login session, e.g. in a container). Without one, the `keyring` crate falls back to the user
/// session keyring, where keys it adds are not "possessed" and cannot be searched for again.
/// The crate links the user's persistent keyring into the session keyring, so entries outlive
/// the process there.
pub fn ensure_session_keyring() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        linux_keyutils::KeyRing::from_special_id(linux_keyutils::KeyRingIdentifier::Session, true)
    {
        tracing::warn!(error = ?e, "no session keyring");
    }
}

/// The master keys identity knows: the current one, which seals everything new, and earlier
/// ones, which only open what they sealed (each row stores the id of the key it was sealed
/// under) until the re-wrap ([`crate::master_keys`]) has moved it under the current key.
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous_ids())
            .finish()
    }
}

impl MasterKeys {
    /// `previous` keys equal to the current one or to each other are dropped.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        let mut kept: Vec<MasterKey> = Vec::with_capacity(previous.len());
        for key in previous {
            if key.id != current.id && !kept.iter().any(|k| k.id == key.id) {
                kept.push(key);
            }
        }
        Self {
            current,
            previous: kept,
        }
    }

    /// The current key's id (what new rows store).
    pub fn id(&self) -> &str {
        &self.current.id
    }

    pub fn previous_ids(&self) -> Vec<&str> {
        self.previous.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether a row sealed under `key_id` can be opened.
    pub fn knows(&self, key_id: &str) -> bool {
        self.get(key_id).is_some()
    }

    fn get(&self, key_id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
    }

    /// [`MasterKey::derive_hmac_key`] of the current key, then of each previous one (so what
    /// replicas still on a previous key made can be checked during a master-key change).
    pub fn derive_hmac_keys(&self, purpose: &[u8]) -> (hmac::Key, Vec<hmac::Key>) {
        (
            self.current.derive_hmac_key(purpose),
            self.previous
                .iter()
                .map(|k| k.derive_hmac_key(purpose))
                .collect(),
        )
    }

    /// Seals under the current key; store [`Self::id`] beside the result.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.current.seal(plaintext, aad)
    }

    /// Opens a value sealed under the key `key_id` (the id stored with it).
    pub fn open(
        &self,
        key_id: &str,
        sealed: &[u8],
        aad: &[u8],
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let key = self.get(key_id).ok_or_else(|| {
            anyhow::anyhow!(
                "sealed under master key {key_id}, which is not configured (current {}, previous {:?})",
                self.current.id,
                self.previous_ids()
            )
        })?;
        key.open(sealed, aad)
    }
}

/// Decodes a list of base64 master keys: configured values, then `TANSU_PREVIOUS_MASTER_KEYS`
/// (comma- or whitespace-separated), then key files (raw 32 bytes or base64 text).
pub fn load_previous_keys(
    values: &[tansu_shared::config::Secret],
    files: &[std::path::PathBuf],
) -> anyhow::Result<Vec<MasterKey>> {
    let mut keys = Vec::new();
    for (i, v) in values.iter().enumerate() {
        keys.push(
            MasterKey::from_base64(v.expose())
                .map_err(|e| anyhow::anyhow!("previous_master_keys[{i}]: {e}"))?,
        );
    }
    if let Ok(list) = std::env::var(PREVIOUS_MASTER_KEYS_ENV) {
        let list = Zeroizing::new(list);
        for (i, v) in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|v| !v.is_empty())
            .enumerate()
        {
            keys.push(
                MasterKey::from_base64(v)
                    .map_err(|e| anyhow::anyhow!("{PREVIOUS_MASTER_KEYS_ENV}[{i}]: {e}"))?,
            );
        }
    }
    for file in files {
        keys.push(read_key_file(file)?);
    }
    Ok(keys)
}

/// A key file: raw 32 bytes, or base64 text.
fn read_key_file(file: &Path) -> anyhow::Result<MasterKey> {
    let content = Zeroizing::new(
        std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
    );
    warn_if_readable_by_others(file);
    if content.len() == 32 {
        return MasterKey::from_bytes(&content);
    }
    let text = std::str::from_utf8(&content)
        .map_err(|_| anyhow::anyhow!("{}: not a master key", file.display()))?;
    MasterKey::from_base64(text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `path` (and its parent directories) readable by the owner only.
pub fn write_private_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    file.write_all(content)?;
    file.sync_all()?;
    Ok(())
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the master key file is readable by group or others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal(b"private key", b"kid-1").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(&*key.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(key.open(&sealed, b"kid-2").is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        assert_ne!(key.id(), other.id());
    }

    #[test]
    fn derived_keys_follow_the_master_key_and_the_purpose() {
        let tag = |k: &hmac::Key| hmac::sign(k, b"message").as_ref().to_vec();
        let one = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let again = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        let a = tag(&one.derive_hmac_key(b"purpose a"));
        assert_eq!(
            a,
            tag(&again.derive_hmac_key(b"purpose a")),
            "same key, same purpose"
        );
        assert_ne!(
            a,
            tag(&one.derive_hmac_key(b"purpose b")),
            "another purpose"
        );
        assert_ne!(
            a,
            tag(&other.derive_hmac_key(b"purpose a")),
            "another master key"
        );
        // Not the master key itself used as an HMAC key.
        assert_ne!(a, tag(&hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32])));
        let ring = MasterKeys::new(other, vec![one]);
        let (current, previous) = ring.derive_hmac_keys(b"purpose a");
        assert_ne!(tag(&current), a);
        assert_eq!(previous.iter().map(tag).collect::<Vec<_>>(), [a]);
    }

    #[test]
    fn key_ring_opens_by_id_and_seals_under_the_current_key() {
        let old = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let old_id = old.id().to_owned();
        let sealed_old = old.seal(b"dek", b"aad").unwrap();
        let ring = MasterKeys::new(
            MasterKey::from_bytes(&[2u8; 32]).unwrap(),
            vec![
                old,
                MasterKey::from_bytes(&[1u8; 32]).unwrap(),
                MasterKey::from_bytes(&[2u8; 32]).unwrap(),
            ],
        );
        assert_eq!(ring.previous_ids(), [old_id.as_str()], "duplicates dropped");
        assert_eq!(&*ring.open(&old_id, &sealed_old, b"aad").unwrap(), b"dek");
        let sealed_new = ring.seal(b"dek", b"aad").unwrap();
        assert_eq!(&*ring.open(ring.id(), &sealed_new, b"aad").unwrap(), b"dek");
        assert!(ring.open(&old_id, &sealed_new, b"aad").is_err());
        let err = ring
            .open("0000", &sealed_new, b"aad")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0000") && err.contains("not configured"),
            "{err}"
        );
    }

    #[test]
    fn created_key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (k1, src) = MasterKey::load("", &path, true).unwrap();
        assert!(matches!(src, MasterKeySource::Created(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (k2, src) = MasterKey::load("", &path, false).unwrap();
        assert!(matches!(src, MasterKeySource::File(_)));
        assert_eq!(k1.id(), k2.id());
        assert!(MasterKey::load("", &dir.path().join("missing"), false).is_err());
    }
}
