//! Forwarding hygiene: what the gateway removes from and adds to a request on its way to a
//! service, and to a response on its way back.
//!
//! Invariants:
//! - hop-by-hop headers (RFC 9110 §7.6.1, plus any the `Connection` header names) never cross
//!   the gateway;
//! - `X-Forwarded-For/-Proto/-Host` and `Forwarded` describe the connection the gateway saw. A
//!   client's own copies are dropped, except when the peer is a configured trusted proxy, whose
//!   chain is extended;
//! - `X-Request-Id` is kept when well-formed (so a caller can correlate), otherwise created;
//! - a well-formed W3C `traceparent` is propagated, a malformed one dropped, a missing one
//!   created, so every service's spans join one trace (both in [`crate::trace`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub use crate::trace::{is_valid_traceparent, propagate_trace, request_id};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
pub static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
pub static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// An IP address or CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpRange>);

impl TrustedProxies {
    pub fn new(list: &[String]) -> Self {
        Self(list.iter().filter_map(|s| IpRange::parse(s)).collect())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|r| r.contains(ip))
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
    /// address in its `X-Forwarded-For` chain that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect();
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// Removes the hop-by-hop headers, including every header the `Connection` header names.
/// With `keep_upgrade`, `Connection: upgrade` and `Upgrade` stay (WebSocket pass-through).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names (no hashing) settles that.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if keep_upgrade && name == header::UPGRADE {
            continue;
        }
        headers.remove(&name);
    }
    headers.remove(header::CONNECTION);
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TE);
    headers.remove(header::TRAILER);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove(header::PROXY_AUTHENTICATE);
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// The hop-by-hop headers of RFC 9110 §7.6.1 (and the pre-standard `Keep-Alive`,
/// `Proxy-Connection`) — a header the `Connection` header names is only one when that is present.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHENTICATE,
        &header::UPGRADE,
    ]
    .contains(&name)
}

/// Whether an HTTP/1.1 request asks to switch protocols (WebSocket).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// What the gateway knows about the connection a request came on, and this hop's forwarding
/// header values, which are the same for every request on it: rendered once per connection
/// instead of formatting the peer's address per request.
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    /// Whether the peer is a trusted proxy.
    pub trusted: bool,
    pub proto: &'static str,
    /// This hop's `X-Forwarded-For` entry: the peer's address (an IPv4-mapped one as IPv4).
    peer_entry: HeaderValue,
    /// `for=…;proto=…`: this hop's `Forwarded` element up to its `host`.
    forwarded_for: String,
    /// The `Forwarded` value (no earlier chain) for the host last asked for on this
    /// connection, which is the host of almost every request on it.
    last_forwarded: Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl Connection {
    pub fn new(peer: SocketAddr, trusted: bool, proto: &'static str) -> Self {
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let forwarded_for = match ip {
            IpAddr::V4(v4) => format!("for={v4};proto={proto}"),
            IpAddr::V6(v6) => format!("for=\"[{v6}]\";proto={proto}"),
        };
        Self {
            peer,
            trusted,
            proto,
            peer_entry: HeaderValue::from_str(&ip.to_string())
                .unwrap_or(HeaderValue::from_static("unknown")),
            forwarded_for,
            last_forwarded: Mutex::new(None),
        }
    }

    /// This hop's `Forwarded` element: `for=…;proto=…` and, when known, `;host="…"`.
    fn forwarded_element(&self, host: Option<&str>) -> String {
        let mut element = self.forwarded_for.clone();
        if let Some(h) = host {
            element.push_str(";host=\"");
            element.push_str(h);
            element.push('"');
        }
        element
    }

    /// The `Forwarded` value of a request without an earlier chain.
    fn forwarded(&self, host: Option<&HeaderValue>) -> Option<HeaderValue> {
        let mut last = self
            .last_forwarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(host) = host else {
            return HeaderValue::from_str(&self.forwarded_for).ok();
        };
        if let Some((h, value)) = &*last
            && h == host
        {
            return Some(value.clone());
        }
        let value = HeaderValue::from_str(&self.forwarded_element(host.to_str().ok())).ok()?;
        *last = Some((host.clone(), value.clone()));
        Some(value)
    }
}

