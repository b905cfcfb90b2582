//! The self-service account under the issuer, through its pages and the token endpoint: a new
//! password needs the current one and ends every other session and refresh family (this
//! browser stays signed in); sessions and apps are listed with a sign-out / revoke per row;
//! "export my data" and "delete my account" (per tenant policy). Mail goes to the dev
//! transport (`.eml` files under the data dir). On SQLite and PostgreSQL.

mod common;

use common::account::*;
use common::*;
use reqwest::Method;
use serde_json::json;

const NEW_PASSWORD: &str = "another quite long phrase 77";

#[tokio::test]
async fn a_new_password_needs_the_current_one_and_ends_every_other_session_and_family() {
    for db in backends("account pages").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        inst.tenant_app().await;
        let tid = inst.create_tenant("pages-shop").await;
        inst.create_member(&tid, "dee@shop.test", &["User"]).await;
        let mut here = sign_in_with_refresh(&inst, "dee@shop.test", USER_PASSWORD, &tid).await;
        let mut elsewhere = sign_in_with_refresh(&inst, "dee@shop.test", USER_PASSWORD, &tid).await;

        let mut browser = Browser::new(&inst, Some(here.session.clone()));
        let page = "/account/password";
        let wrong = [
            ("current", "not it at all"),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ];
        let (status, html) = browser.submit(page, page, &wrong).await;
        assert_eq!(status, 401, "{html}");
        // A forged form is refused before anything is read.
        let right = [
            ("current", USER_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ];
        assert_eq!(browser.post(page, "forged", &right).await.0, 403);
        assert_eq!(
            refresh(&inst, &mut elsewhere).await.0,
            200,
            "nothing changed yet"
        );

        let (status, html) = browser.submit(page, page, &right).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("Every other session was signed out"),
            "{html}"
        );

        // Through the token endpoint: both families are revoked (this browser's too).
        assert_eq!(
            refresh(&inst, &mut here).await,
            (400, "invalid_grant".into())
        );
        assert_eq!(
            refresh(&inst, &mut elsewhere).await,
            (400, "invalid_grant".into())
        );
        // The other browser is signed out; this one is not.
        assert_eq!(
            Browser::new(&inst, Some(elsewhere.session))
                .get("/account")
                .await
                .0,
            401
        );
        assert_eq!(browser.get("/account").await.0, 200);
        // The new password signs in; the old one does not.
        assert!(
            inst.user_tokens(
                "tenant-app",
                "dee@shop.test",
                USER_PASSWORD,
                "openid",
                Some(&tid)
            )
            .await
            .is_err()
        );
        sign_in_with_refresh(&inst, "dee@shop.test", NEW_PASSWORD, &tid).await;
        // The owner is told by mail (the dev transport's files).
        let mail = nth_mail(&db.data_dir().join("mail"), 1).await;
        assert!(
            mail.contains("dee@shop.test") && mail.contains("was just changed"),
            "{mail}"
        );

        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn sessions_and_apps_are_listed_and_each_can_be_ended() {
    for db in backends("account pages").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        inst.tenant_app().await;
        let tid = inst.create_tenant("sessions-shop").await;
        inst.create_member(&tid, "eve@shop.test", &["User"]).await;
        inst.create_member(&tid, "fay@shop.test", &["User"]).await;
        let mut here = sign_in_with_refresh(&inst, "eve@shop.test", USER_PASSWORD, &tid).await;
        let mut other = sign_in_with_refresh(&inst, "eve@shop.test", USER_PASSWORD, &tid).await;
        let mut stranger = sign_in_with_refresh(&inst, "fay@shop.test", USER_PASSWORD, &tid).await;

        let mut browser = Browser::new(&inst, Some(here.session.clone()));
        let (status, html) = browser.get("/account/sessions").await;
        assert_eq!(status, 200);
        assert_eq!(html.matches("name=\"session\"").count(), 2, "{html}");
        assert!(
            html.contains("this browser") && html.contains("Tenant app"),
            "{html}"
        );

        // Another account's session cannot be named.
        let fay_session = raw_one(&inst, "fay@shop.test").await;
        let (status, html) = browser
            .submit(
                "/account/sessions",
                "/account/sessions",
                &[("session", &fay_session)],
            )
            .await;
        assert_eq!(status, 200);
        assert!(html.contains("already ended"), "{html}");
        assert_eq!(
            Browser::new(&inst, Some(stranger.session.clone()))
                .get("/account")
                .await
                .0,
            200
        );

        // Signing the other session out ends it and its refresh family only.
        let (_, html) = browser.get("/account/sessions").await;
        let ids = session_ids(&html);
        assert_eq!(ids.len(), 2);
        let current = current_session_id(&html).expect("the current session is marked");
        let other_id = ids.into_iter().find(|id| *id != current).unwrap();
        let csrf = hidden_field(&html, "csrf").unwrap();
        let (status, page) = browser
            .post("/account/sessions", &csrf, &[("session", &other_id)])
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("was signed out"), "{page}");
        assert_eq!(
            Browser::new(&inst, Some(other.session.clone()))
                .get("/account")
                .await
                .0,
            401
        );
        assert_eq!(
            refresh(&inst, &mut other).await,
            (400, "invalid_grant".into())
        );
        assert_eq!(
            refresh(&inst, &mut here).await.0,
            200,
            "this session's family was revoked"
        );

        // Revoking the app takes back every grant of the user at it (not the other user's).
        let (status, html) = browser
            .submit(
                "/account/sessions",
                "/account/clients",
                &[("client", "tenant-app")],
            )
            .await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("access was revoked"), "{html}");
        assert_eq!(
            refresh(&inst, &mut here).await,
            (400, "invalid_grant".into())
        );
        assert_eq!(
            refresh(&inst, &mut stranger).await.0,
            200,
            "another user's grant was revoked"
        );
        let (status, html) = browser.get("/account/sessions").await;
        assert_eq!(status, 200);
        assert!(html.contains("No app holds access"), "{html}");

        inst.stop().await;
        db.cleanup().await;
    }
}

