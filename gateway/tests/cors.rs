//! Cross-origin requests and host-root aliases at the gateway: preflights answered per path and
//! tenant (never reaching the service), refused origins refused before the service, the
//! services' own `Access-Control-*` headers replaced by the gateway's (except where a rule hands
//! the decision to the service), and the discovery documents at the host root.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Request;
use axum::response::IntoResponse;
use common::*;
use reqwest::Method;
use tansu_gateway::TenantEntry;
use tansu_shared::testing::TestServer;
use tansu_shared::testing::http::SendOk;

const APP: &str = "https://app.example";
const EVIL: &str = "https://evil.example";

/// A service that answers every request with its path and query and a permissive CORS header of
/// its own (which the gateway must not let through), counting what reaches it (health probes
/// aside).
async fn service(seen: Arc<AtomicUsize>) -> TestServer {
    TestServer::start(axum::Router::new().fallback(move |req: Request| {
        let seen = seen.clone();
        async move {
            if !req.uri().path().starts_with("/health") {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            (
                [
                    ("access-control-allow-origin", "*"),
                    ("access-control-allow-credentials", "true"),
                    ("etag", "\"1\""),
                ],
                format!(
                    "{} {}?{}",
                    req.method(),
                    req.uri().path(),
                    req.uri().query().unwrap_or("")
                ),
            )
                .into_response()
        }
    }))
    .await
}

struct Fixture {
    gw: Gateway,
    seen: Arc<AtomicUsize>,
    _upstream: TestServer,
}

async fn fixture() -> Fixture {
    let seen = Arc::new(AtomicUsize::new(0));
    let upstream = service(seen.clone()).await;
    let mut c = config(vec![
        route("/db", &[&upstream]),
        route("/identity", &[&upstream]),
    ]);
    let t = |slug: &str, origins: &[&str]| TenantEntry {
        slug: slug.into(),
        id: format!("id-{slug}"),
        suspended: false,
        allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
    };
    c.tenants = Some(vec![t("acme", &[APP]), t("globex", &[])]);
    Fixture {
        gw: Gateway::start(c).await,
        seen,
        _upstream: upstream,
    }
}

fn header<'r>(resp: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn preflights_are_answered_per_path_and_tenant() {
    let f = fixture().await;
    let client = f.gw.client();
    let preflight = |path: &str, origin: &str, method: &str, headers: &str| {
        let mut req = client
            .request(Method::OPTIONS, f.gw.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            req = req.header("access-control-request-headers", headers);
        }
        req.send_ok()
    };

    let ok = preflight(
        "/t/acme/db/api/collections",
        APP,
        "PUT",
        "Authorization, Content-Type",
    )
    .await;
    assert_eq!(ok.status(), 204);
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(APP));
    assert!(
        header(&ok, "access-control-allow-methods")
            .unwrap()
            .contains("PUT")
    );
    assert!(
        header(&ok, "access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
    assert!(header(&ok, "vary").unwrap().contains("Origin"));
    assert_eq!(header(&ok, "access-control-allow-credentials"), None);

    for (what, path, origin, method, headers) in [
        (
            "an origin the tenant does not allow",
            "/t/acme/db/x",
            EVIL,
            "GET",
            "",
        ),
        (
            "a tenant that allows none",
            "/t/globex/db/x",
            APP,
            "GET",
            "",
        ),
        ("no tenant named", "/db/x", APP, "GET", ""),
        ("a method not allowed", "/t/acme/db/x", APP, "TRACE", ""),
        (
            "a header not allowed",
            "/t/acme/db/x",
            APP,
            "GET",
            "x-secret",
        ),
        (
            "a path under no rule",
            "/identity/admin/clients",
            APP,
            "GET",
            "",
        ),
        ("the null origin", "/t/acme/db/x", "null", "GET", ""),
    ] {
        let resp = preflight(path, origin, method, headers).await;
        assert_eq!(resp.status(), 403, "{what}");
        assert_eq!(header(&resp, "access-control-allow-origin"), None, "{what}");
        let p: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(p["type"], "urn:tansu:problem:cors-refused", "{what}");
    }
    // An unknown tenant is unknown, preflight or not.
    assert_eq!(
        preflight("/t/nope/db/x", APP, "GET", "").await.status(),
        404
    );

    // Public documents: every origin, no credentials. The token endpoint: the service decides.
    let docs = preflight("/identity/.well-known/jwks", EVIL, "GET", "").await;
    assert_eq!(docs.status(), 204);
    assert_eq!(header(&docs, "access-control-allow-origin"), Some("*"));
    let token = preflight("/identity/connect/token", EVIL, "POST", "content-type").await;
    assert_eq!(token.status(), 204);
    assert_eq!(header(&token, "access-control-allow-origin"), Some(EVIL));

    assert_eq!(
        f.seen.load(Ordering::SeqCst),
        0,
        "no preflight reached the service"
    );
    f.gw.stop().await;
}

#[tokio::test]
async fn cross_origin_answers_carry_the_gateways_headers_only() {
    let f = fixture().await;
    let client = f.gw.client();
    let get = |path: &str, origin: Option<&str>| {
        let mut req = client.get(f.gw.url(path));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send_ok()
    };

    // An allowed origin reads the answer (tenant by path, or by the token's tid).
    let ok = get("/t/acme/db/x", Some(APP)).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&ok, "access-control-allow-credentials"), None);
    assert!(
        header(&ok, "access-control-expose-headers")
            .unwrap()
            .contains("etag")
    );
    assert_eq!(header(&ok, "vary"), Some("Origin"));
    let by_token = client
        .get(f.gw.url("/db/x"))
        .header("origin", APP)
        .bearer_auth(token_with_tid("id-acme"))
        .send_ok()
        .await;
    assert_eq!(by_token.status(), 200);
    assert_eq!(header(&by_token, "access-control-allow-origin"), Some(APP));

    // Not allowed: refused before the service sees it.
    let before = f.seen.load(Ordering::SeqCst);
    for (path, origin) in [
        ("/t/acme/db/x", EVIL),
        ("/t/globex/db/x", APP),
        ("/db/x", APP),
    ] {
        let resp = get(path, Some(origin)).await;
        assert_eq!(resp.status(), 403, "{path} from {origin}");
        assert_eq!(header(&resp, "access-control-allow-origin"), None);
    }
    assert_eq!(
        f.seen.load(Ordering::SeqCst),
        before,
        "refused before the service"
    );

    // Same origin, or no Origin: no CORS headers at all, the service's removed.
    let own = f.gw.url("").trim_end_matches('/').to_owned();
    for origin in [Some(own.as_str()), None] {
        let resp = get("/t/acme/db/x", origin).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "access-control-allow-origin"), None);
        assert_eq!(header(&resp, "access-control-allow-credentials"), None);
    }
    let unruled = get("/identity/admin/clients", Some(APP)).await;
    assert_eq!(
        unruled.status(),
        200,
        "forwarded: the browser keeps it from the page"
    );
    assert_eq!(header(&unruled, "access-control-allow-origin"), None);

    // Public documents for everyone; the token endpoint's answer is the service's.
    let docs = get("/identity/.well-known/openid-configuration", Some(EVIL)).await;
    assert_eq!(header(&docs, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&docs, "access-control-allow-credentials"), None);
    let token = client
        .post(f.gw.url("/identity/connect/token"))
        .header("origin", APP)
        .send_ok()
        .await;
    assert_eq!(header(&token, "access-control-allow-origin"), Some("*"));
    f.gw.stop().await;
}

#[tokio::test]
async fn discovery_documents_answer_at_the_host_root() {
    let f = fixture().await;
    let client = f.gw.client();
    for (path, seen) in [
        (
            "/.well-known/oauth-authorization-server/identity",
            "GET /.well-known/oauth-authorization-server?",
        ),
        (
            "/.well-known/oauth-authorization-server/identity/",
            "GET /.well-known/oauth-authorization-server?",
        ),
        (
            "/.well-known/openid-configuration/identity",
            "GET /.well-known/openid-configuration?",
        ),
        (
            "/.well-known/webfinger?resource=acct%3Aa%40b&rel=x",
            "GET /.well-known/webfinger?resource=acct%3Aa%40b&rel=x",
        ),
    ] {
        let resp = client.get(f.gw.url(path)).send_ok().await;
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.text().await.unwrap(), seen, "{path}");
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/identity/x",
        "/.well-known/oauth-authorization-server/db",
    ] {
        let resp = client.get(f.gw.url(path)).send_ok().await;
        assert_eq!(resp.status(), 404, "{path}");
    }
    f.gw.stop().await;
}
