//! Self-service regeneration of MFA recovery codes: from the account page, with
//! CSRF protection and a current TOTP code; the old set stops working at once, the new set is
//! shown once; wrong codes are counted and lock; every attempt is a security event — on SQLite
//! and (when configured) PostgreSQL.

mod browser;
mod common;

use browser::{Browser, auth_query, redeem};
use common::*;
use tansu_identity::mfa::{self, CodeOutcome};

const SUITE: &str = "identity mfa recovery codes";

#[tokio::test]
async fn regenerate_recovery_codes_from_the_account_page() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| c.login_lockout_threshold = 4).await;
        let t = id.create_tenant("codes-shop").await;
        let email = "rita@codes.example";
        let rita = id.create_member(&t, email, &["User"]).await;
        let app = id.tenant_app().await;
        let url = id.url("/account/mfa/recovery-codes");

        // Signed in, MFA not on yet: nothing to regenerate.
        let mut b = Browser::new();
        let (q, verifier) = auth_query(&app, "openid", Some("codes-shop"));
        let done = b.login(&id, &q, email, USER_PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        redeem(&id, &app, &done, &verifier).await;
        let enrol = b.get(&id.url("/account/mfa")).await;
        let secret = enrol.totp_secret().unwrap();
        let csrf = enrol.field("csrf").unwrap();
        let early = b.post(&url, &[("csrf", &csrf), ("code", "123456")]).await;
        assert_eq!(early.status, 409, "{}", early.body);

        // Enrolled (with the previous step's code, so later steps stay usable).
        let confirmed = b
            .post(
                &id.url("/account/mfa"),
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, -1))],
            )
            .await;
        assert_eq!(confirmed.status, 200, "{}", confirmed.body);
        let old = confirmed.recovery_codes();
        assert_eq!(old.len(), 10);

        // The account page offers the regeneration form.
        let page = b.get(&id.url("/account/mfa")).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("10 recovery codes left"),
            "{}",
            page.body
        );
        assert!(page.body.contains("account/mfa/recovery-codes"));
        let csrf = page.field("csrf").unwrap();

        // Not signed in, no CSRF, a wrong code, a recovery code: refused, nothing changes.
        let mut stranger = Browser::new();
        let anon = stranger.get(&id.url("/account/mfa")).await;
        assert_eq!(anon.status, 401);
        let anon = stranger
            .post(
                &url,
                &[
                    ("csrf", &anon.field("csrf").unwrap_or_default()),
                    ("code", &totp_code_at(&secret, 0)),
                ],
            )
            .await;
        assert!(matches!(anon.status, 401 | 403), "{}", anon.status);
        let forged = b
            .post(
                &url,
                &[("csrf", "forged"), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(forged.status, 403);
        let wrong = b
            .post(
                &url,
                &[("csrf", &csrf), ("code", &wrong_totp_code(&secret))],
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.body.contains("Invalid code."));
        assert!(wrong.recovery_codes().is_empty());
        let by_recovery = b.post(&url, &[("csrf", &csrf), ("code", &old[0])]).await;
        assert_eq!(
            by_recovery.status, 401,
            "a recovery code does not re-authenticate"
        );
        assert_eq!(id.state.store.recovery_codes_left(&rita).await.unwrap(), 10);

        // A current TOTP code: a new set, shown once; the old set is dead at once.
        let fresh = b
            .post(
                &url,
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(fresh.status, 200, "{}", fresh.body);
        let new = fresh.recovery_codes();
        assert_eq!(new.len(), 10, "{}", fresh.body);
        assert!(new.iter().all(|c| !old.contains(c)));
        assert!(
            b.get(&id.url("/account/mfa"))
                .await
                .recovery_codes()
                .is_empty()
        );
        for code in [&old[1], &old[9]] {
            assert_eq!(
                mfa::verify(&id.state.store, id.state.keys.master(), &rita, code, true)
                    .await
                    .unwrap(),
                CodeOutcome::Wrong
            );
        }
        assert_eq!(
            mfa::verify(
                &id.state.store,
                id.state.keys.master(),
                &rita,
                &new[3],
                true
            )
            .await
            .unwrap(),
            CodeOutcome::Recovery
        );
        assert_eq!(id.state.store.recovery_codes_left(&rita).await.unwrap(), 9);
        // The same TOTP code again is a replay.
        let replay = b
            .post(
                &url,
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, 0))],
            )
            .await;
        assert_eq!(replay.status, 401);

        // Security events: one success, the failures with their reasons.
        let (status, v) = id
            .get_as(
                &format!("/admin/security-events?tenant={t}&type=mfa.recovery_codes_regenerated"),
                &id.admin_token().await,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let items = v["items"].as_array().unwrap();
        assert_eq!(
            items.iter().filter(|e| e["outcome"] == "success").count(),
            1,
            "{v}"
        );
        assert_eq!(
            items.iter().filter(|e| e["outcome"] == "failure").count(),
            3,
            "{v}"
        );
        assert!(items.iter().all(|e| e["actor"] == format!("user:{rita}")));

        // Guessing locks the form (threshold 4: the replay plus three wrong codes).
        let mut last = 0;
        for _ in 0..3 {
            last = b
                .post(
                    &url,
                    &[("csrf", &csrf), ("code", &wrong_totp_code(&secret))],
                )
                .await
                .status;
        }
        assert_eq!(last, 401);
        let locked = b
            .post(
                &url,
                &[("csrf", &csrf), ("code", &totp_code_at(&secret, 1))],
            )
            .await;
        assert_eq!(locked.status, 429, "{}", locked.body);
        assert!(locked.recovery_codes().is_empty());
        assert_eq!(id.state.store.recovery_codes_left(&rita).await.unwrap(), 9);

        id.stop().await;
        db.cleanup().await;
    }
}
