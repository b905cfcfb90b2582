//! Mail through a real SMTP server (aiosmtpd, started by the test): reset and verification
//! links arrive, work once and expire; a reset for an unknown address sends nothing and answers
//! the same; with the SMTP server down a message is kept and delivered once it is back; a
//! sign-in from a new browser is told to the owner; reset requests have their own limit. On
//! SQLite and PostgreSQL.

mod common;

use common::account::*;
use common::*;
use reqwest::Method;
use serde_json::json;

fn smtp_available() -> bool {
    SmtpServer::available()
        || tansu_shared::testing::skip_or_fail::<()>(
            "account mail",
            "aiosmtpd is not installed (pip install aiosmtpd)",
        )
        .is_some()
}

async fn shop(inst: &Instance, slug: &str, email: &str) -> String {
    inst.tenant_app().await;
    let tid = inst.create_tenant(slug).await;
    inst.create_member(&tid, email, &["User"]).await;
    tid
}

const NEW_PASSWORD: &str = "another quite long phrase 77";

#[tokio::test]
async fn reset_links_arrive_work_once_and_expire_and_unknown_addresses_get_nothing() {
    if !smtp_available() {
        return;
    }
    for db in backends("account mail").await {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let inst = Instance::start(&db, "", smtp_to(port)).await;
        let tid = shop(&inst, "mail-shop", "amy@shop.test").await;
        let mut before = sign_in_with_refresh(&inst, "amy@shop.test", USER_PASSWORD, &tid).await;

        // The same answer for an unknown address and a known one; only the known one gets mail.
        let mut browser = Browser::new(&inst, None);
        let forgot = "/account/password/forgot?tenant=mail-shop";
        let action = "/account/password/forgot";
        let unknown = browser
            .submit(
                forgot,
                action,
                &[("email", "nobody@shop.test"), ("tenant", "mail-shop")],
            )
            .await;
        let known = browser
            .submit(
                forgot,
                action,
                &[("email", "Amy@Shop.test"), ("tenant", "mail-shop")],
            )
            .await;
        assert_eq!(unknown.0, 200);
        assert_eq!(unknown, known, "the answers differ");
        let mail = nth_mail(smtp.path(), 1).await;
        assert!(
            mail.contains("amy@shop.test") && mail.contains("Shop mail-shop"),
            "{mail}"
        );
        let link = path_of(&link_in(&mail, &inst.issuer));
        assert!(link.starts_with("/account/password/reset?token="), "{link}");
        assert_eq!(mails(smtp.path()).len(), 1, "the unknown address got mail");
        assert_eq!(inst.state.store.outbox_len().await.unwrap(), 0);

        // Opening the link spends nothing; a refused password keeps it; a good one uses it.
        let (status, page) = browser.get(&link).await;
        assert_eq!(status, 200, "{page}");
        let token = hidden_field(&page, "token").unwrap();
        let csrf = hidden_field(&page, "csrf").unwrap();
        let reset = "/account/password/reset";
        let weak = [
            ("token", token.as_str()),
            ("password", "short"),
            ("confirm", "short"),
        ];
        assert_eq!(browser.post(reset, &csrf, &weak).await.0, 400);
        let good = [
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ];
        let (status, page) = browser.post(reset, &csrf, &good).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Your password was changed"), "{page}");
        // Once only.
        let (status, page) = browser.post(reset, &csrf, &good).await;
        assert_eq!(status, 400, "{page}");
        assert_eq!(browser.get(&link).await.0, 400);

        // Every session and refresh family ended; the new password signs in, the old does not.
        assert_eq!(
            refresh(&inst, &mut before).await,
            (400, "invalid_grant".into())
        );
        let mut old_session = Browser::new(&inst, Some(before.session.clone()));
        assert_eq!(old_session.get("/account").await.0, 401);
        assert!(
            inst.user_tokens(
                "tenant-app",
                "amy@shop.test",
                USER_PASSWORD,
                "openid",
                Some(&tid)
            )
            .await
            .is_err()
        );
        sign_in_with_refresh(&inst, "amy@shop.test", NEW_PASSWORD, &tid).await;
        // The owner is told.
        let notice = nth_mail(smtp.path(), 2).await;
        assert!(
            notice.contains("password was changed") || notice.contains("password was\r\n changed"),
            "{notice}"
        );

        // An expired link works no more.
        browser
            .submit(
                forgot,
                action,
                &[("email", "amy@shop.test"), ("tenant", "mail-shop")],
            )
            .await;
        let mail = nth_mail(smtp.path(), 3).await;
        let link = path_of(&link_in(&mail, &inst.issuer));
        assert_eq!(browser.get(&link).await.0, 200);
        raw_exec(
            &inst.state.store,
            "UPDATE account_tokens SET expires_at = 1 WHERE used_at IS NULL",
            &[],
        )
        .await;
        assert_eq!(browser.get(&link).await.0, 400);

        // The stored link is a hash, and the queued message was sealed (nothing in clear).
        let token = link.split("token=").nth(1).unwrap();
        for row in raw_bytes(&inst.state.store, "SELECT token_hash FROM account_tokens").await {
            assert!(!contains_bytes(&row, token.as_bytes()));
        }

        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn verification_links_prove_the_address_once_and_a_tenant_can_require_them() {
    if !smtp_available() {
        return;
    }
    for db in backends("account mail").await {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let inst = Instance::start(&db, "", smtp_to(port)).await;
        let tid = shop(&inst, "verify-shop", "ben@shop.test").await;
        let admin = inst.admin_token().await;
        inst.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{tid}"),
            &admin,
            Some(json!({"policy": {"email_verification_required": true}})),
            200,
        )
        .await;

        // Refused until the address is proven, after the password; a link is sent.
        let refused = inst
            .user_tokens(
                "tenant-app",
                "ben@shop.test",
                USER_PASSWORD,
                "openid",
                Some(&tid),
            )
            .await;
        assert!(refused.is_err(), "an unconfirmed address signed in");
        let mail = nth_mail(smtp.path(), 1).await;
        assert!(mail.contains("ben@shop.test"), "{mail}");
        let link = path_of(&link_in(&mail, &inst.issuer));
        assert!(link.starts_with("/account/email/verify?token="), "{link}");

        let mut browser = Browser::new(&inst, None);
        let (status, page) = browser.get(&link).await;
        assert_eq!(status, 200, "{page}");
        let token = hidden_field(&page, "token").unwrap();
        let csrf = hidden_field(&page, "csrf").unwrap();
        let (status, page) = browser
            .post("/account/email/verify", &csrf, &[("token", &token)])
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Address confirmed"), "{page}");
        let (status, _) = browser
            .post("/account/email/verify", &csrf, &[("token", &token)])
            .await;
        assert_eq!(status, 400, "a verification link worked twice");

        // Now the sign-in goes through; the account page says the address is confirmed.
        let signed = sign_in_with_refresh(&inst, "ben@shop.test", USER_PASSWORD, &tid).await;
        let mut account = Browser::new(&inst, Some(signed.session));
        let (status, page) = account.get("/account").await;
        assert_eq!(status, 200);
        assert!(page.contains("confirmed 20"), "{page}");

        // A new link on request, from the account page (CSRF-protected).
        raw_exec(
            &inst.state.store,
            "UPDATE users SET email_verified_at = NULL",
            &[],
        )
        .await;
        let (status, page) = account
            .submit("/account", "/account/email/verification", &[])
            .await;
        assert_eq!(status, 200, "{page}");
        let mail = nth_mail(smtp.path(), 2).await;
        assert!(link_in(&mail, &inst.issuer).contains("/account/email/verify?token="));
        let (status, _) = account
            .post("/account/email/verification", "forged", &[])
            .await;
        assert_eq!(status, 403);

        // A new address: the link goes there, and the account moves once it is opened.
        let fields = [("email", "ben.new@shop.test"), ("current", USER_PASSWORD)];
        let (status, page) = account.submit("/account", "/account/email", &fields).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("on its way to the new address"), "{page}");
        let mail = nth_mail(smtp.path(), 3).await;
        assert!(mail.contains("To: ben.new@shop.test"), "{mail}");
        let link = path_of(&link_in(&mail, &inst.issuer));
        let (status, page) = account.get(&link).await;
        assert_eq!(status, 200, "{page}");
        let token = hidden_field(&page, "token").unwrap();
        let csrf = hidden_field(&page, "csrf").unwrap();
        assert_eq!(
            account
                .post("/account/email/verify", &csrf, &[("token", &token)])
                .await
                .0,
            200
        );
        let store = &inst.state.store;
        assert!(
            store
                .user_by_email("ben@shop.test")
                .await
                .unwrap()
                .is_none()
        );
        let moved = store
            .user_by_email("ben.new@shop.test")
            .await
            .unwrap()
            .unwrap();
        let proof = store.email_proof(&moved.id).await.unwrap().unwrap();
        assert_eq!(proof.vouched_by, None, "proven by mail");
        assert_eq!(
            account
                .post("/account/email/verify", &csrf, &[("token", &token)])
                .await
                .0,
            400
        );

        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn with_the_smtp_server_down_a_message_is_kept_and_delivered_later() {
    if !smtp_available() {
        return;
    }
    for db in backends("account mail").await {
        let port = free_port();
        let inst = Instance::start(&db, "", smtp_to(port)).await;
        let tid = shop(&inst, "down-shop", "cy@shop.test").await;
        // The tenant's own wording (an admin API for its Owners and Admins).
        let admin = inst.admin_token().await;
        let path = format!("/admin/tenants/{tid}/mail-templates/password_reset");
        let no_link = json!({"subject": "Reset", "body": "no link here"});
        inst.call_expect(Method::PUT, &path, &admin, Some(no_link), 422)
            .await;
        let own = json!({"subject": "A new password for {{product}}", "body": "Here: {{link}}\n"});
        inst.call_expect(Method::PUT, &path, &admin, Some(own), 200)
            .await;
        let listed = inst
            .call_expect(
                Method::GET,
                &format!("/admin/tenants/{tid}/mail-templates"),
                &admin,
                None,
                200,
            )
            .await;
        assert_eq!(listed["items"][0]["custom"], true, "{listed}");

        let mut browser = Browser::new(&inst, None);
        let (status, _) = browser
            .submit(
                "/account/password/forgot?tenant=down-shop",
                "/account/password/forgot",
                &[("email", "cy@shop.test"), ("tenant", "down-shop")],
            )
            .await;
        assert_eq!(status, 200);
        let store = &inst.state.store;
        eventually(
            std::time::Duration::from_secs(20),
            "a failed attempt",
            || async {
                (raw_count(
                    store,
                    "SELECT COUNT(*) FROM mail_outbox WHERE attempts >= 1",
                )
                .await
                    >= 1)
                    .then_some(())
            },
        )
        .await;
        // The queued message is sealed: its link is not in the row in clear.
        for row in raw_bytes(store, "SELECT content_sealed FROM mail_outbox").await {
            assert!(!contains_bytes(&row, b"token="));
        }

        let smtp = SmtpServer::start(port).await;
        let mail = nth_mail(smtp.path(), 1).await;
        assert!(mail.contains("cy@shop.test") && mail.contains("/account/password/reset?token="));
        assert!(
            mail.contains("Subject: A new password for Shop down-shop"),
            "{mail}"
        );
        eventually(
            std::time::Duration::from_secs(10),
            "an empty outbox",
            || async { (store.outbox_len().await.unwrap() == 0).then_some(()) },
        )
        .await;
        // An address no mail server could take is not queued, so it is not retried for ever.
        let content = tansu_identity::mail::Content {
            subject: "s".into(),
            text: "t".into(),
        };
        for bad in ["not an address", "a@b@c", "<>"] {
            inst.state
                .outbox
                .enqueue(None, "password_changed", bad, &content)
                .await
                .unwrap();
        }
        assert_eq!(store.outbox_len().await.unwrap(), 0);

        inst.stop().await;
        db.cleanup().await;
    }
}

/// A sign-in through the login form from a browser with `user_agent`, presenting the device
/// cookie `device` (none: a browser that never signed in here). The device cookie it is given.
async fn sign_in_from(
    inst: &Instance,
    tid: &str,
    email: &str,
    device: Option<&str>,
    user_agent: &str,
) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    let (query, _) = auth_query("tenant-app", "openid", Some(tid));
    let resp = inst.authorize(&http, &query, None).await;
    let csrf_cookie = tansu_shared::testing::http::set_cookie(&resp, "tansu_csrf").unwrap();
    let html = resp.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").unwrap();
    let mut cookie = csrf_cookie;
    if let Some(d) = device {
        cookie.push_str(&format!("; tansu_device={d}"));
    }
    let resp = http
        .post(inst.url("/login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", &query),
            ("email", email),
            ("password", USER_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "{email} signs in");
    let given =
        tansu_shared::testing::http::set_cookie(&resp, "tansu_device").expect("a device cookie");
    let value = given.split_once('=').unwrap().1.to_owned();
    if let Some(d) = device {
        assert_eq!(value, d, "a browser keeps its device cookie");
    }
    value
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

#[tokio::test]
async fn a_sign_in_from_a_new_browser_is_told_to_the_owner_once() {
    if !smtp_available() {
        return;
    }
    for db in backends("account mail").await {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let inst = Instance::start(&db, "", smtp_to(port)).await;
        let tid = shop(&inst, "notice-shop", "dee@shop.test").await;
        let store = &inst.state.store;
        let devices = || async { raw_count(store, "SELECT COUNT(*) FROM known_devices").await };

        // The account's first browser: remembered, nobody told (nothing to compare with).
        let laptop = sign_in_from(&inst, &tid, "dee@shop.test", None, FIREFOX).await;
        eventually(
            std::time::Duration::from_secs(10),
            "the first browser",
            || async { (devices().await == 1).then_some(()) },
        )
        .await;
        // The same browser again: nothing.
        sign_in_from(&inst, &tid, "dee@shop.test", Some(&laptop), FIREFOX).await;
        // Another browser: the owner is told, in the service's words, with the sessions page.
        let phone = sign_in_from(&inst, &tid, "dee@shop.test", None, IPHONE).await;
        assert_ne!(phone, laptop);
        let mail = nth_mail(smtp.path(), 1).await;
        assert!(mail.contains("To: dee@shop.test"), "{mail}");
        assert!(mail.contains("Safari on iOS"), "{mail}");
        assert!(
            mail.contains("Subject: New sign-in to your Shop notice-shop account"),
            "{mail}"
        );
        assert!(
            link_in(&mail, &inst.issuer).ends_with("/account/sessions"),
            "{mail}"
        );
        // Both browsers known now: neither is told again; a third one is, in the tenant's words.
        let admin = inst.admin_token().await;
        let own =
            json!({"subject": "Someone signed in to {{product}}", "body": "{{device}} {{link}}\n"});
        let path = format!("/admin/tenants/{tid}/mail-templates/new_sign_in");
        inst.call_expect(Method::PUT, &path, &admin, Some(own), 200)
            .await;
        sign_in_from(&inst, &tid, "dee@shop.test", Some(&phone), IPHONE).await;
        sign_in_from(&inst, &tid, "dee@shop.test", Some(&laptop), FIREFOX).await;
        sign_in_from(&inst, &tid, "dee@shop.test", None, FIREFOX).await;
        let mail = nth_mail(smtp.path(), 2).await;
        assert!(
            mail.contains("Subject: Someone signed in to Shop notice-shop")
                && mail.contains("Firefox on Linux"),
            "{mail}"
        );
        eventually(
            std::time::Duration::from_secs(10),
            "three browsers",
            || async { (devices().await == 3).then_some(()) },
        )
        .await;
        assert_eq!(
            mails(smtp.path()).len(),
            2,
            "a known browser was told about"
        );
        // Only hashes are stored.
        for row in raw_bytes(store, "SELECT device_hash FROM known_devices").await {
            assert!(
                !contains_bytes(&row, phone.as_bytes()) && !contains_bytes(&row, laptop.as_bytes())
            );
        }

        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn reset_requests_have_their_own_limit_apart_from_failed_sign_ins() {
    for db in backends("account mail").await {
        let inst = Instance::start(&db, "", |c| {
            c.account.link_requests_per_ip = 2;
            c.account.link_ip_lock_secs = 600;
        })
        .await;
        let tid = shop(&inst, "limit-shop", "eve@shop.test").await;
        let store = &inst.state.store;
        let mut browser = Browser::new(&inst, None);
        assert_eq!(ask_reset(&mut browser).await, 200);
        assert_eq!(ask_reset(&mut browser).await, 200);
        assert_eq!(
            ask_reset(&mut browser).await,
            429,
            "the third request in the window"
        );
        // Counted apart: no sign-in failure counter, and a sign-in from the same network works.
        assert_eq!(
            raw_count(store, "SELECT COUNT(*) FROM login_failures").await,
            0
        );
        assert_eq!(
            raw_count(store, "SELECT COUNT(*) FROM request_limits").await,
            1
        );
        sign_in_with_refresh(&inst, "eve@shop.test", USER_PASSWORD, &tid).await;
        // A successful sign-in does not reset it either; the window's end does.
        assert_eq!(ask_reset(&mut browser).await, 429);
        raw_exec(store, "UPDATE request_limits SET window_start = 1", &[]).await;
        assert_eq!(ask_reset(&mut browser).await, 200);

        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_reset_asked_under_a_tenant_the_account_is_not_in_is_the_platforms() {
    if !smtp_available() {
        return;
    }
    for db in backends("account mail").await {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let inst = Instance::start(&db, "", smtp_to(port)).await;
        shop(&inst, "home-shop", "ned@shop.test").await;
        // Another tenant, whose owner words its own reset message.
        let other = inst.create_tenant("lure-shop").await;
        inst.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{other}/mail-templates/password_reset"),
            &inst.admin_token().await,
            Some(json!({"subject": "Lure check", "body": "Confirm: https://lure.example/?u={{link}}"})),
            200,
        )
        .await;

        let mut browser = Browser::new(&inst, None);
        let fields = [("email", "ned@shop.test"), ("tenant", "lure-shop")];
        let page = "/account/password/forgot?tenant=lure-shop";
        let (status, _) = browser
            .submit(page, "/account/password/forgot", &fields)
            .await;
        assert_eq!(status, 200);
        // The link is sent, in the platform's words, not the other tenant's.
        let mail = nth_mail(smtp.path(), 1).await;
        assert!(mail.contains("ned@shop.test"), "{mail}");
        assert!(
            !mail.contains("Lure check")
                && !mail.contains("lure.example")
                && !mail.contains("Shop lure-shop"),
            "{mail}"
        );
        // Its record is the platform's; the other tenant's log learns nothing of the account.
        let store = &inst.state.store;
        let sent = "SELECT COUNT(*) FROM security_events WHERE tenant_id = '' \
                    AND details LIKE '%password.reset_link_sent%'";
        eventually(
            std::time::Duration::from_secs(10),
            "the platform's record",
            || async { (raw_count(store, sent).await == 1).then_some(()) },
        )
        .await;
        let leaked = format!("SELECT COUNT(*) FROM security_events WHERE tenant_id = '{other}'");
        let before = raw_count(store, &leaked).await;
        let link = path_of(&link_in(&mail, &inst.issuer));
        let (status, reset_page) = browser.get(&link).await;
        assert_eq!(status, 200, "{reset_page}");
        let token = hidden_field(&reset_page, "token").unwrap();
        let csrf = hidden_field(&reset_page, "csrf").unwrap();
        let good = [
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ];
        let (status, done) = browser.post("/account/password/reset", &csrf, &good).await;
        assert_eq!(status, 200, "{done}");
        let reset = "SELECT COUNT(*) FROM security_events WHERE tenant_id = '' \
                     AND details LIKE '%\"password.reset\"%'";
        assert_eq!(raw_count(store, reset).await, 1);
        assert_eq!(raw_count(store, &leaked).await, before);
        let details = format!(
            "SELECT COUNT(*) FROM security_events WHERE tenant_id = '{other}' \
             AND details LIKE '%ned@shop.test%'"
        );
        assert_eq!(raw_count(store, &details).await, 0);

        inst.stop().await;
        db.cleanup().await;
    }
}

/// A reset request for an unknown address at `limit-shop`: the answer's status.
async fn ask_reset(b: &mut Browser<'_>) -> u16 {
    let fields = [("email", "nobody@shop.test"), ("tenant", "limit-shop")];
    let page = "/account/password/forgot?tenant=limit-shop";
    b.submit(page, "/account/password/forgot", &fields).await.0
}
