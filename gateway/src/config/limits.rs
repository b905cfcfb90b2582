//! Rate limits and protection limits: the token buckets per client, tenant and route, the
//! strict buckets of sign-in and registration, and the bounds on requests and connections.

use serde::{Deserialize, Serialize};
use tansu_shared::config::Secret;

/// A token bucket: `burst` requests at once, one more every `replenish_ms`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub burst: u32,
    pub replenish_ms: u64,
}

/// A stricter per-client bucket for paths under `path_prefix` (the public path after any
/// `/t/{tenant}` segments, compared in its canonical form and ignoring case, [`surface`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StrictLimit {
    pub path_prefix: String,
    #[serde(flatten)]
    pub bucket: Bucket,
}

/// One platform-wide bucket for creating accounts and tenants: every request with an unsafe
/// method (anything but GET, HEAD, OPTIONS) to a path under one of `paths` takes a token from
/// it, whoever sends it, so many client addresses together cannot create tenants in bulk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationLimit {
    pub paths: Vec<String>,
    pub burst: u32,
    pub replenish_ms: u64,
}

impl RegistrationLimit {
    pub fn bucket(&self) -> Bucket {
        Bucket {
            burst: self.burst,
            replenish_ms: self.replenish_ms,
        }
    }
}

impl Default for RegistrationLimit {
    fn default() -> Self {
        Self {
            paths: vec![
                "/identity/register".into(),
                "/identity/registrations".into(),
            ],
            burst: 20,
            replenish_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Every request, per client: an IPv4 address, or the IPv6 network of `ipv6_prefix` bits.
    pub per_ip: Bucket,
    /// Spent only by requests carrying a token the gateway verified (route `verify_tokens`)
    /// whose `tid` is the tenant: naming a tenant without its credential spends nothing of it.
    pub per_tenant: Bucket,
    pub strict: Vec<StrictLimit>,
    /// The platform-wide budget of registrations.
    pub registration: RegistrationLimit,
    /// IPv6 clients share a bucket per network of this many leading bits (a /64 is one
    /// subscriber's: it holds more addresses than any budget could count).
    pub ipv6_prefix: u8,
    /// Share the budgets with every gateway replica through this Redis (`redis://…`); empty:
    /// each replica keeps its own budget in memory.
    pub redis_url: Secret,
    /// Prefix of the Redis keys (one prefix per platform sharing a Redis).
    pub redis_prefix: String,
    /// Longest wait for Redis on a request before the replica's own budget decides instead.
    pub redis_timeout_ms: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        let strict = |p: &str, burst, replenish_ms| StrictLimit {
            path_prefix: p.into(),
            bucket: Bucket {
                burst,
                replenish_ms,
            },
        };
        Self {
            enabled: true,
            per_ip: Bucket {
                burst: 400,
                replenish_ms: 5,
            },
            per_tenant: Bucket {
                burst: 2000,
                replenish_ms: 1,
            },
            // Sign-in (`/login` covers its steps `/login/mfa`, `/login/tenant`, `/login/enrol`),
            // tokens, MFA enrolment and registration: password, code and account guessing.
            strict: vec![
                strict("/identity/connect/token", 30, 100),
                strict("/identity/connect/authorize", 30, 500),
                strict("/identity/login", 10, 2000),
                strict("/identity/account/mfa", 10, 2000),
                strict("/identity/register", 5, 12_000),
                strict("/identity/registrations", 5, 12_000),
            ],
            registration: RegistrationLimit::default(),
            ipv6_prefix: 64,
            redis_url: Secret::default(),
            redis_prefix: "tansu:ratelimit".into(),
            redis_timeout_ms: 50,
        }
    }
}

/// Protection limits (client side).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request head (HTTP/1 read buffer, HTTP/2 header list); at least 8192.
    pub max_header_bytes: usize,
    /// Default per-route request body limit.
    pub max_body_bytes: u64,
    /// Time for an upstream to answer with response headers (504 after).
    pub request_timeout_ms: u64,
    /// A connection with no bytes in either direction for this long is closed: also how long
    /// a keep-alive connection waits for its next request.
    pub idle_timeout_ms: u64,
    /// Time for a client to send a whole HTTP/1 request head once its first byte arrived
    /// (slowloris).
    pub header_read_timeout_ms: u64,
    pub tls_handshake_timeout_ms: u64,
    /// Open client connections per listener; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    pub http2_max_concurrent_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 32 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            header_read_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 10_000,
            max_connections: 10_000,
            http2_max_concurrent_streams: 250,
        }
    }
}
