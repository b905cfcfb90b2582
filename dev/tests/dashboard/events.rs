//! Security events: a tenant's changes made through the dashboard (tenants, users, roles,
//! providers, policy, secrets) are found with the filters, with the chain status on request;
//! a bad time filter is named; NDJSON and CSV export; "Verify the chain" starts identity's
//! job and the page follows it to the result (an unknown job is said so; without a chosen
//! chain nothing starts).

use reqwest::StatusCode;

use crate::common::*;

/// Changes of tenant `one` (and a provider of `two`) through the dashboard's forms: the
/// events the checks look for.
async fn changes(b: &mut Browser, base: &str, csrf: &str, one: &str, two: &str, idp: &str) {
    let ok = |r: Page| assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let users = format!("{base}users");
    for (email, role) in [
        ("boss@events-shop.example", "Owner"),
        ("clerk@events-shop.example", "User"),
    ] {
        let fields = [
            ("email", email),
            ("password", OWNER_PASSWORD),
            ("role", role),
        ];
        ok(b.tenant_form(&users, csrf, one, &fields).await);
    }
    let api = AdminApi::new().await;
    let list = api
        .get(&format!("admin/tenants/{one}/users?search=clerk"))
        .await;
    let clerk = list["items"][0]["id"].as_str().unwrap().to_owned();
    let roles = format!("{base}users/{clerk}/roles");
    ok(b.tenant_form(
        &roles,
        csrf,
        one,
        &[("role", "Admin"), ("action", "assign")],
    )
    .await);
    let revoke = [("role", "Admin"), ("action", "revoke"), ("confirm", "yes")];
    ok(b.tenant_form(&roles, csrf, one, &revoke).await);
    for to in ["disable", "enable"] {
        let status = format!("{base}users/{clerk}/status");
        ok(
            b.tenant_form(&status, csrf, one, &[("to", to), ("confirm", "yes")])
                .await,
        );
    }
    let providers = format!("{base}admin/providers");
    for (tenant, name) in [(one, "Local IdP"), (two, "Two IdP")] {
        let fields = [
            ("name", name),
            ("issuer", idp),
            ("client_id", "c"),
            ("scopes", "openid"),
        ];
        ok(b.tenant_form(&providers, csrf, tenant, &fields).await);
    }
    let list = api.get(&format!("admin/tenants/{one}/providers")).await;
    let provider = list["items"][0]["id"].as_str().unwrap().to_owned();
    let edit = [
        ("name", "Local IdP (edited)"),
        ("issuer", idp),
        ("client_id", "c"),
        ("scopes", "openid email"),
    ];
    ok(
        b.tenant_form(&format!("{providers}/{provider}"), csrf, one, &edit)
            .await,
    );
    for to in ["disable", "enable"] {
        let status = format!("{providers}/{provider}/status");
        ok(
            b.tenant_form(&status, csrf, one, &[("to", to), ("confirm", "yes")])
                .await,
        );
    }
    for min in ["14", "15"] {
        let policy = [
            ("password_min_length", min),
            ("lockout_threshold", "7"),
            ("lockout_duration_secs", "600"),
        ];
        ok(
            b.tenant_form(&format!("{base}settings"), csrf, one, &policy)
                .await,
        );
    }
    for value in [
        "postgres://one:first-value-0001@db/one",
        "postgres://one:second-value-0002@db/one",
    ] {
        let fields = [("name", "db-url"), ("value", value)];
        ok(b.tenant_form(&format!("{base}secrets"), csrf, one, &fields)
            .await);
    }
    let revoke = format!("{base}secrets/db-url/revoke");
    ok(b.tenant_form(&revoke, csrf, one, &[("confirm", "yes")])
        .await);
}

#[tokio::test]
async fn filter_export_and_verify_the_events_of_a_tenant() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let (idp, idp_issuer) = external_provider().await;
    for (slug, name) in [("events-shop", "Events Shop"), ("events-two", "Events Two")] {
        let r = b
            .post(
                &format!("{base}tenants"),
                &[("csrf", &csrf), ("slug", slug), ("name", name)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let one = api.tenant_id("events-shop").await;
    let two = api.tenant_id("events-two").await;
    changes(&mut b, &base, &csrf, &one, &two, &idp_issuer).await;

    for (kind, at_least) in [
        ("tenant.change", 2),
        ("user.change", 4),
        ("role.change", 2),
        ("provider.change", 4),
        ("secret.write", 3),
    ] {
        let r = b
            .get(&format!(
                "{base}admin/security-events?tenant={one}&type={kind}&verify=1"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(rows(&r.body, "event") >= at_least, "{kind}: {}", r.body);
        assert!(r.body.contains("Event chain of tenant"), "{}", r.body);
        assert!(r.body.contains("intact"), "{}", r.body);
        assert!(!r.body.contains("first-value"));
    }
    let r = b
        .get(&format!(
            "{base}admin/security-events?tenant={one}&outcome=failure"
        ))
        .await;
    assert_eq!(rows(&r.body, "event"), 0, "{}", r.body);
    let r = b
        .get(&format!("{base}admin/security-events?from=2000-01-01T00:00&to=2999-01-01T00:00&type=provider.change"))
        .await;
    assert!(
        rows(&r.body, "event") >= 5,
        "both tenants' provider events: {}",
        r.body
    );
    let r = b
        .get(&format!("{base}admin/security-events?from=yesterday"))
        .await;
    assert!(r.body.contains("from: a date and time"), "{}", r.body);
    let r = b
        .get(&format!(
            "{base}admin/security-events/export.ndjson?tenant={one}&type=provider.change"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body.lines().count(),
        api.events(&format!("tenant={one}&type=provider.change"))
            .await
            .len()
    );
    let r = b
        .get(&format!(
            "{base}admin/security-events/export.csv?tenant={one}&type=secret.write"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("id,time,tenant_id"), "{}", r.body);
    assert_eq!(r.body.lines().count(), 1 + 3, "{}", r.body);

    // "Verify the chain" starts a verification job at identity; the events page follows its
    // progress (reloading itself while it runs) to the result, with the filters kept.
    let r = b
        .tenant_form(
            &format!("{base}admin/security-events/verify"),
            &csrf,
            &one,
            &[("filters", &format!("tenant={one}&type=user.change&evil=1"))],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let prefix = format!("{base}admin/security-events?tenant={one}&type=user.change&verification=");
    assert!(r.location.starts_with(&prefix), "{}", r.location);
    let sync = api
        .get(&format!("admin/security-events/verify?tenant={one}"))
        .await;
    let verified = until_shown(
        &mut b,
        &r.location,
        &format!(
            "Event chain of tenant {one}: intact ({} events checked).",
            sync["checked"]
        ),
    )
    .await;
    assert!(rows(&verified.body, "event") >= 4, "{}", verified.body);
    // An unknown job: said so, with the form to start again; never a 500.
    let r = b
        .get(&format!(
            "{base}admin/security-events?tenant={one}&verification=no-such-job"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("is not known"), "{}", r.body);
    assert!(r.body.contains(r#"id="verify-chain""#), "{}", r.body);
    // Without a chosen chain nothing starts.
    let r = b
        .post(
            &format!("{base}admin/security-events/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!r.location.contains("verification="), "{}", r.location);
    idp.stop().await;
}