/// Sets `X-Forwarded-For/-Proto/-Host` and `Forwarded` for the upstream. `host` is the
/// authority the client asked for. A trusted proxy's chain is extended, anyone else's dropped.
pub fn set_forwarded(headers: &mut HeaderMap, conn: &Connection, host: Option<&HeaderValue>) {
    let host = host.filter(|h| h.to_str().is_ok_and(is_valid_host));
    let (prior_xff, prior_fwd, prior_proto, prior_host) = if conn.trusted {
        (
            joined(headers, &X_FORWARDED_FOR),
            joined(headers, &FORWARDED),
            headers.get(&X_FORWARDED_PROTO).cloned(),
            headers.get(&X_FORWARDED_HOST).cloned(),
        )
    } else {
        (None, None, None, None)
    };
    let ours = [
        &X_FORWARDED_FOR,
        &X_FORWARDED_PROTO,
        &X_FORWARDED_HOST,
        &X_FORWARDED_PORT,
        &X_FORWARDED_PREFIX,
        &X_REAL_IP,
        &FORWARDED,
    ];
    // Usually the client sent none of them: one pass over the names instead of seven lookups.
    if headers.keys().any(|k| ours.contains(&k)) {
        for name in ours {
            headers.remove(name);
        }
    }
    let xff = match prior_xff {
        Some(p) => {
            HeaderValue::from_str(&format!("{p}, {}", conn.peer_entry.to_str().unwrap_or(""))).ok()
        }
        None => Some(conn.peer_entry.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        prior_proto.unwrap_or(HeaderValue::from_static(conn.proto)),
    );
    if let Some(h) = prior_host.or_else(|| host.cloned()) {
        headers.insert(X_FORWARDED_HOST.clone(), h);
    }
    let fwd = match prior_fwd {
        Some(p) => {
            let element = conn.forwarded_element(host.and_then(|h| h.to_str().ok()));
            HeaderValue::from_str(&format!("{p}, {element}")).ok()
        }
        None => conn.forwarded(host),
    };
    if let Some(v) = fwd {
        headers.insert(FORWARDED.clone(), v);
    }
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A host or host:port made only of characters a DNS name, an IP literal or a port can hold.
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Whether a path has a `.` or `..` segment, also percent-encoded (`%2e`).
pub fn has_dot_segment(path: &str) -> bool {
    path.as_bytes().split(|b| *b == b'/').any(|seg| {
        // Count the dots, each `.` or `%2e`/`%2E`; anything else makes it a name.
        let mut rest = seg;
        let mut dots = 0;
        while !rest.is_empty() {
            rest = match rest {
                [b'.', tail @ ..] => tail,
                [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
                _ => return false,
            };
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

/// The host without its port, lower-cased (`Acme.Example.com:8443` → `acme.example.com`).
pub fn host_name(host: &str) -> String {
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.1.2.3".parse().unwrap()));
        assert!(r.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one = IpRange::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpRange::parse("::1/128")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("nope").is_none());
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_from_untrusted_peer_is_replaced() {
        let mut h = HeaderMap::new();
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        h.insert(&FORWARDED, HeaderValue::from_static("for=6.6.6.6"));
        h.insert(&X_FORWARDED_HOST, HeaderValue::from_static("evil"));
        let conn = Connection::new("127.0.0.1:5000".parse().unwrap(), false, "https");
        let host = HeaderValue::from_static("example.com:8443");
        set_forwarded(&mut h, &conn, Some(&host));
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "example.com:8443");
        assert_eq!(
            h[&FORWARDED],
            "for=127.0.0.1;proto=https;host=\"example.com:8443\""
        );
        // The connection's next requests: another host, none, and the first one again.
        let forwarded = |host: Option<&str>| {
            let mut h = HeaderMap::new();
            let host = host.map(HeaderValue::from_str).map(Result::unwrap);
            set_forwarded(&mut h, &conn, host.as_ref());
            (h.get(&X_FORWARDED_HOST).cloned(), h[&FORWARDED].clone())
        };
        assert_eq!(
            forwarded(Some("b.example")),
            (
                Some(HeaderValue::from_static("b.example")),
                HeaderValue::from_static("for=127.0.0.1;proto=https;host=\"b.example\"")
            )
        );
        assert_eq!(forwarded(None).1, "for=127.0.0.1;proto=https");
        assert_eq!(
            forwarded(Some("example.com:8443")).1,
            "for=127.0.0.1;proto=https;host=\"example.com:8443\""
        );
        // A host that is not a host name is not forwarded.
        assert_eq!(
            forwarded(Some("a b")),
            (None, HeaderValue::from_static("for=127.0.0.1;proto=https"))
        );
        // IPv6 peers: bracketed and quoted in `Forwarded`; IPv4-mapped ones as IPv4.
        let v6 = Connection::new("[2001:db8::1]:5000".parse().unwrap(), false, "http");
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, &v6, None);
        assert_eq!(h[&X_FORWARDED_FOR], "2001:db8::1");
        assert_eq!(h[&FORWARDED], "for=\"[2001:db8::1]\";proto=http");
        let mapped = Connection::new("[::ffff:10.1.2.3]:5000".parse().unwrap(), false, "http");
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, &mapped, None);
        assert_eq!(h[&X_FORWARDED_FOR], "10.1.2.3");
        assert_eq!(h[&FORWARDED], "for=10.1.2.3;proto=http");
    }

    #[test]
    fn forwarded_from_trusted_proxy_is_extended() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let mut h = HeaderMap::new();
        h.insert(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("1.2.3.4, 10.0.0.7"),
        );
        let peer: SocketAddr = "10.0.0.9:1234".parse().unwrap();
        assert_eq!(
            trusted.client_ip(peer.ip(), &h),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        let conn = Connection::new(peer, true, "https");
        let host = HeaderValue::from_static("a.example");
        set_forwarded(&mut h, &conn, Some(&host));
        assert_eq!(h[&X_FORWARDED_FOR], "1.2.3.4, 10.0.0.7, 10.0.0.9");
        assert_eq!(h[&FORWARDED], "for=10.0.0.9;proto=https;host=\"a.example\"");
        // An untrusted peer's XFF never decides the client address.
        assert_eq!(
            trusted.client_ip("5.5.5.5".parse().unwrap(), &h),
            "5.5.5.5".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn dot_segments() {
        assert!(has_dot_segment("/identity/../db"));
        assert!(has_dot_segment("/a/./b"));
        assert!(has_dot_segment("/a/%2E%2e/b"));
        assert!(has_dot_segment("/a/.%2e"));
        assert!(!has_dot_segment("/a/..b/.c/"));
        assert!(!has_dot_segment("/"));
        assert!(has_dot_segment(".."));
        assert!(has_dot_segment("/a/%2e"));
        assert!(!has_dot_segment("/a/.../b"));
        assert!(!has_dot_segment("/a/%2f/b"));
        assert!(!has_dot_segment("/a/%2"));
        assert!(!has_dot_segment("/a/%2e%2ex"));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("Acme.Example.com:8443"), "acme.example.com");
        assert_eq!(host_name("example.com"), "example.com");
        assert_eq!(host_name("[::1]:443"), "[::1]");
    }
}
