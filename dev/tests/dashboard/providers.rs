//! External providers of a tenant: add (the secret never shown, only "set"), an http issuer
//! refused with the page (422), the discovery test against a local stand-in provider, edit
//! (an empty secret field keeps the secret), and disable/enable.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn add_test_edit_disable_and_enable_a_provider() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let (idp, idp_issuer) = external_provider().await;
    let one = api.create_tenant("providers-shop", "Providers Shop").await;

    let r = b
        .tenant_form(
            &format!("{base}admin/providers"),
            &csrf,
            &one,
            &[
                ("name", "Local IdP"),
                ("issuer", &idp_issuer),
                ("client_id", "shop-one"),
                ("client_secret", "idp-secret-never-shown-4711"),
                ("scopes", "openid email"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Provider Local IdP added."), "{}", r.body);
    assert!(!r.body.contains("idp-secret-never-shown-4711"));
    assert!(r.body.contains("secret: set"), "{}", r.body);
    let list = api.get(&format!("admin/tenants/{one}/providers")).await;
    let provider = list["items"][0]["id"].as_str().unwrap().to_owned();
    let r = b
        .tenant_form(
            &format!("{base}admin/providers"),
            &csrf,
            &one,
            &[
                ("name", "Bad"),
                ("issuer", "http://example.com"),
                ("client_id", "c"),
                ("scopes", "openid"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("must be https"), "{}", r.body);
    let r = b
        .tenant_form(
            &format!("{base}admin/providers/{provider}/test"),
            &csrf,
            &one,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("Discovery of Local IdP works."),
        "{}",
        r.body
    );
    let r = b
        .get(&format!("{base}admin/providers/{provider}?tenant={one}"))
        .await;
    assert!(r.body.contains("Save provider"), "{}", r.body);
    let r = b
        .tenant_form(
            &format!("{base}admin/providers/{provider}"),
            &csrf,
            &one,
            &[
                ("name", "Local IdP (edited)"),
                ("issuer", &idp_issuer),
                ("client_id", "shop-one"),
                ("client_secret", ""),
                ("scopes", "openid email profile"),
            ],
        )
        .await;
    assert!(
        r.body.contains("Provider Local IdP (edited) saved."),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("secret: set"),
        "an empty secret field keeps it"
    );
    for (to, now) in [("disable", "disabled"), ("enable", "enabled")] {
        let r = b
            .tenant_form(
                &format!("{base}admin/providers/{provider}/status"),
                &csrf,
                &one,
                &[("to", to), ("confirm", "yes")],
            )
            .await;
        assert!(r.body.contains(&format!("is now {now}.")), "{}", r.body);
    }
    idp.stop().await;
}
