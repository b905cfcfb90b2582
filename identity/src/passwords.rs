//! Password hashing: Argon2id (m = 19 MiB, t = 2, p = 1, the OWASP minimum) on a bounded pool.
//!
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so hashing runs on
//! blocking threads behind a semaphore with one permit per core: a login storm queues for the
//! permits instead of starving the async workers that serve the token endpoint. An unknown
//! account is checked against a dummy hash, so it costs the same as a wrong password.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_sync(password: &[u8]) -> anyhow::Result<String> {
    let salt = crate::crypto::random_bytes(16)?;
    let hash = argon2()?
        .hash_password_with_salt(password, &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(hash.to_string())
}

fn verify_sync(password: &[u8], phc: &str) -> bool {
    argon2().is_ok_and(|a| a.verify_password(password, phc).is_ok())
}

/// Hashes and verifies passwords on a bounded blocking pool. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

impl Passwords {
    /// `concurrency` 0: one per core.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let n = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        Ok(Self {
            permits: Arc::new(Semaphore::new(n)),
            dummy: hash_sync(b"tansu dummy password for unknown accounts")?.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let password = Zeroizing::new(password.as_bytes().to_vec());
        tokio::task::spawn_blocking(move || hash_sync(&password)).await?
    }

    /// Whether `password` matches `phc`; `None` (unknown account) costs the same and is false.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known = phc.is_some();
        let phc: String = phc.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let ok = tokio::task::spawn_blocking(move || verify_sync(&password, &phc))
            .await
            .unwrap_or(false);
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(1).unwrap();
        let h = p.hash("correct horse battery staple").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse battery staple", Some(&h)).await);
        assert!(!p.verify("wrong", Some(&h)).await);
        assert!(!p.verify("correct horse battery staple", None).await);
    }
}
