//! The tenant picker and the enforcement of the tenant policy at sign-in and token
//! issuance: token and session lifetimes, lockout threshold and duration.

mod browser;
mod common;

use std::time::Duration;

use browser::{Browser, auth_query, redeem};
use common::*;
use reqwest::Method;
use serde_json::json;

const SUITE: &str = "identity login policy";

#[tokio::test]
async fn tenant_picker_for_users_of_several_tenants() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let a = id.create_tenant("pick-a").await;
        let b = id.create_tenant("pick-b").await;
        let c = id.create_tenant("pick-c").await;
        let app = id.tenant_app().await;
        id.create_member(&a, "carol@pick.example", &["User"]).await;
        id.create_member(&b, "carol@pick.example", &["Admin"]).await;
        id.create_member(&c, "dave@pick.example", &["User"]).await;

        for (tenant, role) in [(&a, "User"), (&b, "Admin")] {
            let mut browser = Browser::new();
            let (q, verifier) = auth_query(&app, "openid roles", None);
            let picker = browser
                .login(&id, &q, "carol@pick.example", USER_PASSWORD)
                .await;
            assert_eq!(picker.status, 200, "{}", picker.body);
            assert!(picker.body.contains("Choose a tenant"));
            assert!(picker.body.contains("Shop pick-a") && picker.body.contains("Shop pick-b"));
            assert!(
                !picker.body.contains("Shop pick-c"),
                "only the user's tenants"
            );
            assert!(picker.set_cookie("tansu_session").is_none());
            let done = browser
                .submit(&id, "/login/tenant", &picker, &[("tenant", tenant)])
                .await;
            assert_eq!(done.status, 303, "{}", done.body);
            let tokens = redeem(&id, &app, &done, &verifier).await;
            let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
            assert_eq!(claims["tid"], tenant.as_str());
            assert_eq!(claims["roles"], json!([role]));
            assert_eq!(
                jwt_claims(tokens["id_token"].as_str().unwrap())["tid"],
                tenant.as_str()
            );
        }

        // A tenant the user is not a member of (or no tenant at all) is refused.
        for choice in [c.as_str(), "pick-c", "no-such-tenant"] {
            let mut browser = Browser::new();
            let (q, _) = auth_query(&app, "openid", None);
            let picker = browser
                .login(&id, &q, "carol@pick.example", USER_PASSWORD)
                .await;
            let refused = browser
                .submit(&id, "/login/tenant", &picker, &[("tenant", choice)])
                .await;
            assert_eq!(refused.status, 403, "{choice}");
            assert!(refused.location.is_none());
            assert!(refused.set_cookie("tansu_session").is_none());
        }
        // The picker's form is CSRF-protected and its step token single-use.
        let mut browser = Browser::new();
        let (q, _) = auth_query(&app, "openid", None);
        let picker = browser
            .login(&id, &q, "carol@pick.example", USER_PASSWORD)
            .await;
        let forged = Browser::new()
            .post(
                &id.url("/login/tenant"),
                &[
                    ("csrf", "forged"),
                    ("request", &picker.field("request").unwrap()),
                    ("step", &picker.field("step").unwrap()),
                    ("tenant", &a),
                ],
            )
            .await;
        assert_eq!(forged.status, 403);
        let ok = browser
            .submit(&id, "/login/tenant", &picker, &[("tenant", &a)])
            .await;
        assert_eq!(ok.status, 303);
        let again = browser
            .submit(&id, "/login/tenant", &picker, &[("tenant", &b)])
            .await;
        assert_eq!(again.status, 400, "a step token works once");

        id.stop().await;
        db.cleanup().await;
    }
}

async fn set_policy(id: &Instance, tid: &str, policy: serde_json::Value) {
    id.call_expect(
        Method::PATCH,
        &format!("/admin/tenants/{tid}"),
        &id.admin_token().await,
        Some(json!({ "policy": policy })),
        200,
    )
    .await;
}

