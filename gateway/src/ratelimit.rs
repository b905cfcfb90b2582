//! Rate limiting: token buckets (GCRA, `governor`) per client, per tenant, stricter per-client
//! buckets on identity's sign-in and registration endpoints, and one platform-wide bucket for
//! registrations.
//!
//! Who pays for a request:
//! - the client, always: its IPv4 address, or its IPv6 network ([`client_bucket`]: a /64 by
//!   default, because one subscriber holds a whole /64 and could otherwise rotate through
//!   fresh buckets without end);
//! - the client's strict bucket of each strict path the request is under;
//! - the platform's registration bucket, for a registration (unsafe method on a registration
//!   path), whoever sends it: a botnet's many addresses cannot create tenants in bulk;
//! - the tenant, only when the request carries a token the gateway verified and whose `tid` is
//!   that tenant. Naming a tenant (its subdomain, `/t/{tenant}`, an unverified token's `tid`)
//!   costs the tenant nothing, so nobody can use up another tenant's budget.
//!
//! The limiter is behind [`RateLimiter`] so a budget shared across gateway replicas (Redis) can
//! replace the in-memory one without touching the proxy.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Either};
use governor::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;

use crate::{Bucket, RateLimitConfig};

/// One bucket a request is counted against: the bucket's kind and whose it is. Borrowed and
/// `Copy`, so checking a request allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// A client, by [`client_bucket`].
    ClientIp(IpAddr),
    /// The strict limit at this index of the configured ones, for this client ([`client_bucket`]).
    Strict(usize, IpAddr),
    /// A tenant, by id.
    Tenant(&'a String),
    /// The platform-wide registration budget.
    Registration,
}

/// The address a client's buckets are keyed by: an IPv4 address (also when it arrives
/// IPv4-mapped, `::ffff:a.b.c.d`), or the IPv6 network of its first `ipv6_prefix` bits.
pub fn client_bucket(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(ipv6_prefix.min(128)))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        },
    }
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

/// A decision: at once (in memory) or after a round trip (shared budget).
pub type Check<'a> = Either<std::future::Ready<Decision>, BoxFuture<'a, Decision>>;

pub trait RateLimiter: Send + Sync {
    /// Takes one token from each bucket in `keys` in order, stopping at the first empty one.
    fn check<'a>(&'a self, keys: &'a [Key<'a>]) -> Check<'a>;
}

type Keyed<K> =
    governor::RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

struct Limiter<K: std::hash::Hash + Eq + Clone> {
    bucket: Bucket,
    keyed: Keyed<K>,
}

/// The in-memory limiter (one replica's budget).
pub struct InMemoryLimiter {
    clock: DefaultClock,
    ip: Limiter<IpAddr>,
    tenant: Limiter<String>,
    strict: Vec<Limiter<IpAddr>>,
    registration: Limiter<()>,
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

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(bucket: Bucket) -> Self {
        Self {
            bucket,
            keyed: governor::RateLimiter::keyed(quota(bucket))
                .with_middleware::<StateInformationMiddleware>(),
        }
    }

