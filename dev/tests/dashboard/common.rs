#![allow(dead_code)] // each suite binary uses part of the fixture
//! The dashboard suites' shared fixture: one in-process stack (through the TLS gateway) per
//! test binary, started on first use on a runtime of its own so that every test — each on its
//! own tokio runtime — can use it; a small cookie-jar browser over reqwest; sign-in through
//! identity's login form; identity's admin API with the dev client's `admin.full` token for
//! the tests' own set-up and checks; a stand-in external OIDC provider; and Chromium over the
//! DevTools protocol (`tansu_shared::testing::browser`) for the browser suite.
//!
//! Tests of one binary run concurrently against the same stack, so each works on tenants,
//! users and names of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};

pub const PASSWORD: &str = "dashboard-test-password-1";
pub const ADMIN: &str = "admin@tansu.local";
/// The password of the tenant owners the tests create.
pub const OWNER_PASSWORD: &str = "correct horse battery staple 77";

/// Every page: (service-relative path, a text the page must show) — for the platform admin
/// before any tenant is chosen.
pub const PAGES: &[(&str, &str)] = &[
    ("", "Service health"),
    ("keys", "Signing keys"),
    ("clients", "Create a client"),
    ("tenants", "Create a tenant"),
    ("users", "Choose a tenant"),
    ("admin/providers", "Choose a tenant"),
    ("admin/security-events", "Export CSV"),
    ("settings", "Signing key rotation"),
    ("mail-templates", "Choose a tenant"),
    ("secrets", "Choose a tenant"),
];

/// The per-tenant pages with a tenant chosen: (path, text).
pub const TENANT_PAGES: &[(&str, &str)] = &[
    ("users", "Invite or create a user"),
    ("admin/providers", "Add an OIDC provider"),
    ("admin/security-events", "Export CSV"),
    ("settings", "Minimum password length"),
    ("mail-templates", "Placeholders:"),
    ("secrets", "Add a secret"),
];

/// Every form action (POST).
pub const FORMS: &[&str] = &[
    "logout",
    "keys/rotate",
    "keys/master-key/rewrap",
    "clients",
    "clients/tansu-dashboard/secret",
    "tenants",
    "tenants/x/status",
    "users",
    "users/x/status",
    "users/x/password",
    "users/x/roles",
    "users/x/mfa",
    "admin/providers",
    "admin/providers/x",
    "admin/providers/x/test",
    "admin/providers/x/status",
    "admin/providers/x/delete",
    "admin/security-events/verify",
    "settings",
    "mail-templates",
    "secrets",
    "secrets/x/revoke",
];

// ---------------------------------------------------------------- the stack

/// The running stack, as the tests reach it.
pub struct Fixture {
    /// `https://<gateway>/dashboard/`
    pub base: String,
    /// `https://<gateway>/identity/`
    pub identity: String,
    pub issuer: String,
    pub certificate_pem: String,
    /// The stack's data directory (the seeded dashboard client's secret is there).
    pub data: PathBuf,
    /// The dashboard service itself (plain HTTP, behind the gateway's `/dashboard`).
    pub dashboard: std::net::SocketAddr,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();
static FIXTURE_POSTGRES: OnceLock<Option<Fixture>> = OnceLock::new();

const DIR_PREFIX: &str = "tansu-dashboard-suite-";

/// The test binary's stack (identity on SQLite): started on first use, on a thread and runtime
/// of its own that live as long as the binary (the stack outlives every test's runtime).
pub fn stack() -> &'static Fixture {
    FIXTURE.get_or_init(|| start(false).expect("the SQLite stack needs no server"))
}

/// The same stack with identity on a fresh PostgreSQL database (`TANSU_TEST_DATABASE_URL`);
/// `None` when no PostgreSQL is configured (skipped, unless `TANSU_REQUIRE_ALL=1`).
pub fn stack_on_postgres() -> Option<&'static Fixture> {
    FIXTURE_POSTGRES.get_or_init(|| start(true)).as_ref()
}