#[tokio::test]
async fn tenant_policy_lifetimes_are_enforced() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let plain = id.create_tenant("life-plain").await;
        let short = id.create_tenant("life-short").await;
        let app = id.tenant_app().await;
        id.create_member(&plain, "pat@life.example", &["User"])
            .await;
        id.create_member(&short, "sam@life.example", &["User"])
            .await;
        set_policy(
            &id,
            &short,
            json!({
                "access_token_lifetime_secs": 120,
                "refresh_token_lifetime_secs": 300,
                "session_timeout_secs": 600,
            }),
        )
        .await;
        let scope = "openid offline_access";

        // Without a policy: the service's defaults.
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, scope, None);
        let done = b.login(&id, &q, "pat@life.example", USER_PASSWORD).await;
        assert!(done.set_cookie("tansu_session").unwrap().contains(&format!(
            "Max-Age={}",
            id.state.config.session_lifetime_secs
        )));
        let tokens = redeem(&id, &app, &done, &verifier).await;
        assert_eq!(tokens["expires_in"], 3600);

        // With the policy: access 120 s, refresh family 300 s, session lifetime 600 s.
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, scope, None);
        let done = b.login(&id, &q, "sam@life.example", USER_PASSWORD).await;
        assert!(
            done.set_cookie("tansu_session")
                .unwrap()
                .contains("Max-Age=600")
        );
        let tokens = redeem(&id, &app, &done, &verifier).await;
        assert_eq!(tokens["expires_in"], 120);
        let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            120
        );
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let found = id
            .state
            .store
            .refresh_token(&tansu_identity::crypto::sha256(refresh.as_bytes()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.family.expires_at - found.family.created_at, 300_000);
        // A refreshed token keeps the policy's lifetime.
        let resp = id.refresh(&app, refresh).await;
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["expires_in"], 120, "{v}");

        // A client's own lifetime still applies when it is the tighter one.
        for (client_id, own, expected) in [("tight-app", 60, 60), ("loose-app", 900, 120)] {
            let (status, v) = id
                .call(
                    Method::POST,
                    "/admin/clients",
                    &id.admin_token().await,
                    Some(json!({
                        "client_id": client_id,
                        "name": client_id,
                        "first_party": true,
                        "client_type": "public",
                        "grant_types": ["authorization_code"],
                        "redirect_uris": ["https://app.example/cb"],
                        "scopes": ["openid"],
                        "access_token_lifetime_secs": own,
                    })),
                )
                .await;
            assert_eq!(status, 201, "{v}");
            let tokens = id
                .user_tokens(client_id, "sam@life.example", USER_PASSWORD, "openid", None)
                .await
                .unwrap();
            assert_eq!(tokens["expires_in"], expected, "{client_id}");
        }

        id.stop().await;
        db.cleanup().await;
    }
}

/// Posts the login form from an IP; the status.
async fn attempt(id: &Instance, query: &str, ip: &str, email: &str, password: &str) -> u16 {
    let mut b = Browser::new();
    let page = b.get(&id.url(&format!("/connect/authorize?{query}"))).await;
    let resp = no_redirects()
        .post(id.url("/login"))
        .header("cookie", format!("tansu_csrf={}", b.cookies["tansu_csrf"]))
        .header("x-forwarded-for", ip)
        .form(&[
            ("csrf", page.field("csrf").unwrap().as_str()),
            ("request", &page.field("request").unwrap()),
            ("email", email),
            ("password", password),
        ])
        .send_ok()
        .await;
    resp.status().as_u16()
}

#[tokio::test]
async fn lockout_follows_the_accounts_own_tenants_not_the_request() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| {
            c.login_lockout_threshold = 5;
            c.login_lockout_ms = 1_000;
        })
        .await;
        let strict = id.create_tenant("lock-strict").await;
        let plain = id.create_tenant("lock-plain").await;
        let app = id.tenant_app().await;
        id.create_member(&strict, "sue@lock.example", &["User"])
            .await;
        id.create_member(&plain, "pam@lock.example", &["User"])
            .await;
        set_policy(
            &id,
            &strict,
            json!({"lockout_threshold": 2, "lockout_duration_secs": 1}),
        )
        .await;
        set_policy(
            &id,
            &plain,
            json!({"lockout_threshold": 5, "lockout_duration_secs": 1}),
        )
        .await;
        let (strict_q, _) = auth_query(&app, "openid", Some("lock-strict"));
        let (plain_q, _) = auth_query(&app, "openid", Some("lock-plain"));
        let ip = "198.51.100.20";

        // A strict tenant's member locks after 2 failures (the service's setting would allow
        // 5) — even when the attacker's request names the lax tenant.
        for _ in 0..2 {
            assert_eq!(
                attempt(&id, &plain_q, ip, "sue@lock.example", "wrong password 1").await,
                401
            );
        }
        assert_eq!(
            attempt(&id, &plain_q, ip, "sue@lock.example", USER_PASSWORD).await,
            429
        );
        // An unknown account gets the service's threshold, whatever tenant the request names.
        for _ in 0..2 {
            assert_eq!(
                attempt(
                    &id,
                    &strict_q,
                    ip,
                    "nobody@lock.example",
                    "wrong password 1"
                )
                .await,
                401
            );
        }
        assert_eq!(
            attempt(
                &id,
                &strict_q,
                ip,
                "nobody@lock.example",
                "wrong password 1"
            )
            .await,
            401
        );
        // The lock lasts the strictest duration of the account's tenants and the service (1 s).
        eventually(Duration::from_secs(10), "the lock to expire", || async {
            let status = attempt(&id, &strict_q, ip, "sue@lock.example", USER_PASSWORD).await;
            assert!(status == 303 || status == 429, "{status}");
            (status == 303).then_some(())
        })
        .await;

        // The lax tenant's member keeps the threshold of 5.
        for _ in 0..2 {
            assert_eq!(
                attempt(&id, &plain_q, ip, "pam@lock.example", "wrong password 1").await,
                401
            );
        }
        assert_eq!(
            attempt(&id, &plain_q, ip, "pam@lock.example", USER_PASSWORD).await,
            303
        );

        id.stop().await;
        db.cleanup().await;
    }
}
