//! TOTP MFA: enrolment of a signed-in user, the second step of the sign-in, replay
//! refusal, single-use recovery codes, lockout counting of wrong codes, the admin reset, the
//! tenant policy `mfa_required` forcing enrolment, and the `amr` claim.

mod browser;
mod common;

use browser::{Browser, Page, auth_query, redeem};
use common::*;
use reqwest::Method;
use serde_json::json;

const SUITE: &str = "identity mfa";

fn amr(tokens: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(jwt_claims(tokens["id_token"].as_str().unwrap())["amr"].clone()).unwrap()
}

/// The events of a type for a tenant, through the admin API.
async fn events_of(id: &Instance, tid: &str, kind: &str) -> Vec<serde_json::Value> {
    let (status, v) = id
        .get_as(
            &format!("/admin/security-events?tenant={tid}&type={kind}"),
            &id.admin_token().await,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn enrol_verify_replay_recovery_and_reset() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let t = id.create_tenant("mfa-shop").await;
        let other = id.create_tenant("mfa-other").await;
        let alice = id.create_member(&t, "alice@mfa.example", &["User"]).await;
        id.create_member(&other, "olga@mfa.example", &["Admin"])
            .await;
        let app = id.tenant_app().await;
        let scope = "openid roles";
        let email = "alice@mfa.example";

        // Signed in (password only): amr is pwd.
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, scope, Some("mfa-shop"));
        let done = b.login(&id, &q, email, USER_PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(amr(&redeem(&id, &app, &done, &verifier).await), ["pwd"]);

        // Enrolment: a server-made secret, the otpauth URI and a QR code; a wrong first code
        // is refused, the right one turns MFA on and shows 10 recovery codes once.
        assert_eq!(
            Browser::new().get(&id.url("/account/mfa")).await.status,
            401
        );
        let enrol = b.get(&id.url("/account/mfa")).await;
        assert_eq!(enrol.status, 200, "{}", enrol.body);
        assert!(
            enrol
                .body
                .contains("otpauth://totp/Tansu:alice%40mfa.example?secret=")
        );
        assert!(enrol.body.contains("<svg"), "a QR code is shown");
        let secret = enrol.totp_secret().unwrap();
        // The secret is stored sealed: the row does not hold the key's bytes.
        let row = id.state.store.totp(&alice).await.unwrap().unwrap();
        let raw = totp_rs::Secret::try_from_base32(&secret)
            .unwrap()
            .as_bytes()
            .to_vec();
        assert!(
            !row.secret_sealed
                .windows(raw.len())
                .any(|w| w == raw.as_slice())
        );
        assert!(row.confirmed_at.is_none());
        let csrf = enrol.field("csrf").unwrap();
        let wrong = b
            .post(
                &id.url("/account/mfa"),
                &[("csrf", &csrf), ("code", &wrong_totp_code(&secret))],
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert_eq!(
            wrong.totp_secret().as_deref(),
            Some(secret.as_str()),
            "same secret on retry"
        );
        let no_csrf = b
            .post(
                &id.url("/account/mfa"),
                &[("csrf", "x"), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(no_csrf.status, 403);
        let confirmed = b
            .post(
                &id.url("/account/mfa"),
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.body);
        let recovery = confirmed.recovery_codes();
        assert_eq!(recovery.len(), 10, "{}", confirmed.body);
        assert_eq!(
            events_of(&id, &t, "mfa.enrol").await.len(),
            2,
            "a failure and a success"
        );
        // Enrolled: the page no longer shows a secret.
        let again = b.get(&id.url("/account/mfa")).await;
        assert!(again.totp_secret().is_none());
        assert!(again.body.contains("10 recovery codes left"));

        // Sign-in now needs the code after the password; no session before it.
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, scope, Some("mfa-shop"));
        let step = b.login(&id, &q, email, USER_PASSWORD).await;
        assert_eq!(step.status, 200, "{}", step.body);
        assert!(step.body.contains("Verification code"));
        assert!(step.set_cookie("tansu_session").is_none());
        // The step form is CSRF-protected.
        let mut stranger = Browser::new();
        let forged = stranger
            .post(
                &id.url("/login/mfa"),
                &[
                    ("csrf", "forged"),
                    ("request", &step.field("request").unwrap()),
                    ("step", &step.field("step").unwrap()),
                    ("code", &totp_code_at(&secret, 1)),
                ],
            )
            .await;
        assert_eq!(forged.status, 403);
        let wrong = b
            .submit(
                &id,
                "/login/mfa",
                &step,
                &[("code", &wrong_totp_code(&secret))],
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.body.contains("Invalid code."));
        // The old step token is spent; the re-shown form has a new one.
        assert_ne!(wrong.field("step"), step.field("step"));
        let stale = b
            .submit(
                &id,
                "/login/mfa",
                &step,
                &[("code", &totp_code_at(&secret, 1))],
            )
            .await;
        assert_eq!(stale.status, 400);
        let code = totp_code_at(&secret, 1);
        let done = b
            .submit(&id, "/login/mfa", &wrong, &[("code", &code)])
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert!(done.set_cookie("tansu_session").is_some());
        let tokens = redeem(&id, &app, &done, &verifier).await;
        let methods = amr(&tokens);
        assert!(
            methods.contains(&"otp".to_owned()) && methods.contains(&"mfa".to_owned()),
            "{methods:?}"
        );
        assert_eq!(
            jwt_claims(tokens["access_token"].as_str().unwrap())["tid"],
            t.as_str()
        );

        // The same code again (a replay within its window) is refused.
        let mut b = Browser::new();
        let (q, _) = auth_query(&app, scope, Some("mfa-shop"));
        let step = b.login(&id, &q, email, USER_PASSWORD).await;
        let replay = b.submit(&id, "/login/mfa", &step, &[("code", &code)]).await;
        assert_eq!(replay.status, 401, "a replayed code is refused");

        // A recovery code works once.
        let (q, verifier) = auth_query(&app, scope, Some("mfa-shop"));
        let step = b.login(&id, &q, email, USER_PASSWORD).await;
        let done = b
            .submit(
                &id,
                "/login/mfa",
                &step,
                &[("code", &recovery[0].to_lowercase())],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert!(amr(&redeem(&id, &app, &done, &verifier).await).contains(&"mfa".to_owned()));
        let mut b = Browser::new();
        let (q, _) = auth_query(&app, scope, Some("mfa-shop"));
        let step = b.login(&id, &q, email, USER_PASSWORD).await;
        let reused = b
            .submit(&id, "/login/mfa", &step, &[("code", &recovery[0])])
            .await;
        assert_eq!(reused.status, 401, "a recovery code works once");
        assert_eq!(events_of(&id, &t, "mfa.recovery_code").await.len(), 1);
        let verify_events = events_of(&id, &t, "mfa.verify").await;
        assert!(verify_events.iter().any(|e| e["outcome"] == "success"));
        assert!(
            verify_events
                .iter()
                .filter(|e| e["outcome"] == "failure")
                .count()
                >= 3
        );

        // Wrong codes count like wrong passwords: the tenant's lockout threshold locks.
        let (status, v) = id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{t}"),
                &id.admin_token().await,
                Some(json!({"policy": {"lockout_threshold": 2, "lockout_duration_secs": 600}})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let mut page: Page = reused;
        for _ in 0..3 {
            page = b
                .submit(
                    &id,
                    "/login/mfa",
                    &page,
                    &[("code", &wrong_totp_code(&secret))],
                )
                .await;
            if page.status == 429 {
                break;
            }
            assert_eq!(page.status, 401);
        }
        assert_eq!(page.status, 429, "{}", page.body);
        let locked = b
            .submit(
                &id,
                "/login/mfa",
                &page,
                &[("code", &totp_code_at(&secret, 1))],
            )
            .await;
        assert_eq!(locked.status, 429, "the right code is refused while locked");
        id.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{t}"),
            &id.admin_token().await,
            Some(json!({"policy": {}})),
            200,
        )
        .await;

        // Admin reset: a tenant admin of another tenant gets 404; the platform admin resets.
        let olga = id
            .user_tokens(
                &app,
                "olga@mfa.example",
                USER_PASSWORD,
                "openid admin.tenant",
                None,
            )
            .await
            .unwrap();
        let olga = olga["access_token"].as_str().unwrap();
        let path = format!("/admin/tenants/{t}/users/{alice}/mfa/reset");
        assert_eq!(id.call(Method::POST, &path, olga, None).await.0, 404);
        id.call_expect(
            Method::POST,
            &format!("/admin/tenants/{other}/users/{alice}/mfa/reset"),
            olga,
            None,
            404,
        )
        .await;
        assert!(id.state.store.totp(&alice).await.unwrap().is_some());
        let (status, v) = id
            .call(Method::POST, &path, &id.admin_token().await, None)
            .await;
        assert_eq!(status, 204, "{v}");
        assert!(id.state.store.totp(&alice).await.unwrap().is_none());
        assert_eq!(events_of(&id, &t, "mfa.reset").await.len(), 1);
        // After the reset the password alone signs in (the lock was on another IP key: the
        // browser's; a fresh sign-in from another address).
        let mut b = Browser::new();
        let (q, _) = auth_query(&app, scope, Some("mfa-shop"));
        let page = b.get(&id.url(&format!("/connect/authorize?{q}"))).await;
        let csrf = page.field("csrf").unwrap();
        let request = page.field("request").unwrap();
        let resp = no_redirects()
            .post(id.url("/login"))
            .header("cookie", format!("tansu_csrf={}", b.cookies["tansu_csrf"]))
            .header("x-forwarded-for", "192.0.2.99")
            .form(&[
                ("csrf", csrf.as_str()),
                ("request", &request),
                ("email", email),
                ("password", USER_PASSWORD),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 303);

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn tenant_policy_forces_enrolment_at_next_sign_in() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let t = id.create_tenant("strict-shop").await;
        let bob = id.create_member(&t, "bob@strict.example", &["User"]).await;
        let app = id.tenant_app().await;
        let (status, v) = id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{t}"),
                &id.admin_token().await,
                Some(json!({"policy": {"mfa_required": true}})),
            )
            .await;
        assert_eq!(status, 200, "{v}");

        // Without a tenant hint too (the only membership).
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, "openid", None);
        let enrol = b.login(&id, &q, "bob@strict.example", USER_PASSWORD).await;
        assert_eq!(enrol.status, 200, "{}", enrol.body);
        assert!(enrol.body.contains("Set up two-step verification"));
        assert!(enrol.body.contains("otpauth://totp/"));
        assert!(
            enrol.set_cookie("tansu_session").is_none(),
            "no session before the enrolment"
        );
        let secret = enrol.totp_secret().unwrap();
        let wrong = b
            .submit(
                &id,
                "/login/enrol",
                &enrol,
                &[("code", &wrong_totp_code(&secret))],
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert_eq!(wrong.totp_secret().as_deref(), Some(secret.as_str()));
        let done = b
            .submit(
                &id,
                "/login/enrol",
                &wrong,
                &[("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert_eq!(done.recovery_codes().len(), 10);
        assert!(done.set_cookie("tansu_session").is_some());
        let next = done
            .element("<a class=\"continue\" href=\"", "\"")
            .unwrap()
            .replace("&amp;", "&");
        let redirected = b.get(&next).await;
        assert_eq!(redirected.status, 303, "{}", redirected.body);
        let tokens = redeem(&id, &app, &redirected, &verifier).await;
        assert!(amr(&tokens).contains(&"otp".to_owned()));
        assert!(
            id.state
                .store
                .totp(&bob)
                .await
                .unwrap()
                .unwrap()
                .confirmed_at
                .is_some()
        );

        // The next sign-in asks for the code, not for an enrolment.
        let mut b = Browser::new();
        let (q, _) = auth_query(&app, "openid", None);
        let step = b.login(&id, &q, "bob@strict.example", USER_PASSWORD).await;
        assert_eq!(step.status, 200);
        assert!(step.body.contains("Verification code"));

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn second_factor_comes_before_the_tenant_picker() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let a = id.create_tenant("mfa-pick-a").await;
        let b = id.create_tenant("mfa-pick-b").await;
        id.create_member(&a, "cora@pick.example", &["User"]).await;
        id.create_member(&b, "cora@pick.example", &["User"]).await;
        let app = id.tenant_app().await;

        // Signed in to A (picker), Cora enrols.
        let mut browser = Browser::new();
        let (q, _) = auth_query(&app, "openid", None);
        let picker = browser
            .login(&id, &q, "cora@pick.example", USER_PASSWORD)
            .await;
        assert!(picker.body.contains("Choose a tenant"), "{}", picker.body);
        let done = browser
            .submit(&id, "/login/tenant", &picker, &[("tenant", &a)])
            .await;
        assert_eq!(done.status, 303);
        let enrol = browser.get(&id.url("/account/mfa")).await;
        let secret = enrol.totp_secret().unwrap();
        let csrf = enrol.field("csrf").unwrap();
        let confirmed = browser
            .post(
                &id.url("/account/mfa"),
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(confirmed.status, 200);

        // Now the code comes first; the picker cannot be used before it.
        let mut browser = Browser::new();
        let (q, verifier) = auth_query(&app, "openid", None);
        let step = browser
            .login(&id, &q, "cora@pick.example", USER_PASSWORD)
            .await;
        assert!(step.body.contains("Verification code"), "{}", step.body);
        assert!(!step.body.contains("Shop mfa-pick-b"));
        let early = browser
            .submit(&id, "/login/tenant", &step, &[("tenant", &b)])
            .await;
        assert_eq!(
            early.status, 400,
            "no tenant choice before the second factor"
        );
        let step = browser
            .login(&id, &q, "cora@pick.example", USER_PASSWORD)
            .await;
        let picker = browser
            .submit(
                &id,
                "/login/mfa",
                &step,
                &[("code", &totp_code_at(&secret, 1))],
            )
            .await;
        assert_eq!(picker.status, 200, "{}", picker.body);
        assert!(picker.body.contains("Choose a tenant"));
        let done = browser
            .submit(&id, "/login/tenant", &picker, &[("tenant", &b)])
            .await;
        let tokens = redeem(&id, &app, &done, &verifier).await;
        assert_eq!(
            jwt_claims(tokens["id_token"].as_str().unwrap())["tid"],
            b.as_str()
        );
        assert!(amr(&tokens).contains(&"otp".to_owned()));

        id.stop().await;
        db.cleanup().await;
    }
}
