//! Mail templates: every message kind listed with the wording in force; a tenant's own wording
//! saved from the form (identity has it and says it is custom), one without its link refused
//! with the page (422), and the built-in wording put back.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn edit_and_restore_a_mail_template() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let one = api.create_tenant("mail-shop", "Mail Shop").await;
    let path = format!("admin/tenants/{one}/mail-templates");

    let r = b.get(&format!("{base}mail-templates?tenant={one}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for kind in [
        "password_reset",
        "email_verification",
        "password_changed",
        "new_sign_in",
    ] {
        assert!(
            r.body.contains(&format!("value=\"{kind}\"")),
            "{kind}: {}",
            r.body
        );
    }
    assert!(
        r.body.contains("New sign-in to your {{product}} account"),
        "{}",
        r.body
    );

    let fields = [
        ("kind", "new_sign_in"),
        ("subject", "Someone signed in to {{product}}"),
        ("body", "From {{device}}.\r\nNot you? {{link}}\r\n"),
        ("action", "save"),
    ];
    let r = b
        .tenant_form(&format!("{base}mail-templates"), &csrf, &one, &fields)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("The new sign-in message was saved."),
        "{}",
        r.body
    );
    let saved = api.get(&path).await;
    let own = saved["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "new_sign_in")
        .unwrap()
        .clone();
    assert_eq!(own["custom"], true, "{saved}");
    assert_eq!(own["subject"], "Someone signed in to {{product}}");
    assert_eq!(own["body"], "From {{device}}.\nNot you? {{link}}\n");

    // Identity refuses a body without its link: the page says so, nothing changes.
    let no_link = [
        ("kind", "new_sign_in"),
        ("subject", "x"),
        ("body", "no link"),
        ("action", "save"),
    ];
    let r = b
        .tenant_form(&format!("{base}mail-templates"), &csrf, &one, &no_link)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(api.get(&path).await, saved);

    let back = [("kind", "new_sign_in"), ("action", "builtin")];
    let r = b
        .tenant_form(&format!("{base}mail-templates"), &csrf, &one, &back)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let restored = api.get(&path).await;
    assert!(
        restored["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["custom"] == false),
        "{restored}"
    );
}