/// The id of a live session of `email` (straight from the store).
async fn raw_one(inst: &Instance, email: &str) -> String {
    let user = inst
        .state
        .store
        .user_by_email(email)
        .await
        .unwrap()
        .unwrap();
    let sessions = inst
        .state
        .store
        .sessions_of_user(&user.id, tansu_identity::store::now_ms())
        .await
        .unwrap();
    sessions[0].id.clone()
}

/// The session ids in the sessions page's forms.
fn session_ids(html: &str) -> Vec<String> {
    html.split("name=\"session\" value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// The id of the row marked "this browser".
fn current_session_id(html: &str) -> Option<String> {
    let row = html.split("<tr>").find(|r| r.contains("this browser"))?;
    session_ids(row).into_iter().next()
}

#[tokio::test]
async fn export_and_deletion_follow_the_tenant_policy() {
    for db in backends("account pages").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        inst.tenant_app().await;
        let tid = inst.create_tenant("delete-shop").await;
        inst.create_member(&tid, "gus@shop.test", &["User"]).await;
        let mut signed = sign_in_with_refresh(&inst, "gus@shop.test", USER_PASSWORD, &tid).await;
        let mut browser = Browser::new(&inst, Some(signed.session.clone()));

        let resp = browser
            .http
            .get(inst.url("/account/export"))
            .header("cookie", signed.session.clone())
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment")
        );
        let export: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(export["account"]["email"], "gus@shop.test");
        assert_eq!(export["memberships"][0]["tenant_slug"], "delete-shop");
        assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
        assert!(export["account"].get("password_hash").is_none());
        assert_eq!(
            Browser::new(&inst, None).get("/account/export").await.0,
            401
        );

        // The tenant does not allow it (the default): refused.
        let (status, html) = browser.get("/account/delete").await;
        assert_eq!(status, 200);
        assert!(html.contains("does not allow"), "{html}");
        let fields = [("current", USER_PASSWORD), ("confirm", "yes")];
        let (status, html) = browser
            .submit("/account/password", "/account/delete", &fields)
            .await;
        assert_eq!(status, 403, "{html}");

        let admin = inst.admin_token().await;
        inst.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{tid}"),
            &admin,
            Some(json!({"policy": {"self_service_deletion": true}})),
            200,
        )
        .await;
        let wrong = [("current", "not the password"), ("confirm", "yes")];
        assert_eq!(
            browser
                .submit("/account/delete", "/account/delete", &wrong)
                .await
                .0,
            401
        );
        let (status, html) = browser
            .submit("/account/delete", "/account/delete", &fields)
            .await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("was deleted"), "{html}");
        assert!(
            inst.state
                .store
                .user_by_email("gus@shop.test")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(refresh(&inst, &mut signed).await.0, 400);
        assert_eq!(
            Browser::new(&inst, Some(signed.session))
                .get("/account")
                .await
                .0,
            401
        );
        assert!(
            inst.user_tokens(
                "tenant-app",
                "gus@shop.test",
                USER_PASSWORD,
                "openid",
                Some(&tid)
            )
            .await
            .is_err()
        );

        inst.stop().await;
        db.cleanup().await;
    }
}
