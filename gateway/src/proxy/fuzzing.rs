//! A request head through the gateway's steps 3 to 5 ([`super`]: everything but its own
//! `/health` paths and the upstream), against a fixed configuration and tenant directory: the
//! body of the `gateway_head` fuzz target (`fuzz/`, [`head`]) and of the gateway's properties
//! (`tests/properties.rs`, [`admit`]).
//!
//! What must hold of any head: nothing panics; a request is forwarded with exactly the
//! `X-Tansu-Tenant` of the tenant the gateway resolved (an active tenant of the directory) or
//! none, and what the client sent in that header changes nothing; no hop-by-hop header, `Host`
//! or `Expect` reaches the service; `X-Forwarded-For` from a direct client is its address alone.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use tansu_shared::TENANT_HEADER;

use super::{Admitted, Gateway, problem_response};
use crate::config::{Route, TenantEntry};
use crate::forwarding::{self, Connection};
use crate::{Config, cors, tenant};

/// The base domain: `{slug}.fuzz.test` names a tenant.
pub const BASE_DOMAIN: &str = "fuzz.test";
/// The directory: `(slug, id, suspended)`.
pub const TENANTS: &[(&str, &str, bool)] = &[
    ("acme", "0190f5c0-0000-7000-8000-00000000000a", false),
    ("beta", "0190f5c0-0000-7000-8000-00000000000b", false),
    ("gone", "0190f5c0-0000-7000-8000-00000000000c", true),
];
/// The routes' prefixes (their upstreams are never contacted).
pub const ROUTES: &[&str] = &["/identity", "/db", "/storage", "/dashboard"];
/// The direct client's address, and the trusted proxy's.
pub const CLIENT: &str = "192.0.2.7:40000";
pub const PROXY: &str = "10.0.0.9:40000";

/// What the gateway made of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded as `path` on its service, with `headers`, for `tenant` (the resolved id).
    Forwarded {
        headers: HeaderMap,
        path: String,
        tenant: Option<String>,
    },
    /// Answered by the gateway itself.
    Answered(u16),
}

impl Outcome {
    /// The outcome without what differs between two runs of the same request (a fresh request
    /// id and trace context when the client sent none).
    pub fn without_trace(&self) -> Self {
        match self {
            Outcome::Forwarded {
                headers,
                path,
                tenant,
            } => {
                let mut headers = headers.clone();
                for h in [
                    &forwarding::REQUEST_ID,
                    &forwarding::TRACEPARENT,
                    &forwarding::TRACESTATE,
                ] {
                    headers.remove(h);
                }
                Outcome::Forwarded {
                    headers,
                    path: path.clone(),
                    tenant: tenant.clone(),
                }
            }
            other => other.clone(),
        }
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    gateway: Gateway,
    direct: Connection,
    proxied: Connection,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = Config {
            routes: ROUTES
                .iter()
                .map(|p| Route {
                    prefix: (*p).to_owned(),
                    upstreams: vec!["http://127.0.0.1:9".into()],
                })
                .collect(),
            base_domain: Some(BASE_DOMAIN.into()),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..Config::default()
        };
        let entries: Vec<TenantEntry> = TENANTS
            .iter()
            .map(|(slug, id, suspended)| TenantEntry {
                slug: (*slug).to_owned(),
                id: (*id).to_owned(),
                suspended: *suspended,
                allowed_origins: vec![format!("https://{slug}.example")],
            })
            .collect();
        let directory = Arc::new(tenant::StaticDirectory::new(&entries));
        let gateway = runtime
            .block_on(Gateway::new(&config, directory, None))
            .expect("the harness's gateway");
        let addr = |s: &str| s.parse::<SocketAddr>().expect("an address");
        Harness {
            runtime,
            gateway,
            direct: Connection::new(addr(CLIENT), false, "https"),
            proxied: Connection::new(addr(PROXY), true, "https"),
        }
    })
}

/// The request head through the gateway, from a direct client or (`from_proxy`) from the
/// trusted proxy.
pub fn admit(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
    from_proxy: bool,
) -> Outcome {
    let h = harness();
    let mut req = Request::new(());
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri.clone();
    *req.version_mut() = version;
    *req.headers_mut() = headers.clone();
    h.gateway.apply_alias(&mut req);
    let upgrade = req.version() == Version::HTTP_11 && forwarding::wants_upgrade(req.headers());
    let rid = forwarding::request_id(req.headers());
    let (mut parts, ()) = req.into_parts();
    let conn = if from_proxy { &h.proxied } else { &h.direct };
    let mut cors = cors::Outcome::default();
    let admitted = h.runtime.block_on(h.gateway.admit(
        (&parts.method, &parts.uri, &mut parts.headers),
        upgrade,
        conn,
        &rid,
        &mut cors,
    ));
    let mut answer = match admitted {
        Ok(Admitted::Forward { path, tenant, .. }) => {
            let path = path.to_owned();
            return Outcome::Forwarded {
                headers: parts.headers,
                path,
                tenant: tenant.map(|t| t.id.clone()),
            };
        }
        Ok(Admitted::Answered(resp)) => resp,
        Err(p) => problem_response(p, &rid),
    };
    cors.apply(answer.headers_mut());
    Outcome::Answered(answer.status().as_u16())
}

/// The `gateway_head` target: `data` as an HTTP/1.x request head (what hyper hands the gateway
/// is what `httparse` reads).
pub fn head(data: &[u8]) {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return;
        };
        headers.append(name, value);
    }
    for from_proxy in [false, true] {
        let outcome = admit(&method, &uri, version, &headers, from_proxy);
        check(&outcome, from_proxy);
        // Whatever the client says the tenant is, the gateway decides the same.
        let mut without = headers.clone();
        while without.remove(TENANT_HEADER).is_some() {}
        let mut other = without.clone();
        other.insert(TENANT_HEADER, HeaderValue::from_static(TENANTS[1].1));
        for variant in [without, other] {
            let again = admit(&method, &uri, version, &variant, from_proxy);
            assert_eq!(again.without_trace(), outcome.without_trace());
        }
    }
}

/// What holds of every outcome (see the module docs).
pub fn check(outcome: &Outcome, from_proxy: bool) {
    let (headers, path, tenant) = match outcome {
        Outcome::Answered(status) => {
            assert!(*status == 204 || (400..600).contains(status), "{status}");
            return;
        }
        Outcome::Forwarded {
            headers,
            path,
            tenant,
        } => (headers, path, tenant),
    };
    let injected: Vec<&HeaderValue> = headers.get_all(TENANT_HEADER).iter().collect();
    match tenant {
        Some(id) => {
            assert_eq!(injected, [id.as_str()], "the resolved tenant, once");
            assert!(
                TENANTS
                    .iter()
                    .any(|(_, t, suspended)| t == id && !suspended),
                "an active tenant of the directory: {id}"
            );
        }
        None => assert!(injected.is_empty(), "no tenant, no header: {injected:?}"),
    }
    for name in [
        header::HOST,
        header::EXPECT,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        assert!(!headers.contains_key(&name), "{name} forwarded");
    }
    for v in headers.get_all(header::CONNECTION) {
        assert_eq!(v, "upgrade");
    }
    if !from_proxy {
        let ip = CLIENT.split(':').next().unwrap_or_default();
        assert_eq!(
            headers
                .get_all(&forwarding::X_FORWARDED_FOR)
                .iter()
                .collect::<Vec<_>>(),
            [ip]
        );
    }
    assert!(path.starts_with('/'), "{path}");
    assert!(!forwarding::has_dot_segment(path), "{path}");
}