fn start(postgres: bool) -> Option<Fixture> {
    remove_old_dirs();
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .unwrap()
        .keep();
    let (tx, rx) = std::sync::mpsc::channel();
    let data = dir.join("data");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let database = if postgres {
                let Some(db) =
                    tansu_shared::testing::TestDatabase::create("dashboard (PostgreSQL)").await
                else {
                    tx.send(None).unwrap();
                    return;
                };
                Some(db)
            } else {
                None
            };
            let config = config_file(&dir, database.as_ref().map(|d| d.url.as_str()));
            let mut opts = StackOptions::for_tests(&data);
            opts.config_file = Some(config);
            let mut stack = Stack::start(opts).await.unwrap();
            stack.wait_ready(Duration::from_secs(60)).await.unwrap();
            tx.send(Some(Fixture {
                base: format!("https://{}/dashboard/", stack.gateway),
                identity: format!("https://{}/identity/", stack.gateway),
                issuer: stack.issuer.clone(),
                certificate_pem: stack.certificate_pem.clone(),
                data,
                dashboard: stack
                    .services
                    .iter()
                    .find(|(name, _)| *name == "dashboard")
                    .map(|(_, addr)| *addr)
                    .expect("the stack runs the dashboard"),
            }))
            .unwrap();
            // Serve until the test binary exits.
            std::future::pending::<()>().await;
            drop(stack);
        });
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the stack started")
}

/// The data directories of earlier runs (a stack that lives as long as its binary leaves
/// its directory behind): removed when older than an hour.
fn remove_old_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old && e.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The stack's config: identity's store (`database_url`: PostgreSQL; none: SQLite under the
/// data directory), the dev admin's password, no gateway budgets.
fn config_file(dir: &Path, database_url: Option<&str>) -> PathBuf {
    let path = dir.join("tansu.toml");
    std::fs::write(
        &path,
        // The suites' tests run concurrently from one address (and the dashboard calls
        // identity through the gateway from it too): the gateway's request budgets, which
        // have suites of their own, would refuse them.
        format!(
            "[identity]\ndev_admin_password = \"{PASSWORD}\"\n{}\n[gateway.rate_limit]\nenabled = false\n",
            database_url.map_or(String::new(), |u| format!("database_url = \"{u}\"\n"))
        ),
    )
    .unwrap();
    path
}

// ---------------------------------------------------------------- a browser over HTTP

/// reqwest with a small cookie jar, redirects not followed.
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: HashMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub body: String,
}

impl Browser {
    pub fn new(pem: &str) -> Self {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            http,
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.jar.is_empty() {
            req
        } else {
            req.header(COOKIE, self.cookie_header())
        };
        let resp = req.send().await.unwrap();
        for c in resp.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.jar.remove(k.trim());
            } else {
                self.jar.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    /// A form about a tenant: the CSRF token, the tenant and `fields`.
    pub async fn tenant_form(
        &mut self,
        url: &str,
        csrf: &str,
        tenant: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let mut form = vec![("csrf", csrf), ("tenant", tenant)];
        form.extend_from_slice(fields);
        self.post(url, &form).await
    }
}

/// The value of the hidden input `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    tansu_shared::testing::http::hidden_field(html, name)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
}

/// Signs the platform admin in through identity's login form; returns the page landed on.
pub async fn sign_in(b: &mut Browser, base: &str, start: &str) -> Page {
    sign_in_as(b, base, start, ADMIN, PASSWORD).await
}