    /// Takes a token for `key`: the bucket's size, what is left and when it is full again; or
    /// when to retry.
    fn take(&self, key: &K, clock: &DefaultClock) -> Result<(u32, u32, Duration), Decision> {
        match self.keyed.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = Duration::from_millis(self.bucket.replenish_ms)
                    .checked_mul(self.bucket.burst.saturating_sub(remaining))
                    .unwrap_or(Duration::MAX);
                Ok((self.bucket.burst, remaining, reset))
            }
            Err(not_until) => Err(Decision::Limited {
                limit: self.bucket.burst,
                retry_after: not_until.wait_time_from(clock.now()),
            }),
        }
    }

    fn housekeeping(&self) {
        self.keyed.retain_recent();
        self.keyed.shrink_to_fit();
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
            registration: Limiter::new(config.registration.bucket()),
        }
    }

    fn check_now(&self, keys: &[Key<'_>]) -> Decision {
        let mut tightest: Option<(u32, u32, Duration)> = None;
        for key in keys {
            let taken = match *key {
                Key::ClientIp(ip) => self.ip.take(&ip, &self.clock),
                Key::Tenant(id) => self.tenant.take(id, &self.clock),
                Key::Strict(i, ip) => match self.strict.get(i) {
                    Some(l) => l.take(&ip, &self.clock),
                    None => continue,
                },
                Key::Registration => self.registration.take(&(), &self.clock),
            };
            match taken {
                Ok(t) => {
                    if tightest.is_none_or(|(_, r, _)| t.1 < r) {
                        tightest = Some(t);
                    }
                }
                Err(limited) => return limited,
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
        self.ip.housekeeping();
        self.tenant.housekeeping();
        for l in &self.strict {
            l.housekeeping();
        }
        self.registration.housekeeping();
    }
}

impl RateLimiter for InMemoryLimiter {
    fn check<'a>(&'a self, keys: &'a [Key<'a>]) -> Check<'a> {
        Either::Left(std::future::ready(self.check_now(keys)))
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

/// GCRA over several buckets in one atomic step, on Redis's clock (so replicas with skewed
/// clocks share one budget). Nothing is taken unless every bucket has a token, then one is
/// taken from each. KEYS: the buckets; ARGV: interval (ms) and burst per bucket.
/// Returns {allowed, limit, remaining, ms until full (allowed) or until allowed (refused)}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local news = {}
local tight, tight_rem, tight_reset = 1, nil, 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return {0, burst, 0, allow_at - now}
  end
  news[i] = new_tat
  local remaining = math.floor((now - allow_at) / interval)
  if tight_rem == nil or remaining < tight_rem then
    tight, tight_rem, tight_reset = i, remaining, new_tat - now
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], news[i], 'PX', math.max(1, news[i] - now))
end
return {1, tonumber(ARGV[2 * tight]), tight_rem or 0, tight_reset}
";

/// Budgets shared by every replica through Redis. When Redis does not answer within the
/// timeout, this replica's in-memory budget decides: a Redis outage weakens the limit to one
/// replica's share instead of refusing traffic or dropping the limit altogether.
pub struct RedisLimiter {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
    config: RateLimitConfig,
    fallback: InMemoryLimiter,
    timeout: Duration,
    last_warning: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How long the gateway waits at start for a configured Redis that does not answer yet.
pub const STARTUP_WAIT: Duration = Duration::from_secs(60);

impl RedisLimiter {
    /// Connects, waiting at most [`STARTUP_WAIT`] for a Redis that does not answer yet (a
    /// configured Redis is required at start; later outages fall back to the in-memory budget).
    pub async fn connect(config: &RateLimitConfig) -> anyhow::Result<Self> {
        let client = redis::Client::open(config.redis_url.expose())
            .map_err(|_| anyhow::anyhow!("rate_limit.redis_url is not a valid Redis URL"))?;
        let timeout = Duration::from_millis(config.redis_timeout_ms.max(1));
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        // A Redis started next to the gateway (a compose stack) may not listen yet: retried
        // with backoff for at most `STARTUP_WAIT`, then the last error stops the start.
        let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
        let mut delay = Duration::from_millis(250);
        let conn = loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                client.get_connection_manager_with_config(manager_config.clone()),
            )
            .await
            .map_err(|_| anyhow::anyhow!("rate limiting: Redis did not answer"))
            .and_then(|r| {
                r.map_err(|e| anyhow::anyhow!("rate limiting: cannot connect to Redis: {e}"))
            });
            match attempt {
                Ok(conn) => break conn,
                Err(e) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis(), "Redis not reachable yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(4));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA_LUA),
            prefix: config.redis_prefix.clone(),
            config: config.clone(),
            fallback: InMemoryLimiter::new(config),
            timeout,
            last_warning: std::sync::Mutex::new(None),
        })
    }

    /// The bucket of `key` and its Redis key (`{prefix}:ip:{addr}`, `…:tenant:{id}`,
    /// `…:strict{i}:{addr}`, `…:registration`).
    fn bucket(&self, key: &Key<'_>) -> Option<(Bucket, String)> {
        let prefix = &self.prefix;
        match *key {
            Key::ClientIp(ip) => Some((self.config.per_ip, format!("{prefix}:ip:{ip}"))),
            Key::Tenant(id) => Some((self.config.per_tenant, format!("{prefix}:tenant:{id}"))),
            Key::Strict(i, ip) => self
                .config
                .strict
                .get(i)
                .map(|s| (s.bucket, format!("{prefix}:strict{i}:{ip}"))),
            Key::Registration => Some((
                self.config.registration.bucket(),
                format!("{prefix}:registration"),
            )),
        }
    }

    async fn check_shared(&self, keys: &[Key<'_>]) -> Result<Decision, String> {
        let mut invocation = self.script.prepare_invoke();
        let mut any = false;
        for key in keys {
            let Some((bucket, name)) = self.bucket(key) else {
                continue;
            };
            invocation
                .key(name)
                .arg(bucket.replenish_ms.max(1))
                .arg(bucket.burst.max(1));
            any = true;
        }
        if !any {
            return Ok(Decision::Allowed {
                limit: 0,
                remaining: 0,
                reset: Duration::ZERO,
            });
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| "timed out".to_owned())?
                .map_err(|e| e.to_string())?;
        let [allowed, limit, remaining, ms] = reply[..] else {
            return Err(format!("unexpected reply of {} values", reply.len()));
        };
        let limit = u32::try_from(limit).unwrap_or(0);
        let ms = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        Ok(if allowed == 1 {
            Decision::Allowed {
                limit,
                remaining: u32::try_from(remaining).unwrap_or(0),
                reset: ms,
            }
        } else {
            Decision::Limited {
                limit,
                retry_after: ms,
            }
        })
    }

    fn warn(&self, error: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(%error, "rate limiting: Redis unavailable, using this replica's budget");
        }
    }
}

