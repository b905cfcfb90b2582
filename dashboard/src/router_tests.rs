//! The router against an unreachable identity: who gets what before identity is even asked
//! (sign-in redirects, no access, CSRF refusal, other tenants, platform pages).

use std::time::Duration;

use tansu_shared::testing::TestServer;

use crate::session::{LOGIN_COOKIE, SESSION_COOKIE, Session};
use crate::{AppState, Config};

fn state() -> AppState {
    AppState::new(Config {
        // Nothing listens on port 1: identity is unreachable.
        issuer: "http://127.0.0.1:1/identity/".into(),
        health_url: "http://127.0.0.1:1/health".into(),
        public_url: "https://gw.test/dashboard/".into(),
        ..Config::default()
    })
    .unwrap()
}

fn session(roles: &[&str]) -> Session {
    Session {
        subject: "u1".into(),
        email: "user@tenant.test".into(),
        name: "User".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        tenant: Some("t1".into()),
        access_token: "at".into(),
        id_token: "idt".into(),
        csrf: "csrf-token".into(),
        expires: crate::session::unix_now() + 600,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn users_without_an_admin_role_get_no_access() {
    let state = state();
    let id = state.sessions.insert(session(&["User"])).await.unwrap();
    let server = TestServer::start(crate::router(state)).await;
    let http = client();
    let cookie = format!("{SESSION_COOKIE}={id}");
    for path in [
        "/",
        "/keys",
        "/clients",
        "/tenants",
        "/admin/security-events",
    ] {
        let r = http
            .get(server.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("No access"), "{path}: {body}");
        assert!(body.contains("https://gw.test/dashboard/logout"));
    }
    // A valid CSRF token does not make a non-admin's action succeed.
    for action in ["/keys/rotate", "/clients", "/clients/x/secret"] {
        let r = http
            .post(server.url(action))
            .header("cookie", &cookie)
            .form(&[("csrf", "csrf-token"), ("confirm", "yes"), ("name", "n")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{action}");
    }
    server.stop().await;
}

#[tokio::test]
async fn signed_out_pages_redirect_and_hostile_input_is_answered_cleanly() {
    let state = state();
    let server = TestServer::start(crate::router(state)).await;
    let http = client();
    let r = http.get(server.url("/clients")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "https://gw.test/dashboard/login?return_to=%2Fclients"
    );
    // Callback without the browser-bound state, with errors, or garbage: 400, never 500.
    for q in [
        "",
        "?code=x&state=y",
        "?error=access_denied",
        "?error=%00%FF",
        "?code=x&state=y&iss=http://evil",
    ] {
        let r = http
            .get(server.url(&format!("/callback{q}")))
            .header("cookie", format!("{LOGIN_COOKIE}=other"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "callback{q}");
    }
    // Identity unreachable: a clear 502 page, no panic.
    let r = http.get(server.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    // Forms: no session, malformed bodies, oversized tokens: 403.
    for body in ["", "csrf", "%%%", "csrf=csrf-token"] {
        let r = http
            .post(server.url("/logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{body:?}");
    }
    server.stop().await;
}

/// A tenant admin's session of tenant `t1`, against an unreachable identity: everything
/// about another tenant is refused before identity is even asked.
#[tokio::test]
async fn tenant_admins_never_reach_other_tenants() {
    let state = state();
    let id = state
        .sessions
        .insert(Session {
            email: "owner@t1.test".into(),
            name: "Owner".into(),
            ..session(&["Owner"])
        })
        .await
        .unwrap();
    let server = TestServer::start(crate::router(state)).await;
    let http = client();
    let cookie = format!("{SESSION_COOKIE}={id}");
    for path in [
        "/users?tenant=t2",
        "/admin/providers?tenant=t2",
        "/admin/providers/p?tenant=t2",
        "/admin/security-events?tenant=t2",
        "/admin/security-events?tenant=platform",
        "/admin/security-events/export.csv?tenant=t2",
        "/settings?tenant=t2",
        "/secrets?tenant=t2",
        "/secrets/x/revoke?tenant=t2",
        "/users/u/mfa?tenant=t2",
    ] {
        let r = http
            .get(server.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    for path in [
        "/tenants",
        "/keys",
        "/clients",
        "/tenants/t2/status?to=suspend",
    ] {
        let r = http
            .get(server.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    for action in [
        "/users",
        "/users/u/status",
        "/users/u/password",
        "/users/u/roles",
        "/users/u/mfa",
        "/admin/providers",
        "/admin/providers/p",
        "/admin/providers/p/sign-in",
        "/admin/providers/p/test",
        "/admin/providers/p/status",
        "/admin/providers/p/delete",
        "/settings",
        "/secrets",
        "/secrets/x/revoke",
    ] {
        let r = http
            .post(server.url(action))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", "csrf-token"),
                ("tenant", "t2"),
                ("confirm", "yes"),
                ("to", "disable"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "POST {action}");
    }
    let r = http
        .post(server.url("/tenants"))
        .header("cookie", &cookie)
        .form(&[("csrf", "csrf-token"), ("slug", "x"), ("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    server.stop().await;
}

#[test]
fn every_route_is_in_the_table() {
    let paths = crate::routes().paths().to_vec();
    assert!(paths.len() > 30, "{paths:?}");
    let mut unique = paths.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), paths.len(), "a path routed twice: {paths:?}");
}
