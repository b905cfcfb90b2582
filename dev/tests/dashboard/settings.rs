//! Identity settings: a tenant's policy saved from the form (identity has it), an invalid one
//! refused with the page (422), and MFA required switched off again.

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn save_a_tenant_policy() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let slug = "settings-shop";
    let one = api.create_tenant(slug, "Settings Shop").await;

    let r = b.get(&format!("{base}settings?tenant={one}")).await;
    assert!(r.body.contains("Keys rotate every"), "{}", r.body);
    let r = b
        .tenant_form(
            &format!("{base}settings"),
            &csrf,
            &one,
            &[
                ("access_token_lifetime_secs", "900"),
                ("refresh_token_lifetime_secs", ""),
                ("session_timeout_secs", "3600"),
                ("password_min_length", "14"),
                ("lockout_threshold", "7"),
                ("lockout_duration_secs", "600"),
                ("mfa_required", "yes"),
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
    assert_eq!(t["policy"]["password_min_length"], 14);
    assert_eq!(t["policy"]["mfa_required"], true);
    assert_eq!(t["policy"]["access_token_lifetime_secs"], 900);
    let r = b
        .tenant_form(
            &format!("{base}settings"),
            &csrf,
            &one,
            &[
                ("password_min_length", "2"),
                ("lockout_threshold", "7"),
                ("lockout_duration_secs", "600"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // MFA required is enforced at the next sign-in (identity's forced enrolment): switched off
    // again.
    let r = b
        .tenant_form(
            &format!("{base}settings"),
            &csrf,
            &one,
            &[
                ("access_token_lifetime_secs", "900"),
                ("session_timeout_secs", "3600"),
                ("password_min_length", "14"),
                ("lockout_threshold", "7"),
                ("lockout_duration_secs", "600"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let t = api.get(&format!("admin/tenants/{one}")).await;
    assert_eq!(t["policy"]["mfa_required"], false);
}

/// The browser origins a tenant allows (CORS) are one per line on the form; what the form does
/// not show (the token exchange rules) stays as it was; an origin with a path is refused.
#[tokio::test]
async fn save_the_allowed_browser_origins() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let one = api.create_tenant("origins-shop", "Origins Shop").await;
    let mut policy = api.get(&format!("admin/tenants/{one}")).await["policy"].clone();
    policy["token_exchange"] =
        serde_json::json!([{"client_id": "backend", "audiences": ["tansu.db"]}]);
    let (status, v) = api
        .call(
            reqwest::Method::PATCH,
            &format!("admin/tenants/{one}"),
            Some(serde_json::json!({ "policy": policy })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let form = |origins: &'static str| {
        [
            ("password_min_length", "12"),
            ("lockout_threshold", "5"),
            ("lockout_duration_secs", "900"),
            ("allowed_origins", origins),
        ]
    };
    let r = b
        .tenant_form(
            &format!("{base}settings"),
            &csrf,
            &one,
            &form("https://app.example\r\nhttp://127.0.0.1:9000\r\n"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("http://127.0.0.1:9000"),
        "the form shows them"
    );
    let t = api.get(&format!("admin/tenants/{one}")).await;
    assert_eq!(
        t["policy"]["allowed_origins"],
        serde_json::json!(["https://app.example", "http://127.0.0.1:9000"])
    );
    assert_eq!(t["policy"]["token_exchange"], policy["token_exchange"]);
    let r = b
        .tenant_form(
            &format!("{base}settings"),
            &csrf,
            &one,
            &form("https://app.example/page"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let t = api.get(&format!("admin/tenants/{one}")).await;
    assert_eq!(t["policy"]["allowed_origins"].as_array().unwrap().len(), 2);
}
