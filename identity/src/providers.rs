//! External OIDC providers per tenant: validation, the sealed client secret and the guarded
//! discovery fetch (the admin API is [`crate::admin::providers`]).
//!
//! The client secret is write-only: it is sealed with AES-256-GCM under the tenant's vault data
//! key ([`crate::vault`], envelope encryption under the master key) with AAD
//! `tansu-provider:<tenant>\n<provider id>`, so a ciphertext copied to another row does not
//! open; the API only ever says `has_secret`.
//!
//! The test of a provider fetches its discovery document. Because a tenant admin chooses
//! the URL, the fetch is bounded (5 s, 256 KiB, no redirects) and the issuer must be `https`
//! (plain `http` only for loopback hosts in dev mode; outside dev mode, IP-literal hosts in
//! loopback, private or link-local ranges are refused). Every outcome of the fetch is a `200`
//! with `ok: false` and a reason, never a 5xx: the provider being wrong is not our failure.
#![allow(clippy::result_large_err)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::crypto::MasterKeys;
use crate::store::Store;
use crate::store::providers::ProviderRow;

mod sign_in;
pub(crate) use sign_in::mapped_roles;
use sign_in::settings_problems;

/// The security event type of provider changes.
pub const PROVIDER_CHANGE: &str = "provider.change";

/// Bounds of the discovery fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_SCOPES: usize = 20;
pub(crate) const MAX_SECRET_BYTES: usize = 1024;

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Addresses a tenant admin must not point the server at outside dev mode.
fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                // Shared address space (RFC 6598), often a cloud's internal network.
                || (a == 100 && (64..128).contains(&b))
                // Benchmarking (RFC 2544) and IETF protocol assignments.
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal_ip(v4.into()))
        }
    }
}

