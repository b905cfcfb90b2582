//! Account protection: the same answer for unknown accounts and wrong passwords,
//! a temporary lock per (account, client IP) that expires as configured, and a per-IP limit —
//! an attacker hammering an account from one IP does not lock its owner out elsewhere.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;

const SUITE: &str = "identity lockout";

struct Form {
    csrf_cookie: String,
    csrf: String,
    request: String,
}

async fn form(id: &Instance, client: &str) -> Form {
    let (_, challenge) = pkce();
    let query = format!(
        "response_type=code&client_id={client}&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256",
        form_encode("https://app.example/cb")
    );
    let resp = no_redirects()
        .get(id.url(&format!("/connect/authorize?{query}")))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 200);
    let csrf_cookie = set_cookie(&resp, "tansu_csrf").unwrap();
    let html = resp.text().await.unwrap();
    Form {
        csrf_cookie,
        csrf: hidden_field(&html, "csrf").unwrap(),
        request: hidden_field(&html, "request").unwrap(),
    }
}

/// Posts the login form from `ip`; (status, body without the per-page CSRF value).
async fn attempt(id: &Instance, f: &Form, ip: &str, email: &str, password: &str) -> (u16, String) {
    let resp = no_redirects()
        .post(id.url("/login"))
        .header("cookie", &f.csrf_cookie)
        .header("x-forwarded-for", format!("203.0.113.200, {ip}"))
        .form(&[
            ("csrf", f.csrf.as_str()),
            ("request", &f.request),
            ("email", email),
            ("password", password),
        ])
        .send_ok()
        .await;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    let body = match hidden_field(&body, "csrf") {
        Some(c) => body.replace(&c, "CSRF"),
        None => body,
    };
    (status, body)
}

#[tokio::test]
async fn lockout_per_account_and_ip_without_enumeration() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| {
            c.login_lockout_threshold = 3;
            c.login_ip_lockout_threshold = 8;
            c.login_lockout_ms = 500;
            c.login_failure_delay_ms = 1;
        })
        .await;
        let t = id.create_tenant("locks").await;
        // The account's tenant as lax as the service, so the service's lock is the strictest.
        id.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{t}"),
            &id.admin_token().await,
            Some(
                serde_json::json!({"policy": {"lockout_threshold": 3, "lockout_duration_secs": 1}}),
            ),
            200,
        )
        .await;
        id.create_member(&t, "victim@l.example", &["User"]).await;
        let app = id.tenant_app().await;
        let f = form(&id, &app).await;
        let attacker = "198.51.100.7";

        // Unknown account and wrong password: the same status and body, every time.
        for _ in 0..2 {
            let wrong = attempt(&id, &f, attacker, "victim@l.example", "wrong password 123").await;
            let unknown = attempt(&id, &f, attacker, "ghost@l.example", "wrong password 123").await;
            assert_eq!(wrong.0, 401);
            assert_eq!(wrong, unknown);
        }
        // The third failure locks the pair — for the known and the unknown account alike.
        let wrong = attempt(&id, &f, attacker, "victim@l.example", "wrong password 123").await;
        let unknown = attempt(&id, &f, attacker, "ghost@l.example", "wrong password 123").await;
        assert_eq!(wrong, unknown);
        let locked = attempt(&id, &f, attacker, "victim@l.example", USER_PASSWORD).await;
        let locked_ghost = attempt(&id, &f, attacker, "ghost@l.example", USER_PASSWORD).await;
        assert_eq!(locked.0, 429, "the right password is refused while locked");
        assert_eq!(locked, locked_ghost);

        // The owner, from another IP, is not locked out.
        let (status, _) = attempt(&id, &f, "192.0.2.10", "victim@l.example", USER_PASSWORD).await;
        assert_eq!(status, 303);

        // The lock expires as configured (bounded poll).
        eventually(Duration::from_secs(10), "the lock to expire", || async {
            let (status, _) = attempt(&id, &f, attacker, "victim@l.example", USER_PASSWORD).await;
            assert!(status == 303 || status == 429, "{status}");
            (status == 303).then_some(())
        })
        .await;

        // Per-IP limit: spraying many accounts from one IP locks that IP only.
        let sprayer = "198.51.100.99";
        for i in 0..8 {
            let (status, _) = attempt(
                &id,
                &f,
                sprayer,
                &format!("user{i}@l.example"),
                "guess guess guess",
            )
            .await;
            assert_eq!(status, 401);
        }
        let (status, _) = attempt(&id, &f, sprayer, "victim@l.example", USER_PASSWORD).await;
        assert_eq!(status, 429);
        let (status, _) = attempt(&id, &f, "192.0.2.10", "victim@l.example", USER_PASSWORD).await;
        assert_eq!(status, 303);

        id.stop().await;
        db.cleanup().await;
    }
}
