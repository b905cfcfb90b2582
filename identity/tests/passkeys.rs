//! Passkeys end to end in headless Chromium with its virtual authenticator (DevTools
//! `WebAuthn.addVirtualAuthenticator`: CTAP2, internal, resident keys, user verification):
//! registration on the account page, passwordless sign-in on a tenant's login page, a passkey
//! as the second factor after the password, a recovery code in its place, a cloned authenticator (a signature counter that
//! went back) refused and recorded, a passkey of another tenant's user refused at tenant A,
//! removal on the account page and through the admin API, and a tenant whose policy requires
//! passkeys making a member add one during the sign-in. On SQLite and PostgreSQL.
//!
//! WebAuthn needs a secure context and a domain as the relying party id: the issuer is
//! `http://localhost:<port>/`.

mod common;

use std::time::{Duration, Instant};

use common::account::sign_in_with_refresh;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::browser::Chromium;

/// Polls `expr` in the tab until it is `true` (20 s at most).
async fn wait_for(c: &mut Chromium, tab: &str, expr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if c.eval(tab, expr).await == Some(json!(true)) {
            return;
        }
        let text = c
            .eval(tab, "document.body && document.body.innerText")
            .await;
        assert!(
            Instant::now() < deadline,
            "{expr} within 20 s; the page says: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// axe-core's serious and critical violations on the tab's page (axe-core from `TANSU_AXE`,
/// default `~/.cache/tansu/npm/node_modules/axe-core/axe.min.js`, where `.ci/run` installs it).
async fn axe_violations(c: &mut Chromium, tab: &str) -> Vec<String> {
    let path = std::env::var_os("TANSU_AXE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tansu/npm/node_modules/axe-core/axe.min.js")
        });
    let Ok(axe) = std::fs::read_to_string(&path) else {
        tansu_shared::testing::skip_or_fail::<()>("passkey pages with axe", "axe-core is missing");
        return Vec::new();
    };
    c.call(Some(tab), "Runtime.evaluate", json!({"expression": axe}))
        .await;
    let r = c
        .call(
            Some(tab),
            "Runtime.evaluate",
            json!({
                "expression": "axe.run(document, {resultTypes: ['violations']}).then(r => \
                    r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))",
                "awaitPromise": true,
                "returnByValue": true,
            }),
        )
        .await;
    let list = r["result"]["value"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Submits the login form with `email` and the test password.
async fn password(c: &mut Chromium, tab: &str, email: &str) {
    gesture(
        c,
        tab,
        &format!(
            "document.querySelector('input[name=email]').value = {email:?}; \
             document.querySelector('input[name=password]').value = {USER_PASSWORD:?}; \
             document.querySelector('form[action$=\"login\"]').submit()"
        ),
    )
    .await;
}

/// Runs `expr` as a user's gesture (a click).
async fn gesture(c: &mut Chromium, tab: &str, expr: &str) {
    let r = c
        .call(
            Some(tab),
            "Runtime.evaluate",
            json!({"expression": expr, "userGesture": true, "returnByValue": true}),
        )
        .await;
    assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
}

/// The code the browser was sent to the client with, after protocol event `since`.
async fn redirected_code(c: &mut Chromium, tab: &str, since: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = c.events()[since..].iter().find_map(|e| {
            let url = e["params"]["request"]["url"].as_str()?;
            (e["method"] == "Network.requestWillBeSent"
                && url.starts_with("https://app.example/cb"))
            .then(|| url.to_owned())
        });
        if let Some(url) = found {
            return query_param(&url, "code").unwrap_or_else(|| panic!("a code in {url}"));
        }
        let text = c
            .eval(tab, "document.body && document.body.innerText")
            .await;
        assert!(
            Instant::now() < deadline,
            "the browser went back to the client within 20 s; the page says: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh virtual authenticator (the browser's only one); returns its id.
async fn authenticator(c: &mut Chromium, tab: &str, old: Option<&str>) -> String {
    if let Some(id) = old {
        c.call(
            Some(tab),
            "WebAuthn.removeVirtualAuthenticator",
            json!({"authenticatorId": id}),
        )
        .await;
    }
    let r = c
        .call(
            Some(tab),
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                "hasUserVerification": true, "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        )
        .await;
    r["authenticatorId"].as_str().unwrap().to_owned()
}

async fn credentials(c: &mut Chromium, tab: &str, auth: &str) -> Vec<Value> {
    let r = c
        .call(
            Some(tab),
            "WebAuthn.getCredentials",
            json!({"authenticatorId": auth}),
        )
        .await;
    r["credentials"].as_array().unwrap().clone()
}

/// Puts the authenticator's one credential back with signature counter `count`: a copy of the
/// key that lives elsewhere (a lower count) or the original moving on (a higher one).
async fn set_sign_count(c: &mut Chromium, tab: &str, auth: &str, count: i64) -> i64 {
    let mut creds = credentials(c, tab, auth).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    let mut cred = creds.remove(0);
    let before = cred["signCount"].as_i64().unwrap();
    c.call(
        Some(tab),
        "WebAuthn.removeCredential",
        json!({"authenticatorId": auth, "credentialId": cred["credentialId"]}),
    )
    .await;
    cred["signCount"] = json!(count);
    c.call(
        Some(tab),
        "WebAuthn.addCredential",
        json!({"authenticatorId": auth, "credential": cred}),
    )
    .await;
    before
}

struct Site<'a> {
    inst: &'a Instance,
    /// `http://localhost:<port>/`.
    base: String,
}

/// An instance at `http://localhost:<port>/` (a relying party id is a domain) with the tenant
/// app.
async fn localhost_instance(db: &TestDb) -> Instance {
    let inst = Instance::start(db, "", |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    inst.tenant_app().await;
    inst
}

/// A Chromium tab with the Page, Network and WebAuthn domains enabled.
async fn webauthn_tab(chromium: &std::path::Path) -> (Chromium, String) {
    let mut c = Chromium::start(chromium).await;
    let tab = c.tab().await;
    for domain in ["Page.enable", "Network.enable", "WebAuthn.enable"] {
        c.call(Some(&tab), domain, json!({})).await;
    }
    (c, tab)
}

impl<'a> Site<'a> {
    fn of(inst: &'a Instance) -> Self {
        Site {
            inst,
            base: inst.state.config.issuer.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Opens the account's passkeys page as the holder of `session` and adds a passkey.
    async fn register(&self, c: &mut Chromium, tab: &str, session: &str, name: &str) {
        c.call(Some(tab), "Network.clearBrowserCookies", json!({}))
            .await;
        c.call(
            Some(tab),
            "Network.setCookie",
            json!({"name": "tansu_session", "value": session, "url": self.base}),
        )
        .await;
        assert_eq!(c.navigate(tab, &self.url("account/passkeys")).await, None);
        wait_for(
            c,
            tab,
            "!document.querySelector('form[data-passkey]').hidden",
        )
        .await;
        gesture(
            c,
            tab,
            &format!(
                "document.getElementById('passkey-name').value = {name:?}; \
                 document.getElementById('passkey-current').value = {USER_PASSWORD:?}; \
                 document.querySelector('[data-passkey-start]').click()"
            ),
        )
        .await;
        wait_for(
            c,
            tab,
            "document.body.innerText.includes('The passkey was added.')",
        )
        .await;
    }

    /// Opens tenant `tid`'s login page signed out and signs in with the passkey; returns the
    /// protocol-event index before the click and the verifier of the request.
    async fn passwordless(&self, c: &mut Chromium, tab: &str, tid: &str) -> (usize, String) {
        c.call(Some(tab), "Network.clearBrowserCookies", json!({}))
            .await;
        let (query, verifier) = auth_query("tenant-app", "openid", Some(tid));
        let login = self.url(&format!("connect/authorize?{query}"));
        assert_eq!(c.navigate(tab, &login).await, None);
        wait_for(
            c,
            tab,
            "!document.querySelector('form[data-passkey]').hidden",
        )
        .await;
        let since = c.events().len();
        gesture(
            c,
            tab,
            "document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        (since, verifier)
    }

    async fn tokens(&self, code: &str, verifier: &str) -> Value {
        let resp = self
            .inst
            .redeem("tenant-app", code, "https://app.example/cb", Some(verifier))
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

async fn count(inst: &Instance, sql: &str) -> i64 {
    raw_count(&inst.state.store, sql).await
}

#[tokio::test]
async fn passkeys_register_sign_in_and_refuse_clones_and_other_tenants() {
    let Some(chromium) = tansu_shared::testing::chromium("passkeys in Chromium") else {
        return;
    };
    for db in backends("passkeys").await {
        let inst = localhost_instance(&db).await;
        let site = Site::of(&inst);
        let a = inst.create_tenant(&format!("pk-a-{}", db.name())).await;
        let b = inst.create_tenant(&format!("pk-b-{}", db.name())).await;
        let alice = inst.create_member(&a, "alice@a.test", &["User"]).await;
        let bob = inst.create_member(&b, "bob@b.test", &["User"]).await;
        let alice_session = sign_in_with_refresh(&inst, "alice@a.test", USER_PASSWORD, &a)
            .await
            .session;
        let bob_session = sign_in_with_refresh(&inst, "bob@b.test", USER_PASSWORD, &b)
            .await
            .session;
        let value = |c: &str| c.split_once('=').unwrap().1.to_owned();

        let (mut c, tab) = webauthn_tab(&chromium).await;
        let auth = authenticator(&mut c, &tab, None).await;

        // Registration on the account page: a discoverable credential, stored for A.
        site.register(&mut c, &tab, &value(&alice_session), "Alice's laptop")
            .await;
        assert_eq!(axe_violations(&mut c, &tab).await, Vec::<String>::new());
        // A first second factor comes with recovery codes, shown once.
        let recovery = c
            .eval(
                &tab,
                "document.querySelector('ul.recovery code').textContent",
            )
            .await
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("recovery codes on the page");
        let creds = credentials(&mut c, &tab, &auth).await;
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0]["isResidentCredential"], json!(true));
        assert_eq!(creds[0]["rpId"], json!("localhost"));
        let sql = format!(
            "SELECT COUNT(*) FROM passkeys WHERE user_id = '{alice}' AND tenant_id = '{a}' \
             AND name = 'Alice''s laptop'"
        );
        assert_eq!(count(&inst, &sql).await, 1);

        // The list of passkeys and the login page with its passkey button.
        assert_eq!(c.navigate(&tab, &site.url("account/passkeys")).await, None);
        assert_eq!(axe_violations(&mut c, &tab).await, Vec::<String>::new());
        c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
            .await;
        let (query, _) = auth_query("tenant-app", "openid", Some(&a));
        let login = site.url(&format!("connect/authorize?{query}"));
        assert_eq!(c.navigate(&tab, &login).await, None);
        wait_for(
            &mut c,
            &tab,
            "!document.querySelector('form[data-passkey]').hidden",
        )
        .await;
        assert_eq!(axe_violations(&mut c, &tab).await, Vec::<String>::new());

        // Passwordless at A's login page: signed in as Alice, to A, with a passkey.
        let (since, verifier) = site.passwordless(&mut c, &tab, &a).await;
        let code = redirected_code(&mut c, &tab, since).await;
        let tokens = site.tokens(&code, &verifier).await;
        let id = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], json!(alice));
        assert_eq!(id["tid"], json!(a));
        let amr: Vec<&str> = id["amr"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(amr.contains(&"hwk") && !amr.contains(&"pwd"), "{amr:?}");

        // A copy of the key (its counter behind the stored one) is refused and recorded.
        let used = set_sign_count(&mut c, &tab, &auth, 0).await;
        assert!(used > 0, "the virtual authenticator counts signatures");
        site.passwordless(&mut c, &tab, &a).await;
        wait_for(
            &mut c,
            &tab,
            "document.body.innerText.includes('may have been copied')",
        )
        .await;
        let cloned = "SELECT COUNT(*) FROM security_events WHERE type = 'passkey.cloned'";
        assert_eq!(count(&inst, cloned).await, 1);
        // The original key, moving on, still works.
        set_sign_count(&mut c, &tab, &auth, used + 5).await;

        // The passkey as the second factor after Alice's password.
        c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
            .await;
        let (query, verifier) = auth_query("tenant-app", "openid", Some(&a));
        let login = site.url(&format!("connect/authorize?{query}"));
        assert_eq!(c.navigate(&tab, &login).await, None);
        gesture(
            &mut c,
            &tab,
            &format!(
                "document.querySelector('input[name=email]').value = 'alice@a.test'; \
                 document.querySelector('input[name=password]').value = {USER_PASSWORD:?}; \
                 document.querySelector('form[action$=\"login\"]').submit()"
            ),
        )
        .await;
        wait_for(
            &mut c,
            &tab,
            "document.title.startsWith('Verification code') && \
             !document.querySelector('form[data-passkey]').hidden",
        )
        .await;
        let since = c.events().len();
        gesture(
            &mut c,
            &tab,
            "document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        let code = redirected_code(&mut c, &tab, since).await;
        let tokens = site.tokens(&code, &verifier).await;
        let id = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["sub"], json!(alice));
        let amr = id["amr"].to_string();
        assert!(
            amr.contains("pwd") && amr.contains("hwk") && amr.contains("mfa"),
            "{amr}"
        );

        // A recovery code stands in for the passkey at the second step.
        c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
            .await;
        let (query, verifier) = auth_query("tenant-app", "openid", Some(&a));
        let login = site.url(&format!("connect/authorize?{query}"));
        assert_eq!(c.navigate(&tab, &login).await, None);
        password(&mut c, &tab, "alice@a.test").await;
        wait_for(
            &mut c,
            &tab,
            "document.title.startsWith('Verification code')",
        )
        .await;
        let since = c.events().len();
        gesture(
            &mut c,
            &tab,
            &format!(
                "document.querySelector('input[name=code]').value = {recovery:?}; \
                 document.querySelector('form[action$=\"login/mfa\"]').submit()"
            ),
        )
        .await;
        let code = redirected_code(&mut c, &tab, since).await;
        let id = jwt_claims(
            site.tokens(&code, &verifier).await["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(id["amr"], json!(["pwd", "mfa"]));

        // Bob (tenant B) registers on an authenticator of his own.
        let bobs = authenticator(&mut c, &tab, Some(&auth)).await;
        site.register(&mut c, &tab, &value(&bob_session), "Bob's key")
            .await;
        // At A's login page his passkey is unknown: refused.
        site.passwordless(&mut c, &tab, &a).await;
        wait_for(
            &mut c,
            &tab,
            "document.body.innerText.includes('This passkey was not accepted here.')",
        )
        .await;
        let refused = "SELECT COUNT(*) FROM security_events WHERE type = 'sign_in' \
            AND outcome = 'failure' AND details LIKE '%unknown%'";
        assert_eq!(count(&inst, refused).await, 1);
        // At B's it signs him in.
        let (since, verifier) = site.passwordless(&mut c, &tab, &b).await;
        let code = redirected_code(&mut c, &tab, since).await;
        let id = jwt_claims(
            site.tokens(&code, &verifier).await["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!((&id["sub"], &id["tid"]), (&json!(bob), &json!(b)));

        // Bob removes it on his account page; then it signs in nowhere.
        c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
            .await;
        c.call(
            Some(&tab),
            "Network.setCookie",
            json!({"name": "tansu_session", "value": value(&bob_session), "url": site.base}),
        )
        .await;
        assert_eq!(c.navigate(&tab, &site.url("account/passkeys")).await, None);
        gesture(
            &mut c,
            &tab,
            "document.querySelector('form[action$=\"passkeys/remove\"]').submit()",
        )
        .await;
        wait_for(
            &mut c,
            &tab,
            "document.body.innerText.includes('The passkey was removed.')",
        )
        .await;
        let sql = format!("SELECT COUNT(*) FROM passkeys WHERE user_id = '{bob}'");
        assert_eq!(count(&inst, &sql).await, 0);
        site.passwordless(&mut c, &tab, &b).await;
        wait_for(
            &mut c,
            &tab,
            "document.body.innerText.includes('This passkey was not accepted here.')",
        )
        .await;

        // The admin API lists Alice's passkey in A (not in B) and removes it.
        let admin = inst.admin_token().await;
        let list = format!("/admin/tenants/{a}/users/{alice}/passkeys");
        let v = inst
            .call_expect(Method::GET, &list, &admin, None, 200)
            .await;
        assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v[0]["name"], json!("Alice's laptop"));
        assert!(v[0]["last_used_at"].is_string(), "{v}");
        let one = format!("{list}/{}", v[0]["id"].as_str().unwrap());
        let in_b = format!("/admin/tenants/{b}/users/{alice}/passkeys");
        inst.call_expect(Method::GET, &in_b, &admin, None, 404)
            .await;
        inst.call_expect(Method::DELETE, &one, &admin, None, 204)
            .await;
        inst.call_expect(Method::DELETE, &one, &admin, None, 404)
            .await;
        let v = inst
            .call_expect(Method::GET, &list, &admin, None, 200)
            .await;
        assert_eq!(v, json!([]));
        let changes = "SELECT COUNT(*) FROM security_events WHERE type = 'passkey.change'";
        // Two registrations, two removals.
        assert_eq!(count(&inst, changes).await, 4);

        // A tenant that requires passkeys: a member without one adds one during the sign-in,
        // after the password, and is signed in with both.
        let c_tid = inst.create_tenant(&format!("pk-c-{}", db.name())).await;
        inst.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{c_tid}"),
            &admin,
            Some(json!({"policy": {"passkeys_required": true}})),
            200,
        )
        .await;
        let carol = inst.create_member(&c_tid, "carol@c.test", &["User"]).await;
        authenticator(&mut c, &tab, Some(&bobs)).await;
        c.call(Some(&tab), "Network.clearBrowserCookies", json!({}))
            .await;
        let (query, verifier) = auth_query("tenant-app", "openid", Some(&c_tid));
        let login = site.url(&format!("connect/authorize?{query}"));
        assert_eq!(c.navigate(&tab, &login).await, None);
        gesture(
            &mut c,
            &tab,
            &format!(
                "document.querySelector('input[name=email]').value = 'carol@c.test'; \
                 document.querySelector('input[name=password]').value = {USER_PASSWORD:?}; \
                 document.querySelector('form[action$=\"login\"]').submit()"
            ),
        )
        .await;
        wait_for(
            &mut c,
            &tab,
            "document.title.startsWith('Add a passkey') && \
             !document.querySelector('form[data-passkey]').hidden",
        )
        .await;
        gesture(
            &mut c,
            &tab,
            "document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        // Signed in, the new recovery codes are shown once before going on.
        wait_for(
            &mut c,
            &tab,
            "document.querySelectorAll('ul.recovery code').length === 10",
        )
        .await;
        let since = c.events().len();
        gesture(&mut c, &tab, "document.querySelector('a.continue').click()").await;
        let code = redirected_code(&mut c, &tab, since).await;
        let id = jwt_claims(
            site.tokens(&code, &verifier).await["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!((&id["sub"], &id["tid"]), (&json!(carol), &json!(c_tid)));
        let amr = id["amr"].to_string();
        assert!(amr.contains("pwd") && amr.contains("hwk"), "{amr}");
        let sql = format!(
            "SELECT COUNT(*) FROM passkeys WHERE user_id = '{carol}' AND tenant_id = '{c_tid}'"
        );
        assert_eq!(count(&inst, &sql).await, 1);

        drop(c);
        inst.stop().await;
        db.cleanup().await;
    }
}

/// Signs in to `tenant`'s login page (`None`: no tenant named) with `email`'s password and
/// waits for the second factor's page with its passkey form.
async fn password_to_factor(
    site: &Site<'_>,
    c: &mut Chromium,
    tab: &str,
    email: &str,
    tenant: Option<&str>,
) -> String {
    c.call(Some(tab), "Network.clearBrowserCookies", json!({}))
        .await;
    let (query, verifier) = auth_query("tenant-app", "openid", tenant);
    let login = site.url(&format!("connect/authorize?{query}"));
    assert_eq!(c.navigate(tab, &login).await, None);
    password(c, tab, email).await;
    wait_for(
        c,
        tab,
        "document.title.startsWith('Verification code') && \
         !document.querySelector('form[data-passkey]').hidden",
    )
    .await;
    verifier
}

/// A passkey is a credential of one tenant, for the second factor as for a passwordless
/// sign-in: a member of A and B whose passkey was registered in B cannot use it after the
/// password at A (even when the page asks the authenticator for any of its passkeys); the
/// one registered in A works there; and when no tenant is named (the picker waits for the
/// second factor), the passkey used settles the tenant: B's signs in to B.
#[tokio::test]
async fn a_second_factor_takes_only_the_sign_ins_tenants_passkeys() {
    let Some(chromium) = tansu_shared::testing::chromium("passkeys in Chromium") else {
        return;
    };
    for db in backends("passkeys as a second factor per tenant").await {
        let inst = localhost_instance(&db).await;
        let site = Site::of(&inst);
        let a = inst.create_tenant(&format!("pkf-a-{}", db.name())).await;
        let b = inst.create_tenant(&format!("pkf-b-{}", db.name())).await;
        let dave = inst.create_member(&a, "dave@ab.test", &["User"]).await;
        let member = tansu_identity::store::tenants::MembershipRow {
            user_id: dave.clone(),
            tenant_id: b.clone(),
            roles: vec!["User".into()],
            created_at: tansu_identity::store::now_ms(),
        };
        inst.state.store.upsert_membership(&member).await.unwrap();
        // Both sessions before the first passkey (after it, a password alone signs in nowhere).
        let in_a = sign_in_with_refresh(&inst, "dave@ab.test", USER_PASSWORD, &a)
            .await
            .session;
        let in_b = sign_in_with_refresh(&inst, "dave@ab.test", USER_PASSWORD, &b)
            .await
            .session;
        let value = |c: &str| c.split_once('=').unwrap().1.to_owned();

        let (mut c, tab) = webauthn_tab(&chromium).await;
        // A's passkey on one authenticator (kept aside), B's on another.
        let first = authenticator(&mut c, &tab, None).await;
        site.register(&mut c, &tab, &value(&in_a), "Dave in A")
            .await;
        let a_key = credentials(&mut c, &tab, &first).await.remove(0);
        let second = authenticator(&mut c, &tab, Some(&first)).await;
        site.register(&mut c, &tab, &value(&in_b), "Dave in B")
            .await;
        let b_key = credentials(&mut c, &tab, &second).await.remove(0);
        for (tid, n) in [(&a, 1), (&b, 1)] {
            let sql = format!(
                "SELECT COUNT(*) FROM passkeys WHERE user_id = '{dave}' AND tenant_id = '{tid}'"
            );
            assert_eq!(count(&inst, &sql).await, n);
        }

        // At A, with only B's passkey at hand: the page asks for any passkey of the
        // authenticator (no allow-list), so B's answers, and the server refuses it.
        password_to_factor(&site, &mut c, &tab, "dave@ab.test", Some(&a)).await;
        gesture(
            &mut c,
            &tab,
            "navigator.credentials.get = ((get) => (o) => { delete o.publicKey.allowCredentials; \
             return get(o); })(navigator.credentials.get.bind(navigator.credentials)); \
             document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        wait_for(
            &mut c,
            &tab,
            "document.body.innerText.includes('This passkey was not accepted here.')",
        )
        .await;
        let refused = format!(
            "SELECT COUNT(*) FROM security_events WHERE type = 'mfa.verify' \
             AND outcome = 'failure' AND tenant_id = '{a}' AND details LIKE '%unknown%'"
        );
        assert_eq!(count(&inst, &refused).await, 1);

        // A's own passkey works at A.
        let third = authenticator(&mut c, &tab, Some(&second)).await;
        c.call(
            Some(&tab),
            "WebAuthn.addCredential",
            json!({"authenticatorId": third, "credential": a_key}),
        )
        .await;
        let verifier = password_to_factor(&site, &mut c, &tab, "dave@ab.test", Some(&a)).await;
        let since = c.events().len();
        gesture(
            &mut c,
            &tab,
            "document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        let code = redirected_code(&mut c, &tab, since).await;
        let id = jwt_claims(
            site.tokens(&code, &verifier).await["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!((&id["sub"], &id["tid"]), (&json!(dave), &json!(a)));
        assert!(id["amr"].to_string().contains("hwk"), "{id}");

        // No tenant named: the second factor comes before the picker, and B's passkey
        // settles the sign-in in B (no picker).
        c.call(
            Some(&tab),
            "WebAuthn.removeVirtualAuthenticator",
            json!({"authenticatorId": third}),
        )
        .await;
        let fourth = authenticator(&mut c, &tab, None).await;
        c.call(
            Some(&tab),
            "WebAuthn.addCredential",
            json!({"authenticatorId": fourth, "credential": b_key}),
        )
        .await;
        let verifier = password_to_factor(&site, &mut c, &tab, "dave@ab.test", None).await;
        let since = c.events().len();
        gesture(
            &mut c,
            &tab,
            "document.querySelector('[data-passkey-start]').click()",
        )
        .await;
        let code = redirected_code(&mut c, &tab, since).await;
        let id = jwt_claims(
            site.tokens(&code, &verifier).await["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!((&id["sub"], &id["tid"]), (&json!(dave), &json!(b)));

        drop(c);
        inst.stop().await;
        db.cleanup().await;
    }
}

/// A ceremony is single-use, expires, and answers only its own kind and binding.
#[tokio::test]
async fn ceremonies_are_single_use_bound_and_expire() {
    use tansu_identity::store::passkeys::CeremonyRow;
    for db in backends("passkey ceremonies").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let store = &inst.state.store;
        let now = tansu_identity::store::now_ms();
        let row = |hash: &[u8], expires_at| CeremonyRow {
            token_hash: hash.to_vec(),
            kind: "sign_in".into(),
            binding: vec![1; 32],
            user_id: None,
            tenant_id: None,
            state: "{}".into(),
            expires_at,
        };
        store
            .insert_passkey_ceremony(&row(b"live", now + 60_000))
            .await
            .unwrap();
        store
            .insert_passkey_ceremony(&row(b"dead", now - 1))
            .await
            .unwrap();
        let taken = store.take_passkey_ceremony(b"live", now).await.unwrap();
        assert_eq!(taken.map(|c| c.binding), Some(vec![1; 32]));
        assert!(
            store
                .take_passkey_ceremony(b"live", now)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .take_passkey_ceremony(b"dead", now)
                .await
                .unwrap()
                .is_none()
        );
        // A ceremony of another kind or binding does not verify an answer: the domain takes it
        // and refuses, and it is gone.
        let rp = tansu_identity::passkeys::RelyingParty::for_issuer("http://localhost:1/");
        let token = "a-token";
        let hash = tansu_identity::crypto::sha256(token.as_bytes());
        store
            .insert_passkey_ceremony(&row(&hash, now + 60_000))
            .await
            .unwrap();
        let v = tansu_identity::passkeys::finish_sign_in(store, &rp, (token, &[2; 32]), None, "{}")
            .await
            .unwrap();
        assert!(
            matches!(v, tansu_identity::passkeys::Verified::Expired),
            "{v:?}"
        );
        assert!(
            store
                .take_passkey_ceremony(&hash, now)
                .await
                .unwrap()
                .is_none()
        );
        inst.stop().await;
        db.cleanup().await;
    }
}
