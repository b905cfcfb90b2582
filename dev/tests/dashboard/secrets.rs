//! Secrets of a tenant: store and rotate (values never shown), revoke every version
//! (confirmed).

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn store_rotate_and_revoke_a_secret() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let one = api.create_tenant("secrets-shop", "Secrets Shop").await;

    for value in [
        "postgres://one:first-value-0001@db/one",
        "postgres://one:second-value-0002@db/one",
    ] {
        let r = b
            .tenant_form(
                &format!("{base}secrets"),
                &csrf,
                &one,
                &[("name", "db-url"), ("value", value)],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.contains("Secret db-url stored as version"),
            "{}",
            r.body
        );
        assert!(!r.body.contains(value), "values are never shown");
    }
    let r = b.get(&format!("{base}secrets?tenant={one}")).await;
    assert!(r.body.contains("v1, v2"), "{}", r.body);
    assert!(!r.body.contains("first-value") && !r.body.contains("second-value"));
    let r = b
        .get(&format!("{base}secrets/db-url/revoke?tenant={one}"))
        .await;
    assert!(
        r.body
            .contains("Revoke every version of the secret db-url?"),
        "{}",
        r.body
    );
    let r = b
        .tenant_form(
            &format!("{base}secrets/db-url/revoke"),
            &csrf,
            &one,
            &[("confirm", "yes")],
        )
        .await;
    assert!(r.body.contains("Secret db-url revoked."), "{}", r.body);
    assert!(r.body.contains("v1 (revoked), v2 (revoked)"), "{}", r.body);
}
