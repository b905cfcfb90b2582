//! Tenants: create (a duplicate slug is refused with the page, 422), sort on the server
//! either way (unknown sorts: 400), suspend and activate (only after the confirmation), and
//! every per-tenant page with a tenant chosen (an unknown tenant: 404).

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn create_sort_suspend_and_activate_tenants() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;

    for (slug, name) in [("shop-one", "Shop One"), ("shop-two", "Shop Two")] {
        let r = b
            .post(
                &format!("{base}tenants"),
                &[("csrf", &csrf), ("slug", slug), ("name", name)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.contains(&format!("Tenant {name} ({slug}) created.")),
            "{}",
            r.body
        );
    }
    let r = b
        .post(
            &format!("{base}tenants"),
            &[("csrf", &csrf), ("slug", "shop-one"), ("name", "Again")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "duplicate slug");
    assert!(
        r.body.contains("a tenant with this slug exists"),
        "{}",
        r.body
    );
    let one = api.tenant_id("shop-one").await;
    let two = api.tenant_id("shop-two").await;
    // Every list sorts on the server, either way; unknown sorts are refused.
    let tenants = b.get(&format!("{base}tenants?sort=name&order=desc")).await;
    let (at_one, at_two) = (
        tenants.body.find("Shop One").unwrap(),
        tenants.body.find("Shop Two").unwrap(),
    );
    assert!(at_two < at_one, "name descending");
    assert!(tenants.body.contains("Name ▼"), "the active sort is marked");
    let tenants = b.get(&format!("{base}tenants?sort=name&order=asc")).await;
    assert!(tenants.body.find("Shop One").unwrap() < tenants.body.find("Shop Two").unwrap());
    for path in [
        "tenants?sort=nope",
        "tenants?order=sideways",
        "admin/security-events?sort=actor",
    ] {
        let r = b.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "/{path}");
    }
    // Suspend shop-two (after a confirmation) and activate it again.
    let r = b
        .get(&format!("{base}tenants/{two}/status?to=suspend"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Suspend tenant Shop Two"), "{}", r.body);
    let r = b
        .post(
            &format!("{base}tenants/{two}/status"),
            &[("csrf", &csrf), ("to", "suspend")],
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "no confirmation, no action"
    );
    let r = b
        .post(
            &format!("{base}tenants/{two}/status"),
            &[("csrf", &csrf), ("to", "suspend"), ("confirm", "yes")],
        )
        .await;
    assert!(
        r.body.contains("Tenant shop-two is now suspended."),
        "{}",
        r.body
    );
    let r = b
        .post(
            &format!("{base}tenants/{two}/status"),
            &[("csrf", &csrf), ("to", "activate"), ("confirm", "yes")],
        )
        .await;
    assert!(
        r.body.contains("Tenant shop-two is now active."),
        "{}",
        r.body
    );

    // Every per-tenant page with a tenant chosen.
    for (path, text) in TENANT_PAGES {
        let r = b.get(&format!("{base}{path}?tenant={one}")).await;
        assert_eq!(r.status, StatusCode::OK, "/{path}: {}", r.body);
        assert!(r.body.contains(text), "/{path} lacks {text:?}: {}", r.body);
    }
    let r = b.get(&format!("{base}users?tenant=no-such-tenant")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