/// Signs `email` in through identity's login form; returns the dashboard page landed on.
pub async fn sign_in_as(
    b: &mut Browser,
    base: &str,
    start: &str,
    email: &str,
    password: &str,
) -> Page {
    let r = sign_in_landing(b, base, start, email, password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

/// [`sign_in_as`], whatever the page landed on answers (a user without an admin role lands on
/// the "no access" page, 403).
pub async fn sign_in_landing(
    b: &mut Browser,
    base: &str,
    start: &str,
    email: &str,
    password: &str,
) -> Page {
    let r = b.get(&format!("{base}{start}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{start}: {}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}login")),
        "{start} → {}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login: {}", r.body);
    assert!(
        r.location.contains("/identity/connect/authorize?"),
        "{}",
        r.location
    );
    assert!(
        r.location.contains("code_challenge_method=S256"),
        "{}",
        r.location
    );
    let mut r = b.get(&r.location).await;
    // The authorize endpoint shows the login form (possibly after a redirect).
    for _ in 0..3 {
        if r.status != StatusCode::SEE_OTHER {
            break;
        }
        r = b.get(&r.location.clone()).await;
    }
    assert_eq!(r.status, StatusCode::OK, "authorize: {}", r.body);
    let csrf = hidden(&r.body, "csrf");
    let request = hidden(&r.body, "request");
    let issuer = base.replace("/dashboard/", "/identity/");
    let r = b
        .post(
            &format!("{issuer}login"),
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("email", email),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login POST: {}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}callback?")),
        "{}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "callback: {}", r.body);
    assert!(b.jar.contains_key("tansu_dashboard_session"));
    b.get(&r.location.clone()).await
}

/// A signed-in platform admin: the browser, the base URL and the session's CSRF token.
pub async fn platform_admin() -> (Browser, String, String) {
    let f = stack();
    let mut b = Browser::new(&f.certificate_pem);
    let landed = sign_in(&mut b, &f.base, "").await;
    let csrf = hidden(&landed.body, "csrf");
    (b, f.base.clone(), csrf)
}

pub fn rows(body: &str, class: &str) -> usize {
    body.matches(&format!("<tr class=\"{class}\"")).count()
}

/// A long operation's progress page reloads itself only while the operation runs.
pub fn refreshes(body: &str) -> bool {
    body.contains(r#"http-equiv="refresh""#)
}

/// Follows a progress page (bounded polling, as a browser reloading it would) until it shows
/// `done`; while it does not, it must show progress and reload itself.
pub async fn until_shown(b: &mut Browser, url: &str, done: &str) -> Page {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = b.get(url).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        if r.body.contains(done) {
            assert!(!refreshes(&r.body), "done: no more reloads: {}", r.body);
            return r;
        }
        assert!(
            refreshes(&r.body) && r.body.contains("<progress"),
            "{}",
            r.body
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never showed {done:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- identity's admin API

/// identity's admin API through the gateway with the dev client's `admin.full` token (the
/// tests' own set-up and checks, beside what the dashboard does).
pub struct AdminApi {
    http: reqwest::Client,
    identity: String,
    token: String,
}

impl AdminApi {
    pub async fn new() -> Self {
        Self::on(stack()).await
    }

    /// The admin API of the stack `f`.
    pub async fn on(f: &Fixture) -> Self {
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(f.certificate_pem.as_bytes()).unwrap(),
            )
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let secret = std::fs::read_to_string(f.data.join("identity/tansu-dashboard.secret"))
            .expect("dev mode writes the seeded client's secret")
            .trim()
            .to_owned();
        let resp = http
            .post(format!("{}connect/token", f.identity))
            .basic_auth("tansu-dashboard", Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        Self {
            http,
            identity: f.identity.clone(),
            token: v["access_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.identity))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    pub async fn tenant_id(&self, slug: &str) -> String {
        let v = self.get("admin/tenants?limit=500").await;
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["slug"] == slug)
            .unwrap_or_else(|| panic!("no tenant {slug}: {v}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a tenant; its id.
    pub async fn create_tenant(&self, slug: &str, name: &str) -> String {
        let (status, t) = self
            .call(
                reqwest::Method::POST,
                "admin/tenants",
                Some(json!({"slug": slug, "name": name})),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        t["id"].as_str().unwrap().to_owned()
    }

    /// Creates a member of `tid` with a password and one role; the user's id.
    pub async fn create_member(&self, tid: &str, email: &str, role: &str) -> String {
        let (status, u) = self
            .call(
                reqwest::Method::POST,
                &format!("admin/tenants/{tid}/users"),
                Some(json!({
                    "email": email, "name": email, "password": OWNER_PASSWORD, "roles": [role],
                })),
            )
            .await;
        assert_eq!(status, 201, "{u}");
        u["id"].as_str().unwrap().to_owned()
    }

    /// Adds a provider to `tid`; its id.
    pub async fn create_provider(&self, tid: &str, name: &str, issuer: &str) -> String {
        let (status, p) = self
            .call(
                reqwest::Method::POST,
                &format!("admin/tenants/{tid}/providers"),
                Some(
                    json!({"name": name, "issuer": issuer, "client_id": "c", "scopes": ["openid"]}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        p["id"].as_str().unwrap().to_owned()
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        let v = self
            .get(&format!("admin/security-events?limit=1000&{query}"))
            .await;
        v["items"].as_array().unwrap().clone()
    }
}

/// A stand-in external OIDC provider on 127.0.0.1 (dev mode allows http on loopback): its
/// issuer is `http://127.0.0.1:<port>/idp`.
pub async fn external_provider() -> (tansu_shared::testing::TestServer, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/idp", listener.local_addr().unwrap());
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    });
    let app = axum::Router::new().route(
        "/idp/.well-known/openid-configuration",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    (
        tansu_shared::testing::TestServer::start_on(listener, app),
        issuer,
    )
}
