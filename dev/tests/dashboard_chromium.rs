//! The admin dashboard in a real browser: headless Chromium, driven over the DevTools
//! protocol (`tansu_shared::testing::browser`), through the TLS gateway of a stack of its own.
//! The platform admin signs in through identity's login form, visits every page (a screenshot
//! each, plus phone width), creates a tenant, invites a user and resets their MFA, adds and
//! tests an external provider and saves its sign-in settings, rotates a key, re-wraps under the master key, changes a policy
//! and finds the events those actions produced; then the tenant admin signs in and sees only
//! their own tenant. Screenshots go to `$CARGO_TARGET_DIR/dashboard-screenshots/`.

#[path = "dashboard/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tansu_shared::testing::browser::Chromium;

/// The tenant admin the test creates (Owner of `shop-one`).
const OWNER: &str = "boss@shop-one.example";

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn shot_name(path: &str) -> String {
    if path.is_empty() {
        "overview".to_owned()
    } else {
        path.replace('/', "-")
    }
}

/// One tab of headless Chromium (the shared DevTools client), with the waits this suite needs.
struct Tab {
    c: Chromium,
    tab: String,
}

impl Tab {
    async fn start(path: &Path) -> Tab {
        let mut c = Chromium::start_with(
            path,
            &["--ignore-certificate-errors", "--window-size=1280,900"],
        )
        .await;
        let tab = c.tab().await;
        Tab { c, tab }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.c.call(Some(&self.tab), method, params).await
    }

    async fn eval(&mut self, _tab: &str, expr: &str) -> Value {
        self.c
            .eval(&self.tab, expr)
            .await
            .unwrap_or_else(|| panic!("{expr}: the page navigated while it ran"))
    }