/// Problems with an issuer URL: https (http only for loopback in dev mode), no credentials,
/// query or fragment; outside dev mode no loopback/private IP literal.
pub fn issuer_problems(issuer: &str, dev_mode: bool) -> Vec<String> {
    let mut v = Vec::new();
    if issuer.len() > 2048 {
        v.push("issuer: at most 2048 characters".to_owned());
        return v;
    }
    let url = match url::Url::parse(issuer) {
        Ok(u) => u,
        Err(_) => {
            v.push("issuer: an absolute https URL".to_owned());
            return v;
        }
    };
    let Some(host) = url.host() else {
        v.push("issuer: an absolute https URL".to_owned());
        return v;
    };
    match url.scheme() {
        "https" => {}
        "http" if dev_mode && is_loopback_host(&host) => {}
        "http" => v.push("issuer: must be https (http only for loopback in dev mode)".to_owned()),
        _ => v.push("issuer: an absolute https URL".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        v.push("issuer: must not contain credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        v.push("issuer: must not have a query or fragment".to_owned());
    }
    if !dev_mode {
        let internal = match host {
            url::Host::Ipv4(ip) => is_internal_ip(ip.into()),
            url::Host::Ipv6(ip) => is_internal_ip(ip.into()),
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        };
        if internal {
            v.push("issuer: must not be a loopback, private or link-local address".to_owned());
        }
    }
    v
}

pub(crate) fn row_problems(p: &ProviderRow, dev_mode: bool) -> Vec<String> {
    let mut v = Vec::new();
    let name_len = p.name.chars().count();
    if name_len == 0 || name_len > 200 || p.name.chars().any(char::is_control) {
        v.push("name: required, at most 200 characters".to_owned());
    }
    v.extend(issuer_problems(&p.issuer, dev_mode));
    if p.client_id.is_empty()
        || p.client_id.len() > 256
        || p.client_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        v.push("client_id: 1 to 256 characters, no spaces".to_owned());
    }
    if p.scopes.len() > MAX_SCOPES {
        v.push(format!("scopes: at most {MAX_SCOPES}"));
    }
    if p.scopes
        .iter()
        .any(|s| s.len() > 128 || crate::scopes::parse(s).is_none_or(|t| t.len() != 1))
    {
        v.push("scopes: each a single RFC 6749 scope token".to_owned());
    }
    if !p.scopes.iter().any(|s| s == "openid") {
        v.push("scopes: must include openid".to_owned());
    }
    v.extend(settings_problems(&p.sign_in));
    v
}

pub(crate) fn secret_aad(tid: &str, id: &str) -> Vec<u8> {
    format!("tansu-provider:{tid}\n{id}").into_bytes()
}

/// The provider's client secret, opened (for the sign-in flow that will use it).
pub async fn client_secret(
    store: &Store,
    master: &MasterKeys,
    p: &ProviderRow,
) -> anyhow::Result<Option<zeroize::Zeroizing<String>>> {
    let Some(sealed) = &p.client_secret else {
        return Ok(None);
    };
    let dek = crate::vault::data_key(store, master, &p.tenant_id).await?;
    let plain = dek.open(sealed, &secret_aad(&p.tenant_id, &p.id))?;
    Ok(Some(zeroize::Zeroizing::new(String::from_utf8(
        plain.to_vec(),
    )?)))
}

pub(crate) fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

// ---------------------------------------------------------------- discovery test

/// The HTTP client of a discovery fetch; `pinned` connects `host` to that address only.
fn http(pinned: Option<(&str, std::net::SocketAddr)>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        // A redirect could lead anywhere (SSRF); discovery documents are served directly.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("tansu-identity (provider discovery test)");
    if let Some((host, addr)) = pinned {
        builder = builder.resolve(host, addr);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Refused fetches say only this, so the check is no oracle for probing a network.
const NOT_ALLOWED: &str = "the provider's address is not allowed";

/// Outside dev mode, the one address a discovery fetch may connect to: every address the
/// issuer's host resolves to must be public (not loopback, private, link-local — which
/// includes cloud metadata at 169.254.169.254 — or otherwise internal), and the fetch then
/// connects to the first of them only, so a DNS answer that changes between this check and
/// the connection (rebinding) cannot aim it inward. `None` in dev mode or for an IP literal
/// (checked by [`issuer_problems`]).
async fn vetted_address(
    url: &url::Url,
    dev_mode: bool,
) -> Result<Option<(String, std::net::SocketAddr)>, String> {
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(None);
    };
    if dev_mode {
        return Ok(None);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| "the provider's host name could not be resolved".to_owned())?
        .collect();
    match addrs.first() {
        Some(first) if addrs.iter().all(|a| !is_internal_ip(a.ip())) => {
            Ok(Some((host.to_owned(), *first)))
        }
        _ => Err(NOT_ALLOWED.to_owned()),
    }
}

/// The discovery URL of an issuer (OIDC Discovery §4: the issuer without a trailing `/`).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The outcome of a discovery check (the admin API's answer to `POST …/test`).
pub use tansu_shared::admin_api::DiscoveryCheck;

/// Fetches and checks `issuer`'s discovery document: an answer within the time and size
/// bounds, `200`, a JSON object whose `issuer` equals `issuer` exactly, and the authorization,
/// token and JWKS endpoints present.
pub async fn check_discovery(issuer: &str, dev_mode: bool) -> DiscoveryCheck {
    let started = Instant::now();
    let url = discovery_url(issuer);
    let mut check = DiscoveryCheck {
        ok: false,
        discovery_url: url.clone(),
        reason: None,
        http_status: None,
        issuer: None,
        authorization_endpoint: None,
        token_endpoint: None,
        jwks_uri: None,
        elapsed_ms: 0,
    };
    let result = fetch_document(&url, dev_mode, &mut check).await;
    check.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let doc = match result {
        Ok(doc) => doc,
        Err(reason) => {
            check.reason = Some(reason);
            return check;
        }
    };
    let field = |k: &str| {
        doc.get(k)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(2048).collect::<String>())
    };
    check.issuer = field("issuer");
    check.authorization_endpoint = field("authorization_endpoint");
    check.token_endpoint = field("token_endpoint");
    check.jwks_uri = field("jwks_uri");
    let reason = match &check.issuer {
        None => Some("the document has no issuer".to_owned()),
        Some(i) if i != issuer => Some(format!(
            "the document's issuer {i:?} does not match the configured issuer {issuer:?} exactly"
        )),
        Some(_) => {
            let missing: Vec<&str> = [
                ("authorization_endpoint", &check.authorization_endpoint),
                ("token_endpoint", &check.token_endpoint),
                ("jwks_uri", &check.jwks_uri),
            ]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
            (!missing.is_empty()).then(|| format!("the document lacks {}", missing.join(", ")))
        }
    };
    check.ok = reason.is_none();
    check.reason = reason;
    check
}

async fn fetch_document(
    url: &str,
    dev_mode: bool,
    check: &mut DiscoveryCheck,
) -> Result<serde_json::Value, String> {
    let parsed = url::Url::parse(url).map_err(|_| "the issuer is not a URL".to_owned())?;
    let pinned = vetted_address(&parsed, dev_mode).await?;
    let client = http(pinned.as_ref().map(|(h, a)| (h.as_str(), *a)))?;
    let mut resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the provider did not answer in time".to_owned()
            } else if e.is_connect() {
                "the provider could not be reached (connection failed)".to_owned()
            } else {
                "the request to the provider failed".to_owned()
            }
        })?;
    let status = resp.status();
    check.http_status = Some(status.as_u16());
    if status.is_redirection() {
        return Err(format!(
            "the provider answered {} (a redirect; discovery must be served directly)",
            status.as_u16()
        ));
    }
    if !status.is_success() {
        return Err(format!("the provider answered HTTP {}", status.as_u16()));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(format!(
            "the document is larger than {} KiB",
            MAX_DOCUMENT_BYTES / 1024
        ));
    }
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(format!(
                        "the document is larger than {} KiB",
                        MAX_DOCUMENT_BYTES / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err("the provider did not answer in time".into()),
            Err(_) => return Err("the provider's answer broke off".into()),
        }
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("the document is not a JSON object".into()),
        Err(_) => Err("the document is not JSON".into()),
    }
}

