//! Small, well-known building blocks over aws-lc-rs (the workspace's one crypto provider):
//! the master key and AES-256-GCM sealing of secrets at rest, SHA-256, random bytes, base64url.
//! Nothing here implements a primitive; it only fixes how the primitives are used.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
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
}

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
}

pub const MASTER_KEY_ENV: &str = "TANSU_MASTER_KEY";

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
        Ok(Self { key, id })
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
        match std::fs::read(file) {
            Ok(content) => {
                let content = Zeroizing::new(content);
                warn_if_readable_by_others(file);
                let key = if content.len() == 32 {
                    Self::from_bytes(&content)?
                } else {
                    let text = std::str::from_utf8(&content)
                        .map_err(|_| anyhow::anyhow!("{}: not a master key", file.display()))?;
                    Self::from_base64(text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                };
                Ok((key, MasterKeySource::File(file.to_owned())))
            }
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
