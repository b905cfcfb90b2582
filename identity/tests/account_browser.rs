//! Every sign-in, reset, registration and account page in headless Chromium — login, consent,
//! the second-factor step, the tenant picker and the enrolment a tenant forces, registration,
//! forgotten password, reset and address links, the account pages and invitations — a
//! screenshot of each at desktop and phone width, with and without a tenant's branding, and
//! axe-core (npm) run in the page: no serious or critical accessibility violation on any of
//! them. Screenshots go to
//! `$CARGO_TARGET_DIR/account-screenshots/`. axe-core is read from `TANSU_AXE` (default
//! `~/.cache/tansu/npm/node_modules/axe-core/axe.min.js`, where `.ci/run` installs it).

mod common;

use std::path::PathBuf;

use common::account::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_identity::account::EMAIL_VERIFICATION;
use tansu_shared::testing::browser::Chromium;

fn axe_source() -> Option<String> {
    let path = std::env::var_os("TANSU_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tansu/npm/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => tansu_shared::testing::skip_or_fail(
            "account pages in Chromium",
            &format!(
                "axe-core is not at {} (npm install axe-core)",
                path.display()
            ),
        ),
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("account-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The serious and critical violations axe finds in the tab's page.
async fn axe_violations(c: &mut Chromium, tab: &str, axe: &str) -> Vec<String> {
    c.call(Some(tab), "Runtime.evaluate", json!({"expression": axe}))
        .await;
    let r = c
        .call(
            Some(tab),
            "Runtime.evaluate",
            json!({
                "expression": "axe.run(document, {resultTypes: ['violations']}).then(r => \
                    r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                    .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
                "awaitPromise": true,
                "returnByValue": true,
            }),
        )
        .await;
    let list = &r["result"]["value"];
    assert!(list.is_array(), "axe ran: {r}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn screenshot(c: &mut Chromium, tab: &str, file: &std::path::Path) {
    use base64::Engine;
    let r = c
        .call(
            Some(tab),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )
        .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(r["data"].as_str().unwrap())
        .unwrap();
    std::fs::write(file, png).unwrap();
}

/// Fills the named fields of the current page, clicks `button` (a CSS selector), and waits for
/// the next page to have loaded.
async fn submit(c: &mut Chromium, tab: &str, fields: &[(&str, &str)], button: &str) {
    let mut script = String::from("window.__previous = true;");
    for (name, value) in fields {
        script.push_str(&format!(
            "document.querySelector('[name={name}]').value = {};",
            json!(value)
        ));
    }
    script.push_str(&format!(
        "document.querySelector({}).click(); true",
        json!(button)
    ));
    assert_eq!(c.eval(tab, &script).await, Some(json!(true)), "{button}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let next = c
            .eval(
                tab,
                "window.__previous === undefined && document.readyState === 'complete'",
            )
            .await;
        if next == Some(json!(true)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{button}: the next page"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What the pages of one tenant are seen with.
struct World {
    tid: String,
    slug: String,
    /// The main member's session cookie value.
    session: String,
    reset: String,
    verify: String,
    /// The tenant a member is invited to (and the picker's second choice).
    other: String,
}

async fn link_mail(inst: &Instance, to: &str, path: &str) -> String {
    let dir = inst.state.config.data_dir.join("mail");
    let mail = eventually(
        std::time::Duration::from_secs(20),
        "a link by mail",
        || async {
            mails(&dir)
                .into_iter()
                .find(|m| m.contains(&format!("To: {to}")) && m.contains(path))
        },
    )
    .await;
    path_of(&link_in(&mail, &inst.issuer))
}

/// A tenant (branded or not) with: a member signed in, with a live reset link, a live address
/// link and an invitation to a second tenant; a member with two-step verification on; and a
/// member of both tenants, the second of which requires two-step verification.
async fn world(inst: &Instance, slug: &str, branded: bool) -> World {
    let email = format!("pat@{slug}.test");
    let tid = inst.create_tenant(slug).await;
    let other = inst.create_tenant(&format!("{slug}-two")).await;
    let user = inst.create_member(&tid, &email, &["User"]).await;
    let admin = inst.admin_token().await;
    if branded {
        inst.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{tid}"),
            &admin,
            Some(json!({"policy": {
                "display_name": "Maple & Co",
                "logo_url": "https://127.0.0.1:9/logo.png",
                "primary_colour": "#7a1f5c",
            }})),
            200,
        )
        .await;
    }
    inst.call_expect(
        Method::PATCH,
        &format!("/admin/tenants/{other}"),
        &admin,
        Some(json!({"policy": {"mfa_required": true}})),
        200,
    )
    .await;
    // Two-step verification on for mia.
    let mia = inst
        .create_member(&tid, &format!("mia@{slug}.test"), &["User"])
        .await;
    let store = &inst.state.store;
    let master = inst.state.keys.master();
    let enrolment = tansu_identity::mfa::begin_enrolment(store, master, &mia, "mia", false)
        .await
        .unwrap()
        .unwrap();
    let code = totp_code_at(&enrolment.secret_base32, 0);
    tansu_identity::mfa::confirm_enrolment(store, master, &mia, &code)
        .await
        .unwrap()
        .expect("enrolled");
    // pia: a member of both.
    let pia = format!("pia@{slug}.test");
    inst.create_member(&tid, &pia, &["User"]).await;
    inst.create_member(&other, &pia, &["User"]).await;
    // pat: invited to the other tenant (as a tenant's admin invites an existing account).
    let now = tansu_identity::store::now_ms();
    store
        .upsert_invitation(&tansu_identity::store::invitations::InvitationRow {
            id: tansu_identity::store::new_id(),
            tenant_id: other.clone(),
            email: email.clone(),
            roles: vec!["User".into()],
            invited_by: "user:someone".into(),
            created_at: now,
            expires_at: now + 86_400_000,
        })
        .await
        .unwrap();
    let signed = sign_in_with_refresh(inst, &email, USER_PASSWORD, &tid).await;
    let mut browser = Browser::new(inst, None);
    let forgot = format!("/account/password/forgot?tenant={slug}");
    let fields = [("email", email.as_str()), ("tenant", slug)];
    let (status, _) = browser
        .submit(&forgot, "/account/password/forgot", &fields)
        .await;
    assert_eq!(status, 200);
    let reset = link_mail(inst, &email, "reset?token=").await;
    let row = store.user_by_id(&user).await.unwrap().unwrap();
    let tenant = store.tenant_by_id(&tid).await.unwrap();
    let sent = inst
        .state
        .mailer()
        .send_link(EMAIL_VERIFICATION, &row, tenant.as_ref())
        .await
        .unwrap();
    assert!(sent);
    let verify = link_mail(inst, &email, "verify?token=").await;
    World {
        tid,
        slug: slug.to_owned(),
        session: signed.session.split_once('=').unwrap().1.to_owned(),
        reset,
        verify,
        other,
    }
}

/// How a page is reached.
enum Reach {
    /// Opened by its URL.
    Open(String),
    /// After the sign-in form at this authorization URL, as (email).
    SignIn(String, String),
    /// By the button the selector names, on the page before.
    Click(String),
}

#[tokio::test]
async fn every_sign_in_and_account_page_in_chromium_with_axe() {
    let Some(chromium) = tansu_shared::testing::chromium("account pages in Chromium") else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let db = TestDb::sqlite().await;
    let inst = Instance::start(&db, "", |_| {}).await;
    inst.tenant_app().await;
    inst.create_client(json!({
        "client_id": "third-app",
        "name": "Third-party app",
        "client_type": "public",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://app.example/cb"],
        "scopes": ["openid", "email", "profile"],
    }))
    .await;
    let out = screenshot_dir();
    let mut c = Chromium::start(&chromium).await;
    let tab = c.tab().await;
    c.call(Some(&tab), "Page.enable", json!({})).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (variant, slug, branded) in [
        ("plain", "plain-shop", false),
        ("branded", "maple-shop", true),
    ] {
        let w = world(&inst, slug, branded).await;
        let (login, _) = auth_query("tenant-app", "openid", Some(&w.tid));
        let (third, _) = auth_query("third-app", "openid email", Some(&w.tid));
        let (anywhere, _) = auth_query("tenant-app", "openid", None);
        let pat = format!("pat@{}.test", w.slug);
        // (name, how it is reached, whether it wears the tenant's brand, cookies cleared first).
        let pages: Vec<(&str, Reach, bool, bool)> = vec![
            (
                "login",
                Reach::Open(format!("/connect/authorize?{login}")),
                true,
                true,
            ),
            (
                "forgot",
                Reach::Open(format!("/account/password/forgot?tenant={slug}")),
                true,
                false,
            ),
            ("reset", Reach::Open(w.reset.clone()), true, false),
            ("verify-address", Reach::Open(w.verify.clone()), true, false),
            (
                "register",
                Reach::Open("/register".to_owned()),
                false,
                false,
            ),
            (
                "consent",
                Reach::SignIn(format!("/connect/authorize?{third}"), pat.clone()),
                true,
                true,
            ),
            (
                "mfa-code",
                Reach::SignIn(
                    format!("/connect/authorize?{login}"),
                    format!("mia@{slug}.test"),
                ),
                true,
                true,
            ),
            (
                "tenant-picker",
                Reach::SignIn(
                    format!("/connect/authorize?{anywhere}"),
                    format!("pia@{slug}.test"),
                ),
                false,
                true,
            ),
            (
                "mfa-enrol",
                Reach::Click(format!("button[value='{}']", w.other)),
                false,
                false,
            ),
            ("account", Reach::Open("/account".to_owned()), true, true),
            (
                "password",
                Reach::Open("/account/password".to_owned()),
                true,
                false,
            ),
            (
                "sessions",
                Reach::Open("/account/sessions".to_owned()),
                true,
                false,
            ),
            ("mfa", Reach::Open("/account/mfa".to_owned()), true, false),
            (
                "passkeys",
                Reach::Open("/account/passkeys".to_owned()),
                true,
                false,
            ),
            (
                "invitations",
                Reach::Open("/account/invitations".to_owned()),
                true,
                false,
            ),
            (
                "delete",
                Reach::Open("/account/delete".to_owned()),
                true,
                false,
            ),
        ];
        for (width, height, mobile, size) in
            [(1280, 900, false, "desktop"), (390, 844, true, "phone")]
        {
            c.call(
                Some(&tab),
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await;
            for (name, reach, wears_brand, fresh) in &pages {
                if *fresh {
                    c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
                        .await;
                }
                // The account pages are seen with the member's session.
                if *name == "account" {
                    c.call(
                        Some(&tab),
                        "Network.setCookie",
                        json!({"name": "tansu_session", "value": w.session, "url": inst.url("/")}),
                    )
                    .await;
                }
                match reach {
                    Reach::Open(path) => {
                        let url = inst.url(path);
                        assert_eq!(c.navigate(&tab, &url).await, None, "{url}");
                    }
                    Reach::SignIn(path, email) => {
                        let url = inst.url(path);
                        assert_eq!(c.navigate(&tab, &url).await, None, "{url}");
                        let fields = [("email", email.as_str()), ("password", USER_PASSWORD)];
                        submit(&mut c, &tab, &fields, "form button[type=submit]").await;
                    }
                    Reach::Click(selector) => submit(&mut c, &tab, &[], selector).await,
                }
                let title: Value = c.eval(&tab, "document.title").await.unwrap_or_default();
                let title = title.as_str().unwrap_or_default().to_owned();
                let heading: Value = c
                    .eval(&tab, "document.querySelector('h1')?.textContent")
                    .await
                    .unwrap_or_default();
                let heading = heading.as_str().unwrap_or_default().to_owned();
                // Each page is the one meant (not an error page), in the tenant's look if it knows the tenant.
                let expected = match *name {
                    "consent" => "Allow access?",
                    "mfa-code" => "Verification code",
                    "tenant-picker" => "Choose a tenant",
                    "mfa-enrol" | "mfa" => "Set up two-step verification",
                    "invitations" => "Invitations",
                    _ => "",
                };
                assert!(
                    heading.starts_with(expected),
                    "{variant} {name}: {heading} ({title})"
                );
                if *name == "invitations" {
                    let listed = c
                        .eval(
                            &tab,
                            "document.querySelectorAll('button[value=accept]').length",
                        )
                        .await;
                    assert_eq!(listed, Some(json!(1)), "{variant}: the pending invitation");
                }
                if *wears_brand {
                    let brand = if branded {
                        "Maple & Co".to_owned()
                    } else {
                        format!("Shop {slug}")
                    };
                    assert!(title.ends_with(&brand), "{variant} {name}: {title}");
                }
                screenshot(
                    &mut c,
                    &tab,
                    &out.join(format!("{variant}-{name}-{size}.png")),
                )
                .await;
                // Nothing wider than the phone: no sideways scrolling.
                let overflow = c
                    .eval(
                        &tab,
                        &format!("document.documentElement.scrollWidth > {width}"),
                    )
                    .await;
                if overflow == Some(json!(true)) {
                    failures.push(format!("{variant} {name} {size}: wider than the window"));
                }
                for v in axe_violations(&mut c, &tab, &axe).await {
                    failures.push(format!("{variant} {name} {size}: {v}"));
                }
                checked += 1;
            }
        }
    }
    println!(
        "account pages in Chromium: {checked} page views checked with axe; screenshots in {}",
        out.display()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(c);
    inst.stop().await;
    db.cleanup().await;
}