// ---------------------------------------------------------------- requests of a sign-in

/// Why a request to a provider was not made or not answered usably (says nothing of the
/// network beyond the provider's own URL).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutboundError(String);

/// Whether a sign-in may send a request to `url`: https (http only for loopback in dev mode),
/// no credentials; outside dev mode, no internal IP literal (names are vetted at connection).
fn endpoint_allowed(url: &url::Url, dev_mode: bool) -> bool {
    let Some(host) = url.host() else {
        return false;
    };
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => dev_mode && is_loopback_host(&host),
        _ => false,
    };
    let internal = !dev_mode
        && match host {
            url::Host::Ipv4(ip) => is_internal_ip(ip.into()),
            url::Host::Ipv6(ip) => is_internal_ip(ip.into()),
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        };
    scheme_ok && !internal && url.username().is_empty() && url.password().is_none()
}

/// A request of a sign-in through a provider (discovery, JWKS, token endpoint), made with the
/// discovery test's guards: the endpoint allowed ([`endpoint_allowed`]), the connection pinned
/// to a vetted public address outside dev mode, 5 s, 256 KiB, no redirects.
pub async fn guarded_send(
    dev_mode: bool,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OutboundError> {
    let err = |m: &str| OutboundError(m.to_owned());
    let url = url::Url::parse(&request.uri().to_string()).map_err(|_| err("not a URL"))?;
    if !endpoint_allowed(&url, dev_mode) {
        return Err(err(NOT_ALLOWED));
    }
    let pinned = vetted_address(&url, dev_mode)
        .await
        .map_err(OutboundError)?;
    let client = http(pinned.as_ref().map(|(h, a)| (h.as_str(), *a))).map_err(OutboundError)?;
    let request = reqwest::Request::try_from(request).map_err(|_| err("a malformed request"))?;
    let mut resp = client.execute(request).await.map_err(|e| {
        if e.is_timeout() {
            err("the provider did not answer in time")
        } else {
            err("the provider could not be reached")
        }
    })?;
    let too_large = || {
        OutboundError(format!(
            "an answer larger than {} KiB",
            MAX_DOCUMENT_BYTES / 1024
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut out = http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        out = out.header(name, value);
    }
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err(err("the provider's answer broke off")),
        }
    }
    out.body(body).map_err(|_| err("a malformed answer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_include_metadata_and_shared_space() {
        for ip in [
            "169.254.169.254",
            "100.100.100.200",
            "10.0.0.1",
            "127.0.0.1",
            "0.1.2.3",
            "::1",
            "fd00::1",
            "::ffff:10.1.2.3",
        ] {
            assert!(is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"] {
            assert!(!is_internal_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_inward_is_refused_outside_dev_mode() {
        // `localhost` resolves from the hosts file, without the network.
        let url =
            url::Url::parse("https://localhost:8443/.well-known/openid-configuration").unwrap();
        assert_eq!(vetted_address(&url, false).await.unwrap_err(), NOT_ALLOWED);
        assert!(vetted_address(&url, true).await.unwrap().is_none());
        let mut check = check_discovery("https://localhost:8443", false).await;
        assert!(!check.ok);
        assert_eq!(check.reason.take().as_deref(), Some(NOT_ALLOWED));
        assert!(check.http_status.is_none());
    }

    #[test]
    fn issuer_rules() {
        assert!(issuer_problems("https://accounts.example.com", false).is_empty());
        assert!(issuer_problems("https://login.example.com/tenant/v2.0/", false).is_empty());
        assert!(issuer_problems("http://127.0.0.1:8080/", true).is_empty());
        assert!(issuer_problems("http://localhost:8080", true).is_empty());
        for bad in [
            "http://example.com",
            "http://127.0.0.1:8080/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://[::1]/",
            "https://169.254.169.254/",
            "https://u:p@example.com/",
            "https://example.com/?q",
            "ftp://example.com",
            "not a url",
            "",
        ] {
            assert!(!issuer_problems(bad, false).is_empty(), "{bad}");
        }
        assert!(!issuer_problems("http://example.com", true).is_empty());
    }

    #[test]
    fn sign_in_endpoints_follow_the_issuer_rules() {
        let ok = |u: &str, dev| endpoint_allowed(&url::Url::parse(u).unwrap(), dev);
        assert!(ok("https://op.example/token", false));
        assert!(ok("http://127.0.0.1:9/token", true));
        assert!(!ok("http://127.0.0.1:9/token", false));
        assert!(!ok("http://op.example/token", true));
        assert!(!ok("https://169.254.169.254/latest", false));
        assert!(!ok("https://u:p@op.example/token", false));
        assert!(!ok("https://localhost/token", false));
    }

    #[test]
    fn discovery_url_drops_the_trailing_slash() {
        assert_eq!(
            discovery_url("https://a.example/x/"),
            "https://a.example/x/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example"),
            "https://a.example/.well-known/openid-configuration"
        );
    }
}
