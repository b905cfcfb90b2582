//! Sign-in through a tenant's external providers, end to end: a second identity service as the
//! upstream provider (button, home-realm discovery, provisioning on and off — a first sign-in's
//! address proven by mail first —, an unverified address never linking), a fake upstream that
//! signs its own ID tokens (wrong nonce, audience, signature, expiry refused; a trusted address
//! linking after the account's password; its discovery document and JWKS fetched once, the JWKS
//! again when it rotates its key; an address it verified but the provider is not trusted for,
//! `trust_email` off, neither verified nor linked; allowed domains proven only by a trusted
//! address), a provider of another tenant, a provider that is down; an address the provider is
//! not trusted for, proven through a mailed link (aiosmtpd) before any account has it: only in
//! the browser that signed in, once, before it expires, under its own tenant's provider. The
//! browser is a cookie jar per origin following redirects by hand.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use common::account::{SmtpServer, free_port, link_in, mails, nth_mail, smtp_to};
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::issuer::{TestKey, now, rsa_key, sign_with};

const SUITE: &str = "identity federation";
const APP_CB: &str = "https://app.example/cb";

/// A browser: cookies per origin (`host:port`), redirects followed by hand.
struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, HashMap<String, String>>,
}

fn origin(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    )
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: no_redirects(),
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> String {
        self.jar
            .get(&origin(url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    async fn send(&mut self, req: reqwest::RequestBuilder, url: &str) -> Page {
        let resp = req
            .header("cookie", self.cookie_header(url))
            .send_ok()
            .await;
        let jar = self.jar.entry(origin(url)).or_default();
        for v in resp.headers().get_all("set-cookie") {
            let (name, value) = v
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap();
            jar.insert(name.to_owned(), value.to_owned());
        }
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        // A relative `Location` is resolved against the request's URL.
        let location =
            location.map(|l| url::Url::parse(url).unwrap().join(&l).unwrap().to_string());
        Page {
            status: resp.status().as_u16(),
            location,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req, url).await
    }

    async fn post_owned(&mut self, url: &str, form: &[(String, String)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req, url).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req, url).await
    }

    /// GET `url`, then follow its redirects.
    async fn go(&mut self, url: &str) -> Page {
        let first = self.get(url).await;
        self.follow(first).await
    }

    /// Follows redirects (GET) until a page or the application's callback.
    async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..10 {
            match &page.location {
                Some(l) if !l.starts_with(APP_CB) => {
                    let l = l.clone();
                    page = self.get(&l).await;
                }
                _ => return page,
            }
        }
        panic!("too many redirects");
    }
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// The `href` of the button that signs in with `name`.
fn button(html: &str, name: &str) -> String {
    let end = html
        .find(&format!(">Sign in with {name}</a>"))
        .unwrap_or_else(|| panic!("no button for {name}: {html}"));
    let start = html[..end].rfind("href=\"").unwrap() + 6;
    unescape(&html[start..end - 1])
}

/// The downstream identity: tenant `shop` (and `other`), the first-party client `tenant-app`.
struct Downstream {
    id: Instance,
    shop: String,
    other: String,
}

/// The form of the page a mailed link opens: its action and fields.
async fn confirm_form(b: &mut Browser, link: &str) -> (String, Vec<(String, String)>) {
    let page = b.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let field = |name: &str| (name.to_owned(), hidden_field(&page.body, name).unwrap());
    let fields = vec![field("csrf"), field("token")];
    (form_action(&page.body, link), fields)
}

impl Downstream {
    async fn start(db: &TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    async fn start_with(db: &TestDb, tweak: impl FnOnce(&mut tansu_identity::Config)) -> Self {
        let id = Instance::start(db, "", tweak).await;
        id.tenant_app().await;
        let shop = id.create_tenant("shop").await;
        let other = id.create_tenant("other").await;
        Self { id, shop, other }
    }

    fn query(&self, tenant: &str) -> (String, String) {
        auth_query("tenant-app", "openid roles", Some(tenant))
    }

    async fn add_provider(&self, tid: &str, body: Value) -> String {
        let v = self
            .id
            .call_expect(
                Method::POST,
                &format!("/admin/tenants/{tid}/providers"),
                &self.id.admin_token().await,
                Some(body),
                201,
            )
            .await;
        v["id"].as_str().unwrap().to_owned()
    }

    async fn callback(&self, pid: &str) -> String {
        format!("{}federation/{pid}/callback", self.id.issuer)
    }

    /// Redeems the code of the application's callback; the access token's claims.
    async fn redeem(&self, location: &str, verifier: &str) -> Value {
        let code = query_param(location, "code").unwrap_or_else(|| panic!("no code: {location}"));
        let resp = self
            .id
            .redeem("tenant-app", &code, APP_CB, Some(verifier))
            .await;
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        jwt_claims(v["access_token"].as_str().unwrap())
    }
}

/// A second identity service as the upstream provider, with its client `downstream`.
async fn upstream_tansu() -> (TestDb, Instance, String) {
    let db = TestDb::sqlite().await;
    let up = Instance::start(&db, "", |_| {}).await;
    let (_, secret) = up
        .create_client(json!({
            "client_id": "downstream",
            "name": "Downstream identity",
            "first_party": true,
            "client_type": "confidential",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://placeholder.example/cb"],
            "scopes": ["openid", "profile", "email"],
        }))
        .await;
    (db, up, secret)
}

async fn allow_callback(up: &Instance, callbacks: Vec<String>) {
    up.call_expect(
        Method::PATCH,
        "/admin/clients/downstream",
        &up.admin_token().await,
        Some(json!({"redirect_uris": callbacks})),
        200,
    )
    .await;
}

/// Signs in at the upstream's login form (the page `page` shows) and follows back.
async fn upstream_sign_in(b: &mut Browser, up: &Instance, page: Page, email: &str) -> Page {
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden_field(&page.body, "csrf").unwrap();
    let request = hidden_field(&page.body, "request").unwrap();
    let back = b
        .post(
            &up.url("/login"),
            &[
                ("csrf", csrf.as_str()),
                ("request", request.as_str()),
                ("email", email),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    b.follow(back).await
}

#[tokio::test]
async fn sign_in_through_another_tansu() {
    for db in backends(SUITE).await {
        let down = Downstream::start(&db).await;
        let (up_db, up, secret) = upstream_tansu().await;
        let up_tenant = up.create_tenant("corp").await;
        for who in [
            "alice@corp.example",
            "bob@corp.example",
            "carol@corp.example",
        ] {
            up.create_member(&up_tenant, who, &["User"]).await;
        }
        // bob already has an account downstream; the provider does not verify addresses.
        down.id
            .create_member(&down.shop, "bob@corp.example", &["User"])
            .await;
        let pid = down
            .add_provider(
                &down.shop,
                json!({"name": "Corp", "issuer": up.issuer, "client_id": "downstream",
                       "client_secret": secret,
                       "sign_in": {"auto_provision": true, "home_domains": ["corp.example"]}}),
            )
            .await;
        allow_callback(&up, vec![down.callback(&pid).await]).await;

        // Through the button: the upstream does not verify addresses, so the first sign-in
        // asks for the proof by mail; once the mailed link is followed in this browser, the
        // account is provisioned, a member of the tenant.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let login = b
            .get(&down.id.url(&format!("/connect/authorize?{query}")))
            .await;
        assert_eq!(login.status, 200);
        let start = button(&login.body, "Corp");
        let at_upstream = b.go(&start).await;
        let wait = upstream_sign_in(&mut b, &up, at_upstream, "alice@corp.example").await;
        assert_eq!(wait.status, 200, "{}", wait.body);
        assert!(wait.body.contains("Check your mail"), "{}", wait.body);
        let config = &down.id.state.config;
        let mail = nth_mail(&config.mail.dir(&config.data_dir), 1).await;
        assert!(mail.contains("alice@corp.example"), "{mail}");
        let (action, fields) = confirm_form(&mut b, &link_in(&mail, &down.id.issuer)).await;
        let back = b.post_owned(&action, &fields).await;
        let location = back
            .location
            .clone()
            .unwrap_or_else(|| panic!("{} {}", back.status, back.body));
        let claims = down.redeem(&location, &verifier).await;
        assert_eq!(claims["tid"], down.shop.as_str());
        let alice = claims["sub"].as_str().unwrap().to_owned();
        let links = raw_count(
            &down.id.state.store,
            &format!("SELECT COUNT(*) FROM federated_identities WHERE user_id = '{alice}' AND tenant_id = '{}'", down.shop),
        )
        .await;
        assert_eq!(links, 1);

        // Again, by home-realm discovery, in a new browser: the same account through the link.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let login = b
            .get(&down.id.url(&format!("/connect/authorize?{query}")))
            .await;
        let request = hidden_field(&login.body, "request").unwrap();
        let hrd = format!(
            "{}federation/discover?request={}&email={}",
            down.id.issuer,
            form_encode(&request),
            form_encode("Alice@Corp.Example")
        );
        let to_start = b.get(&hrd).await;
        assert_eq!(to_start.status, 303);
        assert!(
            to_start
                .location
                .as_deref()
                .unwrap()
                .contains(&format!("federation/{pid}/start"))
        );
        let at_upstream = b.follow(to_start).await;
        let back = upstream_sign_in(&mut b, &up, at_upstream, "alice@corp.example").await;
        let claims = down
            .redeem(back.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(claims["sub"], alice.as_str());

        // An unknown domain stays on the login page.
        let mut b = Browser::new();
        let nowhere = b
            .get(&format!(
                "{}federation/discover?request={}&email=x%40elsewhere.example",
                down.id.issuer,
                form_encode(&request)
            ))
            .await;
        assert_eq!(nowhere.status, 200);
        assert!(
            nowhere.body.contains("No sign-in provider"),
            "{}",
            nowhere.body
        );

        // bob's address exists downstream, unverified upstream: no link, no session.
        let mut b = Browser::new();
        let (query, _) = down.query("shop");
        let start = format!("{}federation/{pid}/start?{query}", down.id.issuer);
        let at_upstream = b.go(&start).await;
        let back = upstream_sign_in(&mut b, &up, at_upstream, "bob@corp.example").await;
        assert_eq!(back.status, 403, "{}", back.body);
        assert!(back.body.contains("cannot be linked"), "{}", back.body);
        assert!(
            b.jar
                .get(&origin(&down.id.issuer))
                .is_none_or(|c| !c.contains_key("tansu_session"))
        );

        // Provisioning off: carol has no account and gets none.
        down.id
            .call_expect(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &down.id.admin_token().await,
                Some(json!({"sign_in": {"auto_provision": false}})),
                200,
            )
            .await;
        let mut b = Browser::new();
        let at_upstream = b.go(&start).await;
        let back = upstream_sign_in(&mut b, &up, at_upstream, "carol@corp.example").await;
        assert_eq!(back.status, 403, "{}", back.body);
        assert!(
            back.body.contains("does not create accounts"),
            "{}",
            back.body
        );
        let carol = raw_count(
            &down.id.state.store,
            "SELECT COUNT(*) FROM users WHERE email = 'carol@corp.example'",
        )
        .await;
        assert_eq!(carol, 0);
        // alice, linked already, still signs in.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let start = format!("{}federation/{pid}/start?{query}", down.id.issuer);
        let at_upstream = b.go(&start).await;
        let back = upstream_sign_in(&mut b, &up, at_upstream, "alice@corp.example").await;
        let claims = down
            .redeem(back.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(claims["sub"], alice.as_str());

        // The admin API lists alice's link, and she removes it on her account page.
        let token = down.id.admin_token().await;
        let path = format!("/admin/tenants/{}/users/{alice}/identities", down.shop);
        let listed = down
            .id
            .call_expect(Method::GET, &path, &token, None, 200)
            .await;
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["issuer"], up.issuer.as_str());
        let account = b.get(&format!("{}account", down.id.issuer)).await;
        assert_eq!(account.status, 200, "{}", account.body);
        assert!(account.body.contains("Linked sign-ins"), "{}", account.body);
        let csrf = hidden_field(&account.body, "csrf").unwrap();
        let identity = hidden_field(&account.body, "identity").unwrap();
        assert_eq!(identity, listed[0]["id"].as_str().unwrap());
        let removed = b
            .post(
                &format!("{}account/identities", down.id.issuer),
                &[("csrf", csrf.as_str()), ("identity", identity.as_str())],
            )
            .await;
        assert_eq!(removed.status, 200, "{}", removed.body);
        assert!(removed.body.contains("was removed"), "{}", removed.body);
        let listed = down
            .id
            .call_expect(Method::GET, &path, &token, None, 200)
            .await;
        assert_eq!(listed.as_array().unwrap().len(), 0, "{listed}");

        // No upstream group makes an owner.
        let owner = down
            .id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &token,
                Some(json!({"sign_in": {"group_roles": {"admins": ["Owner"]}}})),
            )
            .await;
        assert_eq!(owner.0, 422, "{}", owner.1);

        // The provider of `shop` is no provider of `other`.
        let mut b = Browser::new();
        let (query, _) = down.query("other");
        let refused = b
            .get(&format!("{}federation/{pid}/start?{query}", down.id.issuer))
            .await;
        assert_eq!(refused.status, 404, "{}", refused.body);
        assert!(refused.body.contains("not available"), "{}", refused.body);

        // Every step left a security event.
        let events = raw_count(
            &down.id.state.store,
            &format!("SELECT COUNT(*) FROM security_events WHERE tenant_id = '{}' AND type LIKE 'federation.%'", down.shop),
        )
        .await;
        assert!(events >= 8, "{events}");

        up.stop().await;
        up_db.cleanup().await;
        down.id.stop().await;
        db.cleanup().await;
    }
}

// ---------------------------------------------------------------- a fake upstream

/// The key a fake ID token is signed with.
#[derive(Clone, Copy)]
enum Signer {
    /// The key of the JWKS.
    Published,
    /// Another key under the published key's id (a forged signature).
    Forged,
    /// A key under an id the JWKS does not have.
    Unpublished,
}

struct Fake {
    issuer: String,
    /// The key of the JWKS and of the ID tokens (replaced: the provider rotates its keys).
    key: Mutex<TestKey>,
    /// The claims of the next ID token, and the key that signs it.
    next: Mutex<(Value, Signer)>,
    /// How often the discovery document and the JWKS were fetched.
    metadata_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
}

async fn fake_metadata(State(f): State<Arc<Fake>>) -> axum::Json<Value> {
    f.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "issuer": f.issuer,
        "authorization_endpoint": format!("{}authorize", f.issuer),
        "token_endpoint": format!("{}token", f.issuer),
        "jwks_uri": format!("{}jwks", f.issuer),
        "end_session_endpoint": format!("{}logout", f.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn fake_jwks(State(f): State<Arc<Fake>>) -> axum::Json<Value> {
    f.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({"keys": [f.key.lock().unwrap().jwk]}))
}

async fn fake_token(State(f): State<Arc<Fake>>) -> axum::Json<Value> {
    let (claims, signer) = f.next.lock().unwrap().clone();
    let signer = {
        let key = f.key.lock().unwrap();
        match signer {
            Signer::Published => rsa_key_clone(&key),
            Signer::Forged => rsa_key(&key.kid),
            Signer::Unpublished => rsa_key("not-published"),
        }
    };
    axum::Json(json!({
        "access_token": "upstream-access",
        "token_type": "Bearer",
        "expires_in": 60,
        "id_token": sign_with(&signer, &claims, Some("JWT")),
    }))
}

fn rsa_key_clone(k: &TestKey) -> TestKey {
    TestKey {
        kid: k.kid.clone(),
        alg: k.alg,
        enc: k.enc.clone(),
        jwk: k.jwk.clone(),
        public_der: k.public_der.clone(),
    }
}

async fn start_fake() -> (TestServer, Arc<Fake>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/", listener.local_addr().unwrap());
    let fake = Arc::new(Fake {
        issuer,
        key: Mutex::new(rsa_key("fake-1")),
        next: Mutex::new((Value::Null, Signer::Published)),
        metadata_fetches: AtomicUsize::new(0),
        jwks_fetches: AtomicUsize::new(0),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(fake_metadata))
        .route("/jwks", get(fake_jwks))
        .route("/token", post(fake_token))
        .with_state(fake.clone());
    (TestServer::start_on(listener, router), fake)
}

/// Starts a sign-in at the fake; returns the callback URL the provider would send the browser
/// to with a code, and the nonce it was asked for.
async fn to_fake(b: &mut Browser, down: &Downstream, pid: &str, query: &str) -> (String, String) {
    let start = format!("{}federation/{pid}/start?{query}", down.id.issuer);
    let sent = b.get(&start).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let at = sent.location.unwrap();
    assert_eq!(
        query_param(&at, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query_param(&at, "client_id").as_deref(),
        Some("fake-client")
    );
    let state = query_param(&at, "state").unwrap();
    let nonce = query_param(&at, "nonce").unwrap();
    (
        format!(
            "{}?code=c&state={}",
            down.callback(pid).await,
            form_encode(&state)
        ),
        nonce,
    )
}

#[tokio::test]
async fn upstream_tokens_are_verified_and_addresses_link_after_the_password() {
    for db in backends(SUITE).await {
        let down = Downstream::start(&db).await;
        let (fake_server, fake) = start_fake().await;
        let pid = down
            .add_provider(
                &down.shop,
                json!({"name": "Fake", "issuer": fake.issuer, "client_id": "fake-client",
                       "sign_in": {"auto_provision": true, "trust_email": true,
                                   "allowed_domains": ["fake.example"]}}),
            )
            .await;
        let claims = |nonce: &str, email: &str| {
            json!({"iss": fake.issuer, "sub": format!("sub-{email}"), "aud": "fake-client",
                   "exp": now() + 300, "iat": now(), "nonce": nonce,
                   "email": email, "email_verified": true, "name": "Fake Person"})
        };

        // Each broken token is refused with a page, and signs no one in.
        type Breaker = Box<dyn Fn(&mut Value)>;
        let breakers: Vec<(&str, Breaker, bool)> = vec![
            (
                "wrong nonce",
                Box::new(|c: &mut Value| c["nonce"] = json!("another")),
                false,
            ),
            (
                "wrong audience",
                Box::new(|c: &mut Value| c["aud"] = json!("someone-else")),
                false,
            ),
            (
                "expired",
                Box::new(|c: &mut Value| c["exp"] = json!(now() - 600)),
                false,
            ),
            (
                "wrong issuer",
                Box::new(|c: &mut Value| c["iss"] = json!("https://evil.example/")),
                false,
            ),
            ("bad signature", Box::new(|_: &mut Value| {}), true),
        ];
        for (what, breaker, foreign) in breakers {
            let mut b = Browser::new();
            let (query, _) = down.query("shop");
            let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
            let mut c = claims(&nonce, "eve@fake.example");
            breaker(&mut c);
            let signer = if foreign {
                Signer::Forged
            } else {
                Signer::Published
            };
            *fake.next.lock().unwrap() = (c, signer);
            let page = b.get(&callback).await;
            assert_eq!(page.status, 400, "{what}: {}", page.body);
            assert!(
                page.body.contains("could not be verified"),
                "{what}: {}",
                page.body
            );
            assert!(page.location.is_none(), "{what}");
            // The state is spent: the same callback again is refused.
            let again = b.get(&callback).await;
            assert_eq!(again.status, 400, "{what}");
        }
        let eve = raw_count(
            &down.id.state.store,
            "SELECT COUNT(*) FROM users WHERE email = 'eve@fake.example'",
        )
        .await;
        assert_eq!(eve, 0);

        // A callback in a browser that did not start the sign-in is refused.
        let mut b = Browser::new();
        let (query, _) = down.query("shop");
        let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
        *fake.next.lock().unwrap() = (claims(&nonce, "eve@fake.example"), Signer::Published);
        let page = Browser::new().get(&callback).await;
        assert_eq!(page.status, 400, "{}", page.body);

        // A domain the provider may not sign in.
        let mut b = Browser::new();
        let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
        *fake.next.lock().unwrap() = (
            claims(&nonce, "mallory@elsewhere.example"),
            Signer::Published,
        );
        let page = b.get(&callback).await;
        assert_eq!(page.status, 403, "{}", page.body);

        // A verified address of an existing account: its password first, then the link.
        let dave = down
            .id
            .create_member(&down.shop, "dave@fake.example", &["User"])
            .await;
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
        *fake.next.lock().unwrap() = (claims(&nonce, "dave@fake.example"), Signer::Published);
        let ask = b.get(&callback).await;
        assert_eq!(ask.status, 200, "{}", ask.body);
        assert!(ask.body.contains("Link your account"), "{}", ask.body);
        let link_url = format!("{}federation/link", down.id.issuer);
        let submit = |page: &Page, password: &str| {
            let field = |name: &str| hidden_field(&page.body, name).unwrap();
            vec![
                ("csrf".to_owned(), field("csrf")),
                ("request".to_owned(), field("request")),
                ("link".to_owned(), field("link")),
                ("password".to_owned(), password.to_owned()),
            ]
        };
        let wrong_form = submit(&ask, "not the password");
        let wrong = b.post_owned(&link_url, &wrong_form).await;
        assert_eq!(wrong.status, 401, "{}", wrong.body);
        let links = format!("SELECT COUNT(*) FROM federated_identities WHERE user_id = '{dave}'");
        assert_eq!(raw_count(&down.id.state.store, &links).await, 0);
        let right_form = submit(&wrong, USER_PASSWORD);
        let right = b.post_owned(&link_url, &right_form).await;
        assert_eq!(right.status, 303, "{}", right.body);
        let claims_of = down
            .redeem(right.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(claims_of["sub"], dave.as_str());
        assert_eq!(raw_count(&down.id.state.store, &links).await, 1);
        // The spent link form does not link twice.
        let replay = b.post_owned(&link_url, &right_form).await;
        assert_eq!(replay.status, 400);

        // Next time the link alone signs dave in.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
        *fake.next.lock().unwrap() = (claims(&nonce, "dave@fake.example"), Signer::Published);
        let done = b.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let claims_of = down
            .redeem(done.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(claims_of["sub"], dave.as_str());

        // Signing out goes on to the provider's logout.
        let end = format!("{}connect/endsession", down.id.issuer);
        let confirm = b.get(&end).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        let csrf = hidden_field(&confirm.body, "csrf").unwrap();
        let out = b
            .post(&end, &[("csrf", csrf.as_str()), ("confirm", "1")])
            .await;
        assert_eq!(out.status, 303, "{}", out.body);
        let to = out.location.unwrap();
        assert!(
            to.starts_with(&format!("{}logout?client_id=fake-client", fake.issuer)),
            "{to}"
        );

        // An admin removes dave's link (through tenant `other`, where dave is no member: 404).
        let token = down.id.admin_token().await;
        let path = format!("/admin/tenants/{}/users/{dave}/identities", down.shop);
        let listed = down
            .id
            .call_expect(Method::GET, &path, &token, None, 200)
            .await;
        let link_id = listed[0]["id"].as_str().unwrap().to_owned();
        let elsewhere = format!(
            "/admin/tenants/{}/users/{dave}/identities/{link_id}",
            down.other
        );
        down.id
            .call_expect(Method::DELETE, &elsewhere, &token, None, 404)
            .await;
        let here = format!("{path}/{link_id}");
        down.id
            .call_expect(Method::DELETE, &here, &token, None, 204)
            .await;
        assert_eq!(raw_count(&down.id.state.store, &links).await, 0);

        // Every sign-in so far (and the sign-out) used one fetch of the discovery document and
        // of the JWKS: they are cached.
        let fetches = |f: &Fake| {
            (
                f.metadata_fetches.load(Ordering::SeqCst),
                f.jwks_fetches.load(Ordering::SeqCst),
            )
        };
        assert_eq!(fetches(&fake), (1, 1));

        // A sign-in through the provider as `email` (its address verified there), from a new
        // browser: the callback's answer and the authorization's PKCE verifier.
        let through_fake = async |email: &str, verified: bool| {
            let mut b = Browser::new();
            let (query, verifier) = down.query("shop");
            let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
            let mut c = claims(&nonce, email);
            c["email_verified"] = json!(verified);
            *fake.next.lock().unwrap() = (c, Signer::Published);
            (b.get(&callback).await, verifier)
        };
        let user_of = async |email: &str| {
            let sql = format!("SELECT COUNT(*) FROM users WHERE email = '{email}'");
            raw_count(&down.id.state.store, &sql).await
        };

        // The provider rotates its key: the first ID token under the new key fetches the JWKS
        // once more and verifies; the discovery document is not fetched again.
        *fake.key.lock().unwrap() = rsa_key("fake-2");
        let (ivy, verifier) = through_fake("ivy@fake.example", true).await;
        assert_eq!(ivy.status, 303, "{}", ivy.body);
        assert_eq!(fetches(&fake), (1, 2));
        let ivy = down
            .redeem(ivy.location.as_deref().unwrap(), &verifier)
            .await;
        let ivy = ivy["sub"].as_str().unwrap().to_owned();
        // A trusted address (verified upstream, `trust_email` on): the account's is verified,
        // on the word of the tenant's own provider, which counts for that tenant only.
        let proof = down
            .id
            .state
            .store
            .email_proof(&ivy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(proof.vouched_by.as_deref(), Some(down.shop.as_str()));
        assert!(proof.counts_for(Some(&down.shop)) && !proof.counts_for(Some(&down.other)));
        // The new key stays cached: the next sign-in fetches nothing.
        let (again, _) = through_fake("ivy@fake.example", true).await;
        assert_eq!(again.status, 303, "{}", again.body);
        assert_eq!(fetches(&fake), (1, 2));
        // A key id the provider does not publish: one fetch more, then refused.
        let mut b = Browser::new();
        let (query, _) = down.query("shop");
        let (callback, nonce) = to_fake(&mut b, &down, &pid, &query).await;
        let token_claims = claims(&nonce, "ivy@fake.example");
        *fake.next.lock().unwrap() = (token_claims, Signer::Unpublished);
        let refused = b.get(&callback).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("could not be verified"),
            "{}",
            refused.body
        );
        assert_eq!(fetches(&fake), (1, 3));

        // `trust_email` off (the default): the provider's word that an address is verified
        // is not taken.
        down.id
            .call_expect(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &down.id.admin_token().await,
                Some(json!({"sign_in": {"auto_provision": true}})),
                200,
            )
            .await;
        // A new address: no account until the address is proven by mail.
        let (erin, _) = through_fake("erin@fake.example", true).await;
        assert_eq!(erin.status, 200, "{}", erin.body);
        assert!(erin.body.contains("Check your mail"), "{}", erin.body);
        assert_eq!(user_of("erin@fake.example").await, 0);
        // An existing account's address (dave, unlinked above) links to nothing.
        let (dave_again, _) = through_fake("dave@fake.example", true).await;
        assert_eq!(dave_again.status, 403, "{}", dave_again.body);
        assert!(
            dave_again.body.contains("cannot be linked"),
            "{}",
            dave_again.body
        );
        assert!(!dave_again.body.contains("Link your account"));
        assert_eq!(raw_count(&down.id.state.store, &links).await, 0);
        assert_eq!(user_of("dave@fake.example").await, 1);

        // Allowed domains take only a trusted address as proof of its domain: without
        // trusted addresses the setting is refused, as nobody could ever pass it.
        let untrusted = down
            .id
            .call(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &down.id.admin_token().await,
                Some(
                    json!({"sign_in": {"auto_provision": true, "trust_email": false,
                                        "allowed_domains": ["fake.example"]}}),
                ),
            )
            .await;
        assert_eq!(untrusted.0, 422, "{}", untrusted.1);
        assert!(
            untrusted.1.to_string().contains("trust_email"),
            "{}",
            untrusted.1
        );
        down.id
            .call_expect(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &down.id.admin_token().await,
                Some(
                    json!({"sign_in": {"auto_provision": true, "trust_email": true,
                                        "allowed_domains": ["fake.example"]}}),
                ),
                200,
            )
            .await;
        let (gina, _) = through_fake("gina@fake.example", false).await;
        assert_eq!(gina.status, 403, "{}", gina.body);
        assert_eq!(user_of("gina@fake.example").await, 0);

        // The provider down: a page that says so, not a 500. Its cached discovery document
        // still sends the browser there; the callback finds its token endpoint unreachable.
        fake_server.stop().await;
        let mut b = Browser::new();
        let (query, _) = down.query("shop");
        let (callback, _) = to_fake(&mut b, &down, &pid, &query).await;
        let down_page = b.get(&callback).await;
        assert_eq!(down_page.status, 502, "{}", down_page.body);
        assert!(
            down_page.body.contains("could not be reached"),
            "{}",
            down_page.body
        );
        assert!(
            down_page.body.contains("<form"),
            "the login page: {}",
            down_page.body
        );

        // A provider of `other` cannot finish a sign-in of `shop` (its id in the path).
        let other_pid = down
            .add_provider(
                &down.other,
                json!({"name": "Other", "issuer": "https://other.example", "client_id": "o"}),
            )
            .await;
        let (query, _) = down.query("shop");
        let refused = b
            .get(&format!(
                "{}federation/{other_pid}/start?{query}",
                down.id.issuer
            ))
            .await;
        assert_eq!(refused.status, 404);
        let _ = down.other.clone();

        down.id.stop().await;
        db.cleanup().await;
    }
}

/// A sign-in at the fake as `email` (`verified` there) through provider `pid` of `tenant`: the
/// callback's answer and the authorization's PKCE verifier.
async fn fake_sign_in(
    b: &mut Browser,
    (down, fake): (&Downstream, &Fake),
    (pid, tenant): (&str, &str),
    email: &str,
    verified: bool,
) -> (Page, String) {
    let (query, verifier) = down.query(tenant);
    let (callback, nonce) = to_fake(b, down, pid, &query).await;
    let claims = json!({"iss": fake.issuer, "sub": format!("sub-{email}"), "aud": "fake-client",
                        "exp": now() + 300, "iat": now(), "nonce": nonce, "email": email,
                        "email_verified": verified, "name": "Fake Person"});
    *fake.next.lock().unwrap() = (claims, Signer::Published);
    (b.get(&callback).await, verifier)
}

#[tokio::test]
async fn an_untrusted_address_is_proven_by_mail_before_its_account_exists() {
    let smtp_available = SmtpServer::available()
        || tansu_shared::testing::skip_or_fail::<()>(
            SUITE,
            "aiosmtpd is not installed (pip install aiosmtpd)",
        )
        .is_some();
    if !smtp_available {
        return;
    }
    for db in backends(SUITE).await {
        let port = free_port();
        let smtp = SmtpServer::start(port).await;
        let down = Downstream::start_with(&db, smtp_to(port)).await;
        let (_fake_server, fake) = start_fake().await;
        // `trust_email` off (the default): the provider's `email_verified` is not taken.
        let provider = json!({"name": "Fake", "issuer": fake.issuer, "client_id": "fake-client",
                              "sign_in": {"auto_provision": true}});
        let pid = down.add_provider(&down.shop, provider.clone()).await;
        let other_pid = down.add_provider(&down.other, provider).await;
        let at = (&down, &*fake);
        let store = &down.id.state.store;
        let count = async |sql: String| raw_count(store, &sql).await;
        let users = async |email: &str| {
            count(format!(
                "SELECT COUNT(*) FROM users WHERE email = '{email}'"
            ))
            .await
        };
        let links = async |email: &str| {
            count(format!(
                "SELECT COUNT(*) FROM federated_identities WHERE subject = 'sub-{email}'"
            ))
            .await
        };
        let has_session = |b: &Browser| {
            b.jar
                .get(&origin(&down.id.issuer))
                .is_some_and(|c| c.contains_key("tansu_session"))
        };
        // A first sign-in: "check your mail", no account, no link, no session; the mailed link.
        let first = async |b: &mut Browser, email: &str| {
            let (wait, verifier) = fake_sign_in(b, at, (&pid, "shop"), email, true).await;
            assert_eq!(wait.status, 200, "{}", wait.body);
            assert!(wait.body.contains("Check your mail"), "{}", wait.body);
            assert!(!has_session(b));
            assert_eq!(users(email).await, 0, "{email}");
            assert_eq!(links(email).await, 0, "{email}");
            let to = format!("To: {email}");
            let mail = eventually(std::time::Duration::from_secs(20), email, || async {
                let mut all = mails(smtp.path()).into_iter();
                all.find(|m| m.contains(&to) && m.contains("/federation/"))
            })
            .await;
            let start = mail
                .find(&format!("{}federation/", down.id.issuer))
                .unwrap();
            let link = link_in(&mail[start..], &down.id.issuer);
            let verify = format!("{}federation/{pid}/verify?token=", down.id.issuer);
            assert!(link.starts_with(&verify), "{link}");
            (link, verifier)
        };

        // Followed in another browser (whoever reads the mailbox, without the sign-in): refused,
        // and spent; the browser that signed in cannot use it after that.
        let mut b = Browser::new();
        let (link, _) = first(&mut b, "frank@fake.example").await;
        let mut elsewhere = Browser::new();
        let (action, fields) = confirm_form(&mut elsewhere, &link).await;
        let refused = elsewhere.post_owned(&action, &fields).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        let (action, fields) = confirm_form(&mut b, &link).await;
        let spent = b.post_owned(&action, &fields).await;
        assert_eq!(spent.status, 400, "{}", spent.body);
        assert_eq!(users("frank@fake.example").await, 0);
        // At most `account.link_requests_per_hour` (3) links per address an hour: then none.
        for _ in 0..2 {
            let mut b = Browser::new();
            let (wait, _) =
                fake_sign_in(&mut b, at, (&pid, "shop"), "frank@fake.example", true).await;
            assert_eq!(wait.status, 200, "{}", wait.body);
        }
        let mut b = Browser::new();
        let (more, _) = fake_sign_in(&mut b, at, (&pid, "shop"), "frank@fake.example", true).await;
        assert_eq!(more.status, 429, "{}", more.body);
        assert!(
            more.body.contains("Too many confirmation links"),
            "{}",
            more.body
        );

        // Followed in the browser that signed in: the account (its address verified), the
        // link and the sign-in. The link works once.
        let mut b = Browser::new();
        let (link, verifier) = first(&mut b, "gwen@fake.example").await;
        // Another sign-in at a provider started meanwhile in the same browser replaces
        // nothing the link needs.
        let (query, _) = down.query("shop");
        let _ = to_fake(&mut b, &down, &pid, &query).await;
        // Opening the link uses nothing (mail scanners fetch links).
        let _ = confirm_form(&mut Browser::new(), &link).await;
        let (action, fields) = confirm_form(&mut b, &link).await;
        let done = b.post_owned(&action, &fields).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let gwen = down
            .redeem(done.location.as_deref().unwrap(), &verifier)
            .await;
        let gwen = gwen["sub"].as_str().unwrap().to_owned();
        assert_eq!(gwen.len(), 36, "{gwen}");
        // Proven by mail: it counts for every tenant.
        let proof = store.email_proof(&gwen).await.unwrap().unwrap();
        assert_eq!(proof.vouched_by, None);
        assert_eq!(links("gwen@fake.example").await, 1);
        let replay = b.post_owned(&action, &fields).await;
        assert_eq!(replay.status, 400, "{}", replay.body);
        assert_eq!(users("gwen@fake.example").await, 1);

        // Next time the provider alone signs gwen in, without mail.
        let mut b = Browser::new();
        let (again, verifier) =
            fake_sign_in(&mut b, at, (&pid, "shop"), "gwen@fake.example", true).await;
        assert_eq!(again.status, 303, "{}", again.body);
        let again = down
            .redeem(again.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(again["sub"], gwen.as_str());

        // An expired link is refused.
        let mut b = Browser::new();
        let (link, _) = first(&mut b, "hank@fake.example").await;
        let (action, fields) = confirm_form(&mut b, &link).await;
        raw_exec(
            store,
            "UPDATE federation_pending SET expires_at = 1 WHERE kind = 'verify'",
            &[],
        )
        .await;
        let expired = b.post_owned(&action, &fields).await;
        assert_eq!(expired.status, 400, "{}", expired.body);
        assert_eq!(users("hank@fake.example").await, 0);

        // Under another tenant's provider the link is refused (and spent).
        let mut b = Browser::new();
        let (link, _) = first(&mut b, "ivan@fake.example").await;
        let (action, fields) = confirm_form(&mut b, &link).await;
        let foreign = action.replace(&pid, &other_pid);
        assert_ne!(foreign, action);
        let refused = b.post_owned(&foreign, &fields).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        let spent = b.post_owned(&action, &fields).await;
        assert_eq!(spent.status, 400, "{}", spent.body);
        assert_eq!(users("ivan@fake.example").await, 0);

        // The address taken by an account meanwhile: the link creates nothing and links nothing.
        let mut b = Browser::new();
        let (link, _) = first(&mut b, "kate@fake.example").await;
        down.id
            .create_member(&down.shop, "kate@fake.example", &["User"])
            .await;
        let (action, fields) = confirm_form(&mut b, &link).await;
        let taken = b.post_owned(&action, &fields).await;
        assert_eq!(taken.status, 409, "{}", taken.body);
        assert!(taken.body.contains("exists now"), "{}", taken.body);
        assert_eq!(users("kate@fake.example").await, 1);
        assert_eq!(links("kate@fake.example").await, 0);
        assert!(!has_session(&b));

        // gwen's link is `shop`'s: the same upstream identity at `other`'s provider names her
        // account by an address `other` does not trust, and is refused.
        let mut b = Browser::new();
        let (there, _) =
            fake_sign_in(&mut b, at, (&other_pid, "other"), "gwen@fake.example", true).await;
        assert_eq!(there.status, 403, "{}", there.body);
        assert!(there.body.contains("cannot be linked"), "{}", there.body);
        assert_eq!(links("gwen@fake.example").await, 1);

        // A trusted address (`trust_email` on, verified upstream): the account at once.
        down.id
            .call_expect(
                Method::PATCH,
                &format!("/admin/tenants/{}/providers/{pid}", down.shop),
                &down.id.admin_token().await,
                Some(json!({"sign_in": {"auto_provision": true, "trust_email": true}})),
                200,
            )
            .await;
        let mut b = Browser::new();
        let (jane, verifier) =
            fake_sign_in(&mut b, at, (&pid, "shop"), "jane@fake.example", true).await;
        assert_eq!(jane.status, 303, "{}", jane.body);
        let jane = down
            .redeem(jane.location.as_deref().unwrap(), &verifier)
            .await;
        let jane = jane["sub"].as_str().unwrap().to_owned();
        let proof = store.email_proof(&jane).await.unwrap().unwrap();
        assert_eq!(proof.vouched_by.as_deref(), Some(down.shop.as_str()));
        // No link went to jane.
        let to_jane = |m: &String| m.contains("To: jane@") && m.contains("/federation/");
        assert!(!mails(smtp.path()).iter().any(to_jane));

        // Every step is a security event.
        let verify_events = |outcome: &str| {
            format!(
                "SELECT COUNT(*) FROM security_events WHERE type = 'federation.verify' \
                 AND outcome = '{outcome}'"
            )
        };
        assert_eq!(count(verify_events("pending")).await, 7);
        assert_eq!(count(verify_events("success")).await, 1);
        assert!(count(verify_events("denied")).await >= 7);

        down.id.stop().await;
        db.cleanup().await;
    }
}

// ---------------------------------------------------------------- panva's oidc-provider

/// The folder `identity/tests/js-op` is installed in (`npm ci`, once per test binary); `None`
/// when Node or npm is missing or the registry unreachable (skipped, unless
/// `TANSU_REQUIRE_ALL=1`).
async fn js_op() -> Option<std::path::PathBuf> {
    use std::path::Path;
    static DIR: tokio::sync::OnceCell<Result<std::path::PathBuf, String>> =
        tokio::sync::OnceCell::const_new();
    let installed = DIR
        .get_or_init(|| async {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js-op");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("federation-op");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let mut changed = false;
            for f in ["package.json", "package-lock.json", "op.mjs"] {
                let new = std::fs::read(src.join(f)).map_err(|e| e.to_string())?;
                if std::fs::read(dir.join(f)).ok().as_ref() != Some(&new) {
                    std::fs::write(dir.join(f), new).map_err(|e| e.to_string())?;
                    changed = true;
                }
            }
            if changed || !dir.join("node_modules/oidc-provider/package.json").exists() {
                let run = tokio::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                    .current_dir(&dir)
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(std::time::Duration::from_secs(180), run)
                    .await
                    .map_err(|_| "npm ci took longer than 180 s".to_owned())?
                    .map_err(|e| format!("npm: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "npm ci failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            Ok(dir)
        })
        .await;
    match installed {
        Ok(dir) => Some(dir.clone()),
        Err(reason) => tansu_shared::testing::skip_or_fail(SUITE, reason),
    }
}

/// oidc-provider on `port`, its one client `tansu` sending browsers back to `redirect`.
async fn start_js_op(dir: &std::path::Path, port: u16, redirect: &str) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new("node")
        .arg("op.mjs")
        .args([
            &port.to_string(),
            "tansu",
            "tansu-op-secret-0123456789",
            redirect,
        ])
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("oidc-provider listens within 30 s")
        .unwrap()
        .expect("oidc-provider prints its issuer");
    assert!(line.contains("issuer"), "{line}");
    // Whatever else it prints is read (a closed pipe would end it at its next line).
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The `action` of the first form of a page, absolute.
fn form_action(html: &str, base: &str) -> String {
    let start = html
        .find("action=\"")
        .unwrap_or_else(|| panic!("no form: {html}"))
        + 8;
    let action = unescape(&html[start..start + html[start..].find('"').unwrap()]);
    url::Url::parse(base)
        .unwrap()
        .join(&action)
        .unwrap()
        .to_string()
}

/// Through oidc-provider's development login form as `login`; the page after following back.
async fn js_op_sign_in(b: &mut Browser, start: &str, issuer: &str, login: &str) -> Page {
    let first = b.get(start).await;
    let at_op = b.follow(first).await;
    assert_eq!(at_op.status, 200, "{}", at_op.body);
    let action = form_action(&at_op.body, issuer);
    let back = b
        .post(
            &action,
            &[("prompt", "login"), ("login", login), ("password", "any")],
        )
        .await;
    b.follow(back).await
}

#[tokio::test]
async fn sign_in_through_panva_oidc_provider() {
    let Some(dir) = js_op().await else {
        return;
    };
    for db in backends(SUITE).await {
        let down = Downstream::start(&db).await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = format!("http://127.0.0.1:{port}");
        let pid = down
            .add_provider(
                &down.shop,
                json!({"name": "Panva", "issuer": issuer, "client_id": "tansu",
                       "client_secret": "tansu-op-secret-0123456789",
                       "sign_in": {"auto_provision": true, "trust_email": true,
                                   "home_domains": ["panva.example"]}}),
            )
            .await;
        let op = start_js_op(&dir, port, &down.callback(&pid).await).await;

        // grace (a verified address): provisioned through the button.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let login = b
            .get(&down.id.url(&format!("/connect/authorize?{query}")))
            .await;
        let start = button(&login.body, "Panva");
        let back = js_op_sign_in(&mut b, &start, &issuer, "grace").await;
        let location = back
            .location
            .clone()
            .unwrap_or_else(|| panic!("{} {}", back.status, back.body));
        let claims = down.redeem(&location, &verifier).await;
        assert_eq!(claims["tid"], down.shop.as_str());
        let grace = claims["sub"].as_str().unwrap().to_owned();
        let verified = down.id.state.store.email_proof(&grace).await.unwrap();
        assert!(verified.is_some(), "the provider verified grace's address");

        // Home-realm discovery leads to the same account.
        let mut b = Browser::new();
        let (query, verifier) = down.query("shop");
        let login = b
            .get(&down.id.url(&format!("/connect/authorize?{query}")))
            .await;
        let request = hidden_field(&login.body, "request").unwrap();
        let hrd = format!(
            "{}federation/discover?request={}&email={}",
            down.id.issuer,
            form_encode(&request),
            form_encode("grace@panva.example")
        );
        let back = js_op_sign_in(&mut b, &hrd, &issuer, "grace").await;
        let claims = down
            .redeem(back.location.as_deref().unwrap(), &verifier)
            .await;
        assert_eq!(claims["sub"], grace.as_str());

        // henry's address is unverified there and taken here: no link.
        down.id
            .create_member(&down.shop, "henry@panva.example", &["User"])
            .await;
        let mut b = Browser::new();
        let (query, _) = down.query("shop");
        let start = format!("{}federation/{pid}/start?{query}", down.id.issuer);
        let back = js_op_sign_in(&mut b, &start, &issuer, "henry").await;
        assert_eq!(back.status, 403, "{}", back.body);
        assert!(back.body.contains("cannot be linked"), "{}", back.body);

        drop(op);
        down.id.stop().await;
        db.cleanup().await;
    }
}
