//! A tenant admin (the Owner of one tenant) sees only their own tenant: the per-tenant pages
//! without a picker, their own chain verification (and the platform admin's job of their
//! tenant, never another tenant's), their own policy and overview; another tenant's pages,
//! items and forms answer 404, the platform pages 403, and nothing of the other tenant is
//! touched.

use reqwest::StatusCode;

use crate::common::*;

const OWNER: &str = "boss@owner-shop.example";

#[tokio::test]
async fn a_tenant_admin_sees_and_changes_only_their_own_tenant() {
    let f = stack();
    let base = f.base.clone();
    let api = AdminApi::new().await;
    let (idp, idp_issuer) = external_provider().await;
    let slug = "owner-shop-one";
    let one = api.create_tenant(slug, "Owner Shop One").await;
    let two = api.create_tenant("owner-shop-two", "Owner Shop Two").await;
    api.create_member(&one, OWNER, "Owner").await;
    let clerk = api
        .create_member(&one, "clerk@owner-shop.example", "User")
        .await;
    let provider_two = api.create_provider(&two, "Two IdP", &idp_issuer).await;
    // The platform admin's verification job of the owner's tenant, finished.
    let (status, job) = api
        .call(
            reqwest::Method::POST,
            &format!("admin/security-events/verifications?tenant={one}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let platform_job = job["id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        let job = api
            .get(&format!(
                "admin/security-events/verifications/{platform_job}"
            ))
            .await;
        if job["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let mut owner = Browser::new(&f.certificate_pem);
    let landed = sign_in_as(&mut owner, &base, "users", OWNER, OWNER_PASSWORD).await;
    assert!(landed.body.contains("Owner Shop One"), "{}", landed.body);
    assert!(
        !landed.body.contains("Owner Shop Two") && !landed.body.contains(&two),
        "{}",
        landed.body
    );
    assert!(
        !landed.body.contains(">Tenants<"),
        "no platform sections in the navigation"
    );
    let owner_csrf = hidden(&landed.body, "csrf");
    for (path, text) in TENANT_PAGES {
        let r = owner.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "/{path}: {}", r.body);
        assert!(r.body.contains(text), "/{path} lacks {text:?}: {}", r.body);
        assert!(!r.body.contains(&two), "/{path} shows the other tenant");
        assert!(
            !r.body.contains("Owner Shop Two"),
            "/{path} shows the other tenant"
        );
    }
    let r = owner.get(&format!("{base}admin/security-events")).await;
    assert!(
        r.body.contains("not verified yet"),
        "verification on request"
    );
    let r = owner
        .get(&format!("{base}admin/security-events?verify=1"))
        .await;
    assert!(rows(&r.body, "event") > 0, "{}", r.body);
    assert!(
        r.body.contains("Event chain of your tenant: intact"),
        "{}",
        r.body
    );
    // The owner's own verification job, followed to its result; another tenant's chain and
    // the platform admin's job are out of reach.
    let r = owner
        .post(
            &format!("{base}admin/security-events/verify"),
            &[("csrf", &owner_csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location.contains("verification="), "{}", r.location);
    until_shown(
        &mut owner,
        &r.location,
        "Event chain of your tenant: intact",
    )
    .await;
    let r = owner
        .tenant_form(
            &format!("{base}admin/security-events/verify"),
            &owner_csrf,
            &two,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // The platform admin's job of the owner's tenant is theirs to see; another tenant's is not.
    let r = owner
        .get(&format!(
            "{base}admin/security-events?verification={platform_job}"
        ))
        .await;
    assert!(
        r.body.contains("Event chain of your tenant: intact"),
        "{}",
        r.body
    );
    let (status, other_job) = api
        .call(
            reqwest::Method::POST,
            &format!("admin/security-events/verifications?tenant={two}"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{other_job}");
    let r = owner
        .get(&format!(
            "{base}admin/security-events?verification={}",
            other_job["id"].as_str().unwrap()
        ))
        .await;
    assert!(r.body.contains("is not known"), "{}", r.body);
    assert!(
        !r.body.contains("intact") && !r.body.contains(&two),
        "{}",
        r.body
    );
    // No master key, rotation or re-wrap for tenant admins: not shown, and 403.
    for path in ["keys/master-key", "keys/master-key/rewrap", "keys/rotation"] {
        let r = owner.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "/{path}");
        assert!(!r.body.contains("master-key\""), "/{path}");
    }
    let r = owner
        .post(
            &format!("{base}keys/master-key/rewrap"),
            &[("csrf", &owner_csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!owner.get(&base).await.body.contains("Master key"));
    // The owner edits their own tenant's policy.
    let r = owner.get(&format!("{base}settings")).await;
    assert!(r.body.contains("Save policy"), "{}", r.body);
    let r = owner
        .tenant_form(
            &format!("{base}settings"),
            &owner_csrf,
            &one,
            &[
                ("password_min_length", "15"),
                ("lockout_threshold", "6"),
                ("lockout_duration_secs", "300"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains(&format!("The policy of {slug} was saved.")),
        "{}",
        r.body
    );
    let t = api.get(&format!("admin/tenants/{one}")).await;
    assert_eq!(t["policy"]["password_min_length"], 15);
    // The owner's overview: their tenant's activity (their own sign-in at least).
    let r = owner.get(&base).await;
    assert!(r.body.contains("chart-sign_ins"), "{}", r.body);
    assert!(!r.body.contains(r#"id="total-sign_ins">0<"#), "{}", r.body);
    for path in ["tenants", "keys", "clients", "keys/rotate"] {
        let r = owner.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "/{path}");
    }
    for path in [
        format!("users?tenant={two}"),
        format!("admin/providers?tenant={two}"),
        format!("admin/providers/{provider_two}?tenant={two}"),
        format!("admin/providers/{provider_two}?tenant={one}"),
        format!("admin/providers/{provider_two}/delete?tenant={one}"),
        format!("admin/security-events?tenant={two}"),
        "admin/security-events?tenant=platform".to_owned(),
        format!("admin/security-events/export.csv?tenant={two}"),
        format!("settings?tenant={two}"),
        format!("secrets?tenant={two}"),
        format!("users/{clerk}/password?tenant={two}"),
    ] {
        let r = owner.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "/{path}: {}", r.body);
        assert!(
            !r.body.contains("Owner Shop Two") && !r.body.contains("Two IdP"),
            "/{path}"
        );
    }
    for (action, fields) in [
        ("users", vec![("email", "x@two.example"), ("role", "Owner")]),
        (
            "admin/providers",
            vec![
                ("name", "x"),
                ("issuer", "https://x.example"),
                ("client_id", "c"),
            ],
        ),
        ("secrets", vec![("name", "stolen"), ("value", "v")]),
        (
            "settings",
            vec![
                ("password_min_length", "8"),
                ("lockout_threshold", "1"),
                ("lockout_duration_secs", "1"),
            ],
        ),
    ] {
        let mut form = vec![
            ("csrf", owner_csrf.as_str()),
            ("tenant", two.as_str()),
            ("confirm", "yes"),
        ];
        form.extend(fields);
        let r = owner.post(&format!("{base}{action}"), &form).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "POST /{action} for the other tenant"
        );
    }
    let r = owner
        .tenant_form(
            &format!("{base}admin/providers/{provider_two}/delete"),
            &owner_csrf,
            &one,
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            &format!("admin/tenants/{two}/providers/{provider_two}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "the other tenant's provider is untouched");
    // The owner manages their own tenant.
    let r = owner
        .tenant_form(
            &format!("{base}secrets"),
            &owner_csrf,
            &one,
            &[("name", "api-key"), ("value", "owner-value-1")],
        )
        .await;
    assert!(
        r.body.contains("Secret api-key stored as version 1."),
        "{}",
        r.body
    );
    idp.stop().await;
}
