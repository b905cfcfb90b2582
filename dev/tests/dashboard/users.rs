//! Users and roles of a tenant: invite or create users (a weak password refused with the
//! policy's words), search, assign a role and revoke it (confirmed), disable and enable,
//! reset the password and MFA (confirmed), and sort on the server (allow-listed).

use reqwest::StatusCode;

use crate::common::*;

const OWNER: &str = "boss@users-shop.example";
const CLERK: &str = "clerk@users-shop.example";

#[tokio::test]
async fn invite_users_and_manage_their_roles_status_password_and_mfa() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;
    let one = api.create_tenant("users-shop", "Users Shop").await;

    let r = b
        .tenant_form(
            &format!("{base}users"),
            &csrf,
            &one,
            &[
                ("email", OWNER),
                ("name", "Shop owner"),
                ("password", OWNER_PASSWORD),
                ("role", "Owner"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("{OWNER} is now a member (Owner).")),
        "{}",
        r.body
    );
    let r = b
        .tenant_form(
            &format!("{base}users"),
            &csrf,
            &one,
            &[
                ("email", CLERK),
                ("name", "Clerk"),
                ("password", ""),
                ("role", "User"),
            ],
        )
        .await;
    assert!(
        r.body.contains(&format!("{CLERK} is now a member (User).")),
        "{}",
        r.body
    );
    let list = api
        .get(&format!("admin/tenants/{one}/users?search=clerk"))
        .await;
    let clerk = list["items"][0]["id"].as_str().unwrap().to_owned();
    let r = b
        .get(&format!("{base}users?tenant={one}&search=clerk"))
        .await;
    assert!(r.body.contains(CLERK) && !r.body.contains(OWNER), "search");
    // A weak password is refused with the policy's words, not an error page.
    let r = b
        .tenant_form(
            &format!("{base}users"),
            &csrf,
            &one,
            &[
                ("email", "weak@users-shop.example"),
                ("password", "short"),
                ("role", "User"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    // Roles: assign Admin, revoke it after a confirmation.
    let r = b
        .tenant_form(
            &format!("{base}users/{clerk}/roles"),
            &csrf,
            &one,
            &[("role", "Admin"), ("action", "assign")],
        )
        .await;
    assert!(
        r.body.contains(&format!("Roles of {CLERK}: User, Admin.")),
        "{}",
        r.body
    );
    let r = b
        .get(&format!(
            "{base}users/{clerk}/roles?tenant={one}&role=Admin&action=revoke"
        ))
        .await;
    assert!(r.body.contains("Revoke the role Admin"), "{}", r.body);
    let r = b
        .tenant_form(
            &format!("{base}users/{clerk}/roles"),
            &csrf,
            &one,
            &[("role", "Admin"), ("action", "revoke"), ("confirm", "yes")],
        )
        .await;
    assert!(
        r.body.contains(&format!("Roles of {CLERK}: User.")),
        "{}",
        r.body
    );
    // Disable and enable, reset the password.
    let r = b
        .get(&format!(
            "{base}users/{clerk}/status?tenant={one}&to=disable"
        ))
        .await;
    assert!(r.body.contains(&format!("Disable {CLERK}?")), "{}", r.body);
    for (to, now) in [("disable", "disabled"), ("enable", "enabled")] {
        let r = b
            .tenant_form(
                &format!("{base}users/{clerk}/status"),
                &csrf,
                &one,
                &[("to", to), ("confirm", "yes")],
            )
            .await;
        assert!(
            r.body.contains(&format!("{CLERK} is now {now}.")),
            "{}",
            r.body
        );
    }
    let r = b
        .get(&format!("{base}users/{clerk}/password?tenant={one}"))
        .await;
    assert!(r.body.contains("New password for"), "{}", r.body);
    let r = b
        .tenant_form(
            &format!("{base}users/{clerk}/password"),
            &csrf,
            &one,
            &[
                ("password", "a brand new passphrase 99"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert!(r.body.contains("The password was reset."), "{}", r.body);
    // Reset MFA: a confirmation page, nothing without it, then the reset (an mfa.reset event).
    let r = b
        .get(&format!("{base}users/{clerk}/mfa?tenant={one}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains(&format!("Reset the MFA of {CLERK}?")),
        "{}",
        r.body
    );
    let mfa_reset = format!("{base}users/{clerk}/mfa");
    let r = b.tenant_form(&mfa_reset, &csrf, &one, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "no confirmation, no reset");
    assert!(r.location.contains("/mfa?tenant="), "{}", r.location);
    let r = b
        .tenant_form(&mfa_reset, &csrf, &one, &[("confirm", "yes")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("MFA was reset"), "{}", r.body);
    assert!(
        r.body.contains("Reset MFA…"),
        "the button on every user row"
    );
    // Sorted on the server, by identity, with the cursor kept: newest email first.
    let r = b
        .get(&format!("{base}users?tenant={one}&sort=email&order=desc"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (clerk_at, boss_at) = (r.body.find(CLERK).unwrap(), r.body.find(OWNER).unwrap());
    assert!(clerk_at < boss_at, "email descending");
    let r = b
        .get(&format!("{base}users?tenant={one}&sort=password_hash"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "sorts are allow-listed");
}
