//! Rate limiting: token buckets (GCRA, `governor`) per client IP, per tenant, and stricter
//! per-IP buckets on identity's token and login endpoints.
//!
//! The limiter is behind [`RateLimiter`] so a budget shared across gateway replicas (Redis) can
//! replace the in-memory one without touching the proxy.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::{Bucket, RateLimitConfig};

/// Which bucket a key is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    ClientIp,
    Tenant,
    /// Index into the configured strict limits.
    Strict(usize),
}

/// The outcome of checking one request against its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the numbers describe the tightest bucket checked.
    Allowed {
        limit: u32,
        remaining: u32,
        reset: Duration,
    },
    Limited {
        limit: u32,
        retry_after: Duration,
    },
}

pub trait RateLimiter: Send + Sync {
    /// Takes one token from each bucket in `keys` in order, stopping at the first empty one.
    fn check<'a>(&'a self, keys: &'a [(BucketKind, String)]) -> BoxFuture<'a, Decision>;
}

type Keyed = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

struct Limiter {
    bucket: Bucket,
    keyed: Keyed,
}

/// The in-memory limiter (one replica's budget).
pub struct InMemoryLimiter {
    clock: DefaultClock,
    ip: Limiter,
    tenant: Limiter,
    strict: Vec<Limiter>,
}

impl std::fmt::Debug for InMemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryLimiter").finish_non_exhaustive()
    }
}

fn quota(b: Bucket) -> Quota {
    let burst = NonZeroU32::new(b.burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(Duration::from_millis(b.replenish_ms.max(1)))
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limiter {
    fn new(bucket: Bucket) -> Self {
        Self {
            bucket,
            keyed: governor::RateLimiter::keyed(quota(bucket))
                .with_middleware::<StateInformationMiddleware>(),
        }
    }
}

impl InMemoryLimiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            clock: DefaultClock::default(),
            ip: Limiter::new(config.per_ip),
            tenant: Limiter::new(config.per_tenant),
            strict: config
                .strict
                .iter()
                .map(|s| Limiter::new(s.bucket))
                .collect(),
        }
    }

    fn limiter(&self, kind: BucketKind) -> Option<&Limiter> {
        match kind {
            BucketKind::ClientIp => Some(&self.ip),
            BucketKind::Tenant => Some(&self.tenant),
            BucketKind::Strict(i) => self.strict.get(i),
        }
    }

    fn check_now(&self, keys: &[(BucketKind, String)]) -> Decision {
        let mut tightest: Option<(u32, u32, Duration)> = None;
        for (kind, key) in keys {
            let Some(l) = self.limiter(*kind) else {
                continue;
            };
            match l.keyed.check_key(key) {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let reset = Duration::from_millis(l.bucket.replenish_ms)
                        * (l.bucket.burst.saturating_sub(remaining));
                    if tightest.is_none_or(|(_, r, _)| remaining < r) {
                        tightest = Some((l.bucket.burst, remaining, reset));
                    }
                }
                Err(not_until) => {
                    return Decision::Limited {
                        limit: l.bucket.burst,
                        retry_after: not_until.wait_time_from(self.clock.now()),
                    };
                }
            }
        }
        let (limit, remaining, reset) = tightest.unwrap_or((0, 0, Duration::ZERO));
        Decision::Allowed {
            limit,
            remaining,
            reset,
        }
    }

    /// Forgets keys whose buckets are full again (bounded memory under many client IPs).
    pub fn housekeeping(&self) {
        for l in std::iter::once(&self.ip)
            .chain(std::iter::once(&self.tenant))
            .chain(self.strict.iter())
        {
            l.keyed.retain_recent();
            l.keyed.shrink_to_fit();
        }
    }
}

impl RateLimiter for InMemoryLimiter {
    fn check<'a>(&'a self, keys: &'a [(BucketKind, String)]) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(self.check_now(keys)))
    }
}

/// Runs [`InMemoryLimiter::housekeeping`] every minute until `stop` changes.
pub async fn housekeeping_loop(
    limiter: Arc<InMemoryLimiter>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => limiter.housekeeping(),
            _ = stop.changed() => return,
        }
    }
}

/// Whole seconds, rounded up (header values).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_engages_and_reports() {
        let config = RateLimitConfig {
            enabled: true,
            per_ip: Bucket {
                burst: 2,
                replenish_ms: 60_000,
            },
            per_tenant: Bucket {
                burst: 100,
                replenish_ms: 1,
            },
            strict: vec![],
        };
        let l = InMemoryLimiter::new(&config);
        let keys = vec![(BucketKind::ClientIp, "1.2.3.4".to_string())];
        assert!(matches!(
            l.check_now(&keys),
            Decision::Allowed {
                limit: 2,
                remaining: 1,
                ..
            }
        ));
        assert!(matches!(
            l.check_now(&keys),
            Decision::Allowed { remaining: 0, .. }
        ));
        match l.check_now(&keys) {
            Decision::Limited { limit, retry_after } => {
                assert_eq!(limit, 2);
                assert!(retry_after > Duration::from_secs(50));
            }
            other => panic!("expected limited, got {other:?}"),
        }
        // Another client has its own bucket.
        let other = vec![(BucketKind::ClientIp, "5.6.7.8".to_string())];
        assert!(matches!(l.check_now(&other), Decision::Allowed { .. }));
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
    }
}
