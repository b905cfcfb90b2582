//! Password hashing: Argon2id (m = 19 MiB, t = 2, p = 1, the OWASP minimum) on a bounded pool.
//!
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so hashing runs on a fixed
//! set of dedicated threads (one per core by default) fed by a queue: a login storm queues
//! instead of starving the async workers that serve the token endpoint, and the memory the
//! allocator keeps after a hash is bounded by the number of those threads (on tokio's blocking
//! pool every new thread would keep its own 19 MiB). An unknown account is checked against a
//! dummy hash, so it costs the same as a wrong password.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

thread_local! {
    /// This thread's Argon2 working memory, allocated once and reused by every hash: a fresh
    /// 19 MiB aligned allocation per hash made the allocator keep ~12 MiB more after each one.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `blocks` blocks of this thread's working memory.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with_borrow_mut(|m| {
        if m.len() < blocks {
            *m = vec![Block::new(); blocks];
        }
        f(&mut m[..blocks])
    })
}

/// Argon2id with the service's parameters and a random salt, as a PHC string.
fn hash_sync(password: &[u8]) -> anyhow::Result<String> {
    let salt = crate::crypto::random_bytes(16)?;
    let argon = argon2()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    with_memory(argon.params().block_count(), |m| {
        argon.hash_password_into_with_memory(password, &salt, &mut out, m)
    })
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    let err = |e: argon2::password_hash::phc::Error| anyhow::anyhow!("argon2 PHC: {e}");
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())
            .map_err(|e| anyhow::anyhow!("argon2 PHC params: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(err)?),
        hash: Some(Output::new(&out).map_err(err)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string (its own algorithm, version and parameters),
/// compared in constant time.
fn verify_sync(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Version::try_from(parsed.version.unwrap_or(Version::V0x13.into())),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    let computed = with_memory(blocks, |m| {
        argon.hash_password_into_with_memory(password, salt.as_ref(), &mut out, m)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == *expected)
}

/// Hashes `password` on the calling thread (the raw rate of `tansu-bench token`; the service
/// uses [`Passwords`]).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    hash_sync(password.as_bytes())
}

/// Verifies on the calling thread, with the service's parameters (see [`hash_blocking`]).
pub fn verify_blocking(password: &str, phc: &str) -> bool {
    verify_sync(password.as_bytes(), phc)
}

type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords on a bounded pool of dedicated threads. Cheap to clone; the
/// threads end when the last clone is dropped.
#[derive(Clone)]
pub struct Passwords {
    jobs: mpsc::Sender<Job>,
    threads: usize,
    dummy: Arc<str>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("threads", &self.threads)
            .field("queue_free", &self.jobs.capacity())
            .finish()
    }
}

/// Hashes waiting for a thread, at most (beyond them, callers wait to enqueue).
const QUEUE: usize = 4096;

impl Passwords {
    /// `concurrency` 0: one per core.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let n = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let (jobs, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        // One idle thread waits on the queue at a time; the others wait for
                        // the lock. A job runs after the lock is released.
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).blocking_recv();
                        match job {
                            Some(job) => job(),
                            None => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs,
            threads: n,
            dummy: hash_sync(b"tansu dummy password for unknown accounts")?.into(),
        })
    }

    /// Runs `f` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .await
            .map_err(|_| anyhow::anyhow!("the password hashing threads stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("a password hashing thread failed"))
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = Zeroizing::new(password.as_bytes().to_vec());
        self.run(move || hash_sync(&password)).await?
    }

    /// Whether `password` matches `phc`; `None` (unknown account) costs the same and is false.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let known = phc.is_some();
        let phc: String = phc.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let password = Zeroizing::new(password.as_bytes().to_vec());
        let ok = self
            .run(move || verify_sync(&password, &phc))
            .await
            .unwrap_or(false);
        ok && known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_argon2_crates_own_hashing_and_verification() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_sync(b"correct horse battery staple").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let a = argon2().unwrap();
        assert!(
            a.verify_password(b"correct horse battery staple", ours.as_str())
                .is_ok()
        );
        assert!(a.verify_password(b"wrong", ours.as_str()).is_err());
        let theirs = a
            .hash_password_with_salt(b"another one", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert!(verify_sync(b"another one", &theirs));
        assert!(!verify_sync(b"another two", &theirs));
        assert!(!verify_sync(
            b"another one",
            "$argon2id$v=19$m=19456,t=2,p=1$bm90IGEgaGFzaA"
        ));
        assert!(!verify_sync(b"another one", "not a PHC string"));
        // Other parameters in a stored hash are honoured (a later policy change).
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password_with_salt(b"old", b"0123456789abcdef")
        .unwrap()
        .to_string();
        assert!(verify_sync(b"old", &cheap));
        assert!(
            verify_sync(b"another one", &theirs),
            "memory reused after a smaller hash"
        );
    }

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