impl RateLimiter for RedisLimiter {
    fn check<'a>(&'a self, keys: &'a [Key<'a>]) -> Check<'a> {
        Either::Right(Box::pin(async move {
            match self.check_shared(keys).await {
                Ok(d) => d,
                Err(e) => {
                    self.warn(&e);
                    self.fallback.check_now(keys)
                }
            }
        }))
    }
}

/// Whole seconds, rounded up (header values).
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
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
            ..RateLimitConfig::default()
        };
        let l = InMemoryLimiter::new(&config);
        let keys = [Key::ClientIp([1, 2, 3, 4].into())];
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
        let other = [Key::ClientIp([5, 6, 7, 8].into())];
        assert!(matches!(l.check_now(&other), Decision::Allowed { .. }));
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn ipv6_clients_are_keyed_per_64() {
        let key = |s: &str| client_bucket(s.parse().unwrap(), 64);
        // Two addresses of one /64 share a key…
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(
            key("2001:db8:1:2:aaaa::5"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        // …neighbouring /64s do not.
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db9:1:2::1"));
        // IPv4 is per address, also when it arrives IPv4-mapped (else every IPv4 client of a
        // dual-stack listener would share `::/64`).
        assert_eq!(key("192.0.2.1"), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("::ffff:192.0.2.1"), key("::ffff:192.0.2.2"));
        // Other prefix lengths.
        let ip = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(client_bucket(ip, 128), ip);
        assert_eq!(
            client_bucket(ip, 48),
            "2001:db8:1::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn registration_budget_is_one_for_every_client() {
        let config = RateLimitConfig {
            registration: crate::RegistrationLimit {
                burst: 2,
                replenish_ms: 60_000,
                ..Default::default()
            },
            ..RateLimitConfig::default()
        };
        let l = InMemoryLimiter::new(&config);
        for i in 0..2u8 {
            let keys = [Key::ClientIp([10, 0, 0, i].into()), Key::Registration];
            assert!(matches!(l.check_now(&keys), Decision::Allowed { .. }));
        }
        let keys = [Key::ClientIp([10, 0, 0, 9].into()), Key::Registration];
        assert!(matches!(
            l.check_now(&keys),
            Decision::Limited { limit: 2, .. }
        ));
    }
}