    /// Polls until `expr` evaluates to `true` on a completely loaded page.
    async fn wait_true(&mut self, _tab: &str, expr: &str, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let expr = format!("document.readyState === 'complete' && ({expr})");
        while self.c.eval(&self.tab, &expr).await != Some(json!(true)) {
            assert!(std::time::Instant::now() < deadline, "never {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `location.href` starts with `expect` and the document is complete.
    async fn wait_for(&mut self, _tab: &str, expect: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = self
                .c
                .eval(&self.tab, "document.readyState + ' ' + location.href")
                .await;
            let s = v.as_ref().and_then(|v| v.as_str()).unwrap_or("").to_owned();
            if let Some(href) = s.strip_prefix("complete ")
                && href.starts_with(expect)
            {
                return href.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {expect}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_text(&mut self, tab: &str, text: &str) {
        let expr = format!("document.body.innerText.includes({})", json!(text));
        self.wait_true(tab, &expr, &format!("showed {text:?}"))
            .await;
    }

    /// Fills and submits identity's login form.
    async fn log_in(&mut self, tab: &str, email: &str, password: &str) {
        let submitted = self
            .eval(
                tab,
                &format!(
                    "document.querySelector('input[name=email]').value={};\
                     document.querySelector('input[name=password]').value={};\
                     document.querySelector('form').submit(); true",
                    json!(email),
                    json!(password)
                ),
            )
            .await;
        assert_eq!(submitted, json!(true));
    }

    async fn goto(&mut self, tab: &str, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(tab, url).await;
    }

    async fn screenshot(&mut self, _tab: &str, file: &Path) {
        use base64::Engine;
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(file, png).unwrap();
    }
}

#[tokio::test]
async fn the_dashboard_in_chromium() {
    let Some(path) = tansu_shared::testing::chromium("dashboard_in_chromium") else {
        return;
    };
    let f = stack();
    let api = AdminApi::new().await;
    let shop_one = api.create_tenant("shop-one", "Shop One").await;
    api.create_tenant("shop-two", "Shop Two").await;
    api.create_member(&shop_one, OWNER, "Owner").await;
    let out = screenshot_dir();
    let base = f.base.clone();
    let issuer = f.issuer.clone();
    let mut c = Tab::start(&path).await;
    let tab = String::new();
    c.call("Page.enable", json!({})).await;

    // Signed out: the dashboard sends the browser to identity's sign-in form.
    c.call("Page.navigate", json!({ "url": base })).await;
    c.wait_for(&tab, &format!("{issuer}connect/authorize"))
        .await;
    c.screenshot(&tab, &out.join("sign-in.png")).await;
    c.log_in(&tab, ADMIN, PASSWORD).await;
    c.wait_for(&tab, &base).await;
    c.wait_text(&tab, "Service health").await;

    for (path, text) in PAGES {
        let url = format!("{base}{path}");
        c.goto(&tab, &url).await;
        c.wait_text(&tab, text).await;
        c.screenshot(&tab, &out.join(format!("{}.png", shot_name(path))))
            .await;
    }

    // Create a tenant through the form.
    c.goto(&tab, &format!("{base}tenants")).await;
    c.eval(
        &tab,
        "document.getElementById('slug').value='browser-shop';\
         document.getElementById('name').value='Browser Shop';\
         document.getElementById('create-tenant').click(); true",
    )
    .await;
    c.wait_text(&tab, "Tenant Browser Shop (browser-shop) created.")
        .await;
    c.screenshot(&tab, &out.join("tenants-created.png")).await;
    // Sort by name, then flip to descending (server-side, plain links).
    c.eval(&tab, "document.getElementById('sort-name').click(); true")
        .await;
    c.wait_text(&tab, "Name ▲").await;
    c.eval(&tab, "document.getElementById('sort-name').click(); true")
        .await;
    c.wait_text(&tab, "Name ▼").await;
    let names = c
        .eval(
            &tab,
            "[...document.querySelectorAll('tbody tr td:first-child strong')].map(e => e.textContent)",
        )
        .await;
    let names: Vec<String> = serde_json::from_value(names).unwrap();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted, "tenants by name, descending");
    c.screenshot(&tab, &out.join("tenants-sorted.png")).await;

    // Pick it in the users page's tenant picker and invite a user.
    c.goto(&tab, &format!("{base}users")).await;
    let picked = c
        .eval(
            &tab,
            "(() => { const s = document.getElementById('tenant');\
              const o = [...s.options].find(o => o.text.includes('browser-shop'));\
              if (!o) return false; s.value = o.value;\
              document.getElementById('pick-tenant').click(); return true; })()",
        )
        .await;
    assert_eq!(picked, json!(true));
    c.wait_text(&tab, "Invite or create a user").await;
    let tenant_url = c.eval(&tab, "location.href").await;
    let browser_shop = tenant_url
        .as_str()
        .and_then(|u| u.split("tenant=").nth(1))
        .unwrap_or_default()
        .to_owned();
    assert!(!browser_shop.is_empty(), "{tenant_url}");
    c.eval(
        &tab,
        "document.getElementById('email').value='ada@browser-shop.example';\
         document.getElementById('user-name').value='Ada';\
         document.getElementById('role').value='Admin';\
         document.getElementById('invite-user').click(); true",
    )
    .await;
    c.wait_text(&tab, "ada@browser-shop.example is now a member (Admin).")
        .await;
    c.screenshot(&tab, &out.join("users-invited.png")).await;
    // Reset Ada's MFA: the button, the confirmation, the result.
    c.eval(
        &tab,
        "[...document.querySelectorAll('a')].find(a => a.textContent.startsWith('Reset MFA')).click(); true",
    )
    .await;
    c.wait_text(&tab, "Reset the MFA of ada@browser-shop.example?")
        .await;
    c.screenshot(&tab, &out.join("users-mfa-confirm.png")).await;
    c.eval(&tab, "document.getElementById('confirm').click(); true")
        .await;
    c.wait_text(&tab, "MFA was reset").await;
    c.screenshot(&tab, &out.join("users-mfa-reset.png")).await;

    // Add an external provider (an https issuer; its discovery test fails with a reason).
    c.goto(
        &tab,
        &format!("{base}admin/providers?tenant={browser_shop}"),
    )
    .await;
    c.eval(
        &tab,
        "document.getElementById('provider-name').value='Browser IdP';\
         document.getElementById('issuer').value='https://idp.invalid/realms/shop';\
         document.getElementById('client_id').value='browser-shop';\
         document.getElementById('client_secret').value='browser-secret';\
         document.getElementById('save-provider').click(); true",
    )
    .await;
    c.wait_text(&tab, "Provider Browser IdP added.").await;
    c.screenshot(&tab, &out.join("admin-providers-added.png"))
        .await;
    c.eval(
        &tab,
        "document.querySelector('form[action$=\"/test\"] button').click(); true",
    )
    .await;
    c.wait_text(&tab, "Discovery of Browser IdP failed").await;
    c.screenshot(&tab, &out.join("admin-providers-tested.png"))
        .await;

    // Its sign-in settings, through the form of its edit page: identity's refusal (no
    // provider gives Owner) is shown with what was typed kept; then saved, and the admin API
    // answers them.
    c.eval(
        &tab,
        "[...document.querySelectorAll('a')].find(a => a.textContent === 'Edit').click(); true",
    )
    .await;
    c.wait_text(&tab, "Sign-in settings").await;
    c.eval(
        &tab,
        "document.getElementById('auto_provision').checked=true;\
         document.getElementById('trust_email').checked=true;\
         document.getElementById('email_claim').value='mail';\
         document.getElementById('group_roles').value='staff = Owner';\
         document.getElementById('allowed_domains').value='browser-shop.example';\
         document.getElementById('home_domains').value='browser-shop.example';\
         document.getElementById('save-sign-in').click(); true",
    )
    .await;
    c.wait_text(&tab, "Saving the sign-in settings failed")
        .await;
    c.wait_text(&tab, "Owner role cannot be given").await;
    let kept = c
        .eval(
            &tab,
            "document.getElementById('group_roles').value === 'staff = Owner' \
             && document.getElementById('trust_email').checked \
             && document.querySelector('label[for=group_roles]') !== null",
        )
        .await;
    assert_eq!(kept, json!(true));
    c.eval(
        &tab,
        "document.getElementById('group_roles').value='staff = Admin';\
         document.getElementById('save-sign-in').click(); true",
    )
    .await;
    c.wait_text(&tab, "The sign-in settings of Browser IdP were saved.")
        .await;
    c.screenshot(&tab, &out.join("admin-providers-sign-in.png"))
        .await;
    let providers = api
        .get(&format!("admin/tenants/{browser_shop}/providers"))
        .await;
    let saved = providers["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Browser IdP")
        .unwrap_or_else(|| panic!("{providers}"));
    assert_eq!(
        saved["sign_in"],
        json!({
            "auto_provision": true, "trust_email": true, "email_claim": "mail",
            "group_roles": {"staff": ["Admin"]},
            "allowed_domains": ["browser-shop.example"],
            "home_domains": ["browser-shop.example"],
        })
    );
    // The page shows the stored settings again.
    let shown = c
        .eval(
            &tab,
            "document.getElementById('trust_email').checked \
             && document.getElementById('group_roles').value === 'staff = Admin'",
        )
        .await;
    assert_eq!(shown, json!(true));

    // Rotate a key: the link, the confirmation, the result.
    c.goto(&tab, &format!("{base}keys")).await;
    c.eval(&tab, "document.getElementById('rotate-now').click(); true")
        .await;
    c.wait_text(&tab, "Rotate the signing keys now?").await;
    c.screenshot(&tab, &out.join("keys-rotate-confirm.png"))
        .await;
    c.eval(&tab, "document.getElementById('confirm').click(); true")
        .await;
    c.wait_text(&tab, "Rotation scheduled").await;
    // The rotation's progress page: the new key's stages and the lead time left.
    c.wait_for(&tab, &format!("{base}keys/rotation?kids="))
        .await;
    c.wait_text(&tab, "Waiting for the lead time").await;
    // The page refreshes itself while the rotation runs: read it between two loads.
    c.wait_true(
        &tab,
        "[...document.querySelectorAll('progress')].every(p => p.getAttribute('aria-label')) \
         && document.querySelectorAll('ol.stages li.done').length > 0",
        "labelled progress, a stage done",
    )
    .await;
    c.screenshot(&tab, &out.join("keys-rotated.png")).await;

    // The master key: its section, "Re-wrap now", the confirmation, the progress page.
    c.goto(&tab, &format!("{base}keys")).await;
    c.wait_text(&tab, "Master key").await;
    c.eval(&tab, "document.getElementById('rewrap-now').click(); true")
        .await;
    c.wait_text(&tab, "Re-wrap every row").await;
    c.screenshot(&tab, &out.join("keys-master-key-confirm.png"))
        .await;
    c.eval(&tab, "document.getElementById('confirm').click(); true")
        .await;
    c.wait_for(&tab, &format!("{base}keys/master-key")).await;
    c.wait_text(&tab, "Re-wrap done").await;
    c.screenshot(&tab, &out.join("keys-master-key.png")).await;

    // Change a policy.
    c.goto(&tab, &format!("{base}settings?tenant={browser_shop}"))
        .await;
    c.eval(
        &tab,
        "document.getElementById('password_min_length').value='16';\
         document.getElementById('mfa_required').checked=true;\
         document.getElementById('save-policy').click(); true",
    )
    .await;
    c.wait_text(&tab, "The policy of browser-shop was saved.")
        .await;
    c.screenshot(&tab, &out.join("settings-saved.png")).await;

    // Every per-tenant page with the tenant chosen.
    for (path, text) in TENANT_PAGES {
        c.goto(&tab, &format!("{base}{path}?tenant={browser_shop}"))
            .await;
        c.wait_text(&tab, text).await;
        c.screenshot(&tab, &out.join(format!("{}-tenant.png", shot_name(path))))
            .await;
    }

    // Filter the security events: the tenant's changes are there.
    c.goto(&tab, &format!("{base}admin/security-events")).await;
    c.eval(
        &tab,
        &format!(
            "document.getElementById('tenant').value='{browser_shop}';\
             document.getElementById('type').value='provider.change';\
             document.getElementById('filter-events').click(); true"
        ),
    )
    .await;
    c.wait_text(&tab, "Event chain of tenant").await;
    let found = c
        .eval(&tab, "document.querySelectorAll('tr.event').length")
        .await;
    assert_eq!(
        found,
        json!(2),
        "the provider's creation and its sign-in settings"
    );
    c.screenshot(&tab, &out.join("admin-security-events-filtered.png"))
        .await;
    for (kind, want) in [("tenant.change", 2), ("user.change", 1)] {
        c.goto(
            &tab,
            &format!("{base}admin/security-events?tenant={browser_shop}&type={kind}&verify=1"),
        )
        .await;
        c.wait_text(&tab, "intact").await;
        let n = c
            .eval(&tab, "document.querySelectorAll('tr.event').length")
            .await;
        assert_eq!(n, json!(want), "{kind}");
    }
    c.goto(
        &tab,
        &format!("{base}admin/security-events?tenant=platform&type=keys.rotate"),
    )
    .await;
    c.eval(
        &tab,
        "document.getElementById('verify-chain').click(); true",
    )
    .await;
    // A verification job at identity; the page follows it to the result.
    c.wait_for(
        &tab,
        &format!("{base}admin/security-events?tenant=platform&type=keys.rotate&verification="),
    )
    .await;
    c.wait_text(&tab, "intact").await;
    c.wait_text(&tab, "events checked").await;
    c.eval(
        &tab,
        "document.querySelector('tr.event details').open = true; true",
    )
    .await;
    c.screenshot(&tab, &out.join("admin-security-events-detail.png"))
        .await;

    // The layout at phone width.
    c.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
    )
    .await;
    for (path, text, name) in [
        (String::new(), "Activity", "overview-phone"),
        ("clients".to_owned(), "Create a client", "clients-phone"),
        (
            format!("users?tenant={browser_shop}"),
            "Invite or create a user",
            "users-phone",
        ),
        (
            "admin/security-events".to_owned(),
            "Export CSV",
            "security-events-phone",
        ),
        ("keys".to_owned(), "Master key", "keys-phone"),
        (
            "keys/rotation".to_owned(),
            "Waiting for the lead time",
            "keys-rotation-phone",
        ),
        (
            "keys/master-key".to_owned(),
            "Re-wrap done",
            "master-key-phone",
        ),
    ] {
        c.goto(&tab, &format!("{base}{path}")).await;
        c.wait_text(&tab, text).await;
        let overflow = c
            .eval(
                &tab,
                "document.documentElement.scrollWidth <= window.innerWidth + 1",
            )
            .await;
        c.screenshot(&tab, &out.join(format!("{name}.png"))).await;
        assert_eq!(
            overflow,
            json!(true),
            "no horizontal page scroll at phone width on /{path}"
        );
    }
    c.call("Emulation.clearDeviceMetricsOverride", json!({}))
        .await;

    // Sign out through the button: RP-initiated logout, back on the signed-out page.
    c.eval(
        &tab,
        "document.querySelector('form[action$=\"logout\"] button').click(); true",
    )
    .await;
    c.wait_for(&tab, &format!("{base}signed-out")).await;
    c.wait_text(&tab, "signed out").await;
    c.screenshot(&tab, &out.join("signed-out.png")).await;

    // The tenant admin (Owner of shop-one): their own tenant only.
    c.call("Page.navigate", json!({ "url": format!("{base}users") }))
        .await;
    c.wait_for(&tab, &format!("{issuer}connect/authorize"))
        .await;
    c.log_in(&tab, OWNER, OWNER_PASSWORD).await;
    c.wait_for(&tab, &format!("{base}users")).await;
    c.wait_text(&tab, "Invite or create a user").await;
    c.screenshot(&tab, &out.join("tenant-admin-users.png"))
        .await;
    for (path, text) in TENANT_PAGES {
        c.goto(&tab, &format!("{base}{path}")).await;
        c.wait_text(&tab, text).await;
        let leaks = c
            .eval(
                &tab,
                "['Browser Shop','browser-shop','Shop Two'].some(t => document.body.innerText.includes(t))",
            )
            .await;
        assert_eq!(leaks, json!(false), "/{path} shows another tenant");
        c.screenshot(
            &tab,
            &out.join(format!("tenant-admin-{}.png", shot_name(path))),
        )
        .await;
    }
    let nav = c
        .eval(&tab, "document.querySelector('nav.side').innerText")
        .await;
    let nav = nav.as_str().unwrap_or_default();
    assert!(
        !nav.contains("Tenants") && !nav.contains("Signing keys"),
        "{nav}"
    );
    c.goto(&tab, &format!("{base}settings")).await;
    c.eval(
        &tab,
        "document.getElementById('lockout_threshold').value='8';\
         document.getElementById('save-policy').click(); true",
    )
    .await;
    c.wait_text(&tab, "The policy of shop-one was saved.").await;
    c.screenshot(&tab, &out.join("tenant-admin-settings-saved.png"))
        .await;
    c.goto(&tab, &base).await;
    c.wait_text(&tab, "Activity").await;
    c.screenshot(&tab, &out.join("tenant-admin-overview.png"))
        .await;
    c.goto(&tab, &format!("{base}users?tenant={browser_shop}"))
        .await;
    c.wait_text(&tab, "There is no such tenant or item.").await;
    c.screenshot(&tab, &out.join("tenant-admin-other-tenant.png"))
        .await;
    c.goto(&tab, &format!("{base}tenants")).await;
    c.wait_text(&tab, "Platform administrators only").await;
    c.goto(&tab, &format!("{base}keys/master-key")).await;
    c.wait_text(&tab, "Platform administrators only").await;
    let shown = c
        .eval(&tab, "document.body.innerText.includes('Re-wrap')")
        .await;
    assert_eq!(shown, json!(false), "no master key for a tenant admin");
    c.screenshot(&tab, &out.join("tenant-admin-master-key.png"))
        .await;
    assert!(!shop_one.is_empty());
}
