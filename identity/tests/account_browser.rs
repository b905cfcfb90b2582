//! The sign-in, reset and account pages in headless Chromium: a screenshot of every page at
//! desktop and phone width, with and without a tenant's branding, and axe-core (npm) run in the
//! page: no serious or critical accessibility violation on any of them. Screenshots go to
//! `$CARGO_TARGET_DIR/account-screenshots/`. axe-core is read from `TANSU_AXE` (default
//! `~/.cache/tansu/npm/node_modules/axe-core/axe.min.js`, where `.ci/run` installs it).

mod common;

use std::path::PathBuf;

use common::account::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
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

/// A tenant, a member signed in to it (session cookie value) and a live reset link's path.
async fn world(
    inst: &Instance,
    slug: &str,
    email: &str,
    branded: bool,
) -> (String, String, String) {
    let tid = inst.create_tenant(slug).await;
    inst.create_member(&tid, email, &["User"]).await;
    if branded {
        let admin = inst.admin_token().await;
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
    let signed = sign_in_with_refresh(inst, email, USER_PASSWORD, &tid).await;
    let mut browser = Browser::new(inst, None);
    let forgot = format!("/account/password/forgot?tenant={slug}");
    let (status, _) = browser
        .submit(
            &forgot,
            "/account/password/forgot",
            &[("email", email), ("tenant", slug)],
        )
        .await;
    assert_eq!(status, 200);
    let dir = inst.state.config.data_dir.join("mail");
    let link = eventually(
        std::time::Duration::from_secs(20),
        "the reset mail",
        || async {
            mails(&dir)
                .into_iter()
                .find(|m| m.contains(&format!("To: {email}")) && m.contains("reset?token="))
        },
    )
    .await;
    let session = signed.session.split_once('=').unwrap().1.to_owned();
    (tid, session, path_of(&link_in(&link, &inst.issuer)))
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
    let out = screenshot_dir();
    let mut c = Chromium::start(&chromium).await;
    let tab = c.tab().await;
    c.call(Some(&tab), "Page.enable", json!({})).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (variant, slug, email, branded) in [
        ("plain", "plain-shop", "pat@plain.test", false),
        ("branded", "maple-shop", "max@maple.test", true),
    ] {
        let (tid, session, reset) = world(&inst, slug, email, branded).await;
        let (login, _) = auth_query("tenant-app", "openid", Some(&tid));
        // Pages seen signed out first, then with the member's session.
        let signed_out = [
            ("login", format!("/connect/authorize?{login}")),
            ("forgot", format!("/account/password/forgot?tenant={slug}")),
            ("reset", reset.clone()),
        ];
        let signed_in = [
            ("account", "/account".to_owned()),
            ("password", "/account/password".to_owned()),
            ("sessions", "/account/sessions".to_owned()),
            ("mfa", "/account/mfa".to_owned()),
            ("passkeys", "/account/passkeys".to_owned()),
            ("invitations", "/account/invitations".to_owned()),
            ("delete", "/account/delete".to_owned()),
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
            c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
                .await;
            for (i, (name, path)) in signed_out.iter().chain(signed_in.iter()).enumerate() {
                if i == signed_out.len() {
                    c.call(
                        Some(&tab),
                        "Network.setCookie",
                        json!({"name": "tansu_session", "value": session, "url": inst.url("/")}),
                    )
                    .await;
                }
                let url = inst.url(path);
                assert_eq!(c.navigate(&tab, &url).await, None, "{url}");
                let title: Value = c.eval(&tab, "document.title").await.unwrap_or_default();
                let title = title.as_str().unwrap_or_default().to_owned();
                // The pages that know the tenant wear its brand.
                let knows = [
                    "login", "forgot", "reset", "account", "password", "sessions", "passkeys",
                    "delete",
                ];
                if branded && knows.contains(name) {
                    assert!(title.ends_with("Maple & Co"), "{name}: {title}");
                }
                if !branded && knows.contains(name) {
                    assert!(title.ends_with("Shop plain-shop"), "{name}: {title}");
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
