//! Password hashing: Argon2id (m = 19 MiB, t = 2, p = 1, the OWASP minimum) on a bounded pool.
//!
//! Each hash takes tens of milliseconds of CPU and 19 MiB of memory, so hashing runs on a fixed
//! set of dedicated threads (one per core by default) fed by a queue: a login storm queues
//! instead of starving the async workers that serve the token endpoint, and the memory the
//! allocator keeps after a hash is bounded by the number of those threads (on tokio's blocking
//! pool every new thread would keep its own 19 MiB). An unknown account is checked against a
//! dummy hash, so it costs the same as a wrong password.

use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::{mpsc, oneshot};
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
