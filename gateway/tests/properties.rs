//! Properties of the gateway's request-head handling over generated heads: nothing panics; a
//! request is forwarded for the tenant its host, its `/t/{tenant}/` path or its token names (in
//! that order, all agreeing), and the service receives exactly that tenant's id in
//! `X-Tansu-Tenant` — whatever the client sent in that header, which changes nothing; and the
//! forwarded head's hygiene holds (`tansu_gateway::proxy::fuzzing::check`). The `gateway_head`
//! fuzz target's committed inputs replay here too.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Uri, Version};
use proptest::prelude::*;
use tansu_gateway::proxy::fuzzing::{BASE_DOMAIN, Outcome, ROUTES, TENANTS, admit, check};
use tansu_shared::TENANT_HEADER;

/// An unsigned JWT naming `tid` (the gateway decodes it; the service verifies it).
fn token(tid: Option<&str>) -> String {
    let claims = serde_json::json!({ "sub": "u", "tid": tid });
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn id_of(slug: &str) -> Option<(&'static str, bool)> {
    TENANTS
        .iter()
        .find(|(s, _, _)| *s == slug)
        .map(|(_, id, suspended)| (*id, *suspended))
}

/// The tenant a request must be forwarded for (`Err`: it must not be forwarded), by the rules
/// of the gateway's README: the host's, else the path's, else the token's; all present must
/// agree, and the tenant must be known and active.
fn expected(
    host_slug: Option<&str>,
    path_slug: Option<&str>,
    tid: Option<&str>,
) -> Result<Option<&'static str>, ()> {
    if let (Some(h), Some(p)) = (host_slug, path_slug)
        && h != p
    {
        return Err(());
    }
    let tenant = match host_slug.or(path_slug) {
        Some(slug) => {
            let (id, suspended) = id_of(slug).ok_or(())?;
            if tid.is_some_and(|t| t != id) {
                return Err(());
            }
            (id, suspended)
        }
        None => match tid {
            None => return Ok(None),
            Some(t) => TENANTS
                .iter()
                .find(|(_, id, _)| *id == t)
                .map(|(_, id, suspended)| (*id, *suspended))
                .ok_or(())?,
        },
    };
    if tenant.1 {
        Err(())
    } else {
        Ok(Some(tenant.0))
    }
}

fn slug() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("acme"), Just("beta"), Just("gone"), Just("nosuch")]
}

fn tid() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(TENANTS[0].1),
        Just(TENANTS[1].1),
        Just(TENANTS[2].1),
        Just("0190f5c0-0000-7000-8000-0000000000ff"),
        Just("not an id!"),
    ]
}

proptest! {
    #[test]
    fn the_tenant_injected_is_the_tenant_resolved(
        method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::DELETE)],
        host_slug in proptest::option::of(slug()),
        upper_host in any::<bool>(),
        port in proptest::option::of(Just(":8443")),
        path_slug in proptest::option::of(slug()),
        route in prop_oneof![Just(ROUTES[0]), Just(ROUTES[1]), Just(ROUTES[2]), Just("/nope")],
        tail in "(/[a-z0-9]{1,6}){0,3}",
        token_tid in proptest::option::of(proptest::option::of(tid())),
        sent in proptest::collection::vec(
            prop_oneof![tid(), Just("evil"), Just("0190f5c0-0000-7000-8000-00000000000A")],
            0..3,
        ),
        from_proxy in any::<bool>(),
    ) {
        let host = match host_slug {
            Some(s) if upper_host => format!("{}.{BASE_DOMAIN}", s.to_uppercase()),
            Some(s) => format!("{s}.{BASE_DOMAIN}"),
            None => BASE_DOMAIN.to_owned(),
        } + port.unwrap_or("");
        let path = match path_slug {
            Some(s) => format!("/t/{s}{route}{tail}"),
            None => format!("{route}{tail}"),
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(&host).unwrap());
        if let Some(tid) = token_tid {
            headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {}", token(tid))).unwrap());
        }
        for v in &sent {
            headers.append(TENANT_HEADER, HeaderValue::from_str(v).unwrap());
        }
        let uri: Uri = path.parse().unwrap();
        let outcome = admit(&method, &uri, Version::HTTP_11, &headers, from_proxy);
        check(&outcome, from_proxy);

        let want = expected(host_slug, path_slug, token_tid.flatten());
        match (&outcome, want) {
            (Outcome::Forwarded { headers: forwarded, tenant, path: on_service }, Ok(want)) => {
                prop_assert!(route != "/nope");
                prop_assert_eq!(tenant.as_deref(), want);
                let injected: Vec<_> = forwarded.get_all(TENANT_HEADER).iter().collect();
                match want {
                    Some(id) => prop_assert_eq!(injected, [id]),
                    None => prop_assert!(injected.is_empty()),
                }
                prop_assert_eq!(on_service, &if tail.is_empty() { "/".to_owned() } else { tail.clone() });
            }
            (Outcome::Answered(_), Ok(_)) => prop_assert_eq!(route, "/nope", "{:?}", outcome),
            (Outcome::Answered(_), Err(())) => {}
            (Outcome::Forwarded { tenant, .. }, Err(())) => {
                return Err(TestCaseError::fail(format!("forwarded for {tenant:?}")));
            }
        }

        // Whatever the client put in the tenant header, the same outcome.
        let mut without = headers.clone();
        while without.remove(TENANT_HEADER).is_some() {}
        let again = admit(&method, &uri, Version::HTTP_11, &without, from_proxy);
        prop_assert_eq!(again.without_trace(), outcome.without_trace());
    }
}

/// The `gateway_head` fuzz target's committed inputs replay without a fault.
#[test]
fn the_gateway_head_fuzz_corpus_replays() {
    for (name, data) in tansu_shared::testing::fuzz_corpus("gateway_head") {
        eprintln!("{name}");
        tansu_gateway::proxy::fuzzing::head(&data);
    }
}
