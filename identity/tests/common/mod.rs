//! Test support: a fresh database per test on each backend, and identity instances served on
//! ephemeral 127.0.0.1 ports.
#![allow(dead_code)]

pub mod account;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use sqlx::Connection;
use tansu_identity::{AppState, Config};
use tansu_shared::config::Secret;
use tansu_shared::testing::TestServer;
pub use tansu_shared::testing::http::{SendOk, hidden_field, query_param, set_cookie};

pub const ADMIN_PASSWORD: &str = "admin-password-for-the-identity-tests";
pub const DEV_SECRET: &str = "dev-secret-used-only-by-the-identity-test-suite-0123456789";

/// The fixed master key of the test suite (base64 of 32 bytes).
pub fn master_key_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}

/// One fresh database: a SQLite file in a temp dir, or a uniquely named PostgreSQL database.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/identity.db", dir.path().display());
        Self { url, dir, pg: None }
    }

    pub async fn postgres(server_url: &str) -> Self {
        let name = format!("tansu_identity_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(server_url)
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let mut url = url::Url::parse(server_url).expect("TANSU_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            url: url.to_string(),
            dir: tempfile::tempdir().expect("tempdir"),
            pg: Some((server_url.to_owned(), name)),
        }
    }

    /// Drops the PostgreSQL database (the SQLite temp dir goes with `self`).
    pub async fn cleanup(self) {
        if let Some((server, name)) = &self.pg
            && let Ok(mut conn) = sqlx::PgConnection::connect(server).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
            conn.close().await.ok();
        }
    }
}

/// SQLite always; PostgreSQL when `TANSU_TEST_DATABASE_URL` is set (required under
/// `TANSU_REQUIRE_ALL=1`).
pub async fn backends(suite: &str) -> Vec<TestDb> {
    let mut v = vec![TestDb::sqlite().await];
    if let Some(url) = tansu_shared::testing::postgres_url(suite) {
        v.push(TestDb::postgres(&url).await);
    }
    v
}

pub fn test_config(db: &TestDb, issuer: &str, listen: &str) -> Config {
    Config {
        listen: listen.to_owned(),
        issuer: issuer.to_owned(),
        data_dir: db.data_dir(),
        database_url: Secret::new(db.url.clone()),
        dev_mode: true,
        master_key: Secret::new(master_key_b64()),
        dev_client_secret: Secret::new(DEV_SECRET),
        dev_admin_password: Secret::new(ADMIN_PASSWORD),
        password_hash_concurrency: 2,
        key_rotation_lead_secs: 4,
        key_check_interval_secs: 1,
        login_failure_delay_ms: 0,
        ..Config::default()
    }
}

/// An identity service on an ephemeral port.
pub struct Instance {
    pub server: TestServer,
    pub state: AppState,
    pub issuer: String,
    pub http: reqwest::Client,
}

impl Instance {
    /// Issuer `http://127.0.0.1:<port>/<prefix>` (prefix "" or e.g. "identity/").
    pub async fn start(db: &TestDb, prefix: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(db, prefix, tweak, |_| {}).await
    }

    /// [`Instance::start`], with a change to the state before it serves (e.g. a provisioner).
    pub async fn start_with(
        db: &TestDb,
        prefix: &str,
        tweak: impl FnOnce(&mut Config),
        tweak_state: impl FnOnce(&mut AppState),
    ) -> Self {
        tansu_shared::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}/{prefix}");
        let mut config = test_config(db, &issuer, &addr.to_string());
        tweak(&mut config);
        let mut state = AppState::new(config).await.expect("identity state");
        tweak_state(&mut state);
        let server = TestServer::start_on(listener, tansu_identity::router(state.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            server,
            state,
            issuer,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A client_credentials request with client_secret_basic.
    pub async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.http
            .post(self.url("/connect/token"))
            .basic_auth(form_encode(id), Some(form_encode(secret)))
            .form(&form)
            .send_ok()
            .await
    }

    /// A client_credentials request with client_secret_post.
    pub async fn token_post(
        &self,
        id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        self.http
            .post(self.url("/connect/token"))
            .form(&form)
            .send_ok()
            .await
    }

    /// An access token string (asserting success).
    pub async fn access_token(&self, id: &str, secret: &str, scope: Option<&str>) -> String {
        let resp = self.token_basic(id, secret, scope).await;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// A token of the seeded dev client with `admin.full`.
    pub async fn admin_token(&self) -> String {
        self.access_token(
            tansu_identity::DEV_CLIENT_ID,
            DEV_SECRET,
            Some("admin.full"),
        )
        .await
    }

    /// Registers a confidential client through the admin API; returns (client_id, secret).
    pub async fn create_client(&self, body: serde_json::Value) -> (String, String) {
        let resp = self
            .http
            .post(self.url("/admin/clients"))
            .bearer_auth(self.admin_token().await)
            .json(&body)
            .send_ok()
            .await;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{v}");
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap_or_default().to_owned(),
        )
    }

    pub async fn jwks(&self) -> (serde_json::Value, String) {
        let resp = self.http.get(self.url("/.well-known/jwks")).send_ok().await;
        assert_eq!(resp.status(), 200);
        let cc = resp
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.json().await.unwrap(), cc)
    }

    /// A shared-crate verifier for `audience`, discovering this issuer through the test server.
    pub async fn verifier(&self, audience: &str) -> tansu_shared::auth::Verifier {
        let mut vc = tansu_shared::auth::VerifierConfig::new(self.issuer.clone(), audience);
        vc.discovery_url = Some(
            self.url("/.well-known/openid-configuration")
                .parse()
                .unwrap(),
        );
        vc.min_refetch_interval = Duration::ZERO;
        tansu_shared::auth::Verifier::new(vc).await.unwrap()
    }

    pub async fn stop(self) {
        self.server.stop().await;
        self.state.store.close().await;
    }
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The JOSE header of a compact JWS.
pub fn jws_header(token: &str) -> serde_json::Value {
    let h = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn kid_of(token: &str) -> String {
    jws_header(token)["kid"].as_str().unwrap().to_owned()
}

/// Waits (bounded) until `f` returns `Some`, retrying every 100 ms.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A client that does not follow redirects (to see them).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::now_v7().simple(),
        uuid::Uuid::now_v7().simple()
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

/// An authorization request of `client` (PKCE); returns (query, verifier).
pub fn auth_query(client: &str, scope: &str, tenant: Option<&str>) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut query = format!(
        "response_type=code&client_id={client}&redirect_uri={}&scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        form_encode("https://app.example/cb"),
        form_encode(scope)
    );
    if let Some(t) = tenant {
        query.push_str(&format!("&tenant={}", form_encode(t)));
    }
    (query, verifier)
}

/// The device cookie of the tests' one browser: every [`Instance::sign_in`] comes from it, so
/// none of them is a sign-in from a new browser.
pub const TEST_DEVICE: &str = "the-identity-tests-one-browser-0123456789ab";

/// The outcome of a browser sign-in through the real login form.
pub struct SignIn {
    pub location: String,
    pub session_cookie: Option<String>,
}

impl Instance {
    /// `GET /connect/authorize?{query}` with `http` (a client that does not follow redirects),
    /// with the browser's `cookie` header when given.
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        query: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut req = http.get(self.url(&format!("/connect/authorize?{query}")));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send_ok().await
    }

    /// GET the authorization URL, expect the login form, submit it; returns where the
    /// browser is sent next.
    pub async fn sign_in(&self, authorize_query: &str, email: &str, password: &str) -> SignIn {
        let http = no_redirects();
        let resp = self.authorize(&http, authorize_query, None).await;
        assert_eq!(resp.status(), 200, "expected the login page");
        let csrf_cookie = set_cookie(&resp, "tansu_csrf").expect("csrf cookie");
        let html = resp.text().await.unwrap();
        assert!(html.contains("<form method=\"post\""), "{html}");
        let csrf = hidden_field(&html, "csrf").unwrap();
        let request = hidden_field(&html, "request").unwrap();
        assert_eq!(request, authorize_query);
        let resp = http
            .post(self.url("/login"))
            .header(
                "cookie",
                format!("{csrf_cookie}; tansu_device={TEST_DEVICE}"),
            )
            .form(&[
                ("csrf", csrf.as_str()),
                ("request", &request),
                ("email", email),
                ("password", password),
            ])
            .send_ok()
            .await;
        let session_cookie = set_cookie(&resp, "tansu_session");
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| format!("status {}", resp.status()));
        SignIn {
            location,
            session_cookie,
        }
    }

    /// Exchanges a code at the token endpoint as a public client.
    pub async fn redeem(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.http
            .post(self.url("/connect/token"))
            .form(&form)
            .send_ok()
            .await
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> reqwest::Response {
        self.http
            .post(self.url("/connect/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
            ])
            .send_ok()
            .await
    }

    /// Introspects with the dev client.
    pub async fn introspect(&self, token: &str) -> serde_json::Value {
        self.http
            .post(self.url("/connect/introspect"))
            .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
            .form(&[("token", token)])
            .send_json()
            .await
    }
}

/// A strong password that passes the default policy for the test users.
pub const USER_PASSWORD: &str = "a long unique phrase 42";

impl Instance {
    /// An admin API call; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send_ok().await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, v)
    }

    /// An admin API call that must answer `status`; returns the JSON body (`Null` when empty).
    pub async fn call_expect(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
        status: u16,
    ) -> serde_json::Value {
        let (got, v) = self.call(method, path, token, body).await;
        assert_eq!(got, status, "{path}: {v}");
        v
    }

    /// `GET path` with `token`; returns the status and the JSON body (`Null` when empty).
    pub async fn get_as(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// Creates a tenant as the platform admin; returns its id.
    pub async fn create_tenant(&self, slug: &str) -> String {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                "/admin/tenants",
                &self.admin_token().await,
                Some(serde_json::json!({"slug": slug, "name": format!("Shop {slug}")})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Creates (or invites) a user in a tenant as the platform admin; returns the user id.
    pub async fn create_member(&self, tid: &str, email: &str, roles: &[&str]) -> String {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                &format!("/admin/tenants/{tid}/users"),
                &self.admin_token().await,
                Some(serde_json::json!({"email": email, "name": "Test Person", "password": USER_PASSWORD, "roles": roles})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    /// Registers the first-party public client `tenant-app` (code + refresh, every user scope).
    pub async fn tenant_app(&self) -> String {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                "/admin/clients",
                &self.admin_token().await,
                Some(serde_json::json!({
                    "client_id": "tenant-app",
                    "name": "Tenant app",
                    "first_party": true,
                    "client_type": "public",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": ["https://app.example/cb"],
                    "scopes": ["openid", "roles", "offline_access", "db.read", "admin.tenant"],
                })),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        "tenant-app".into()
    }

    /// The access token of a sign-in through [`Self::user_tokens`] that must succeed.
    pub async fn user_access(
        &self,
        client: &str,
        email: &str,
        password: &str,
        scope: &str,
        tenant: Option<&str>,
    ) -> String {
        let tokens = self
            .user_tokens(client, email, password, scope, tenant)
            .await
            .unwrap_or_else(|to| panic!("{email} signs in, not: {to}"));
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    /// Signs `email` in through the login form (optionally for a tenant) and redeems the code:
    /// `Ok(token response)` or `Err(where the browser was sent / the status)`.
    pub async fn user_tokens(
        &self,
        client: &str,
        email: &str,
        password: &str,
        scope: &str,
        tenant: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let (query, verifier) = auth_query(client, scope, tenant);
        let signed = self.sign_in(&query, email, password).await;
        let Some(code) = query_param(&signed.location, "code") else {
            return Err(signed.location);
        };
        let resp = self
            .redeem(client, &code, "https://app.example/cb", Some(&verifier))
            .await;
        let status = resp.status();
        let v: serde_json::Value = resp.json().await.unwrap();
        if status == 200 {
            Ok(v)
        } else {
            Err(format!("token status {status}: {v}"))
        }
    }
}

/// The claims of a JWT, unverified (the tests verify signatures elsewhere).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let p = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A TOTP code of `secret` (base32) for the time step `now + offset` steps.
pub fn totp_code_at(secret: &str, offset: i64) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .with_account_name("test")
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp.generate(now.checked_add_signed(offset * 30).unwrap())
        .to_string()
}

/// A 6-digit code that is valid for none of the steps now-2 … now+2.
pub fn wrong_totp_code(secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|o| totp_code_at(secret, o)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Runs the same code against whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            tansu_identity::store::Store::Sqlite($pool, _) => $body,
            tansu_identity::store::Store::Postgres($pool) => $body,
        }
    };
}

/// Every value of the one (byte) column `sql` selects, read straight from the database: what
/// is stored at rest.
pub async fn raw_bytes(store: &tansu_identity::store::Store, sql: &str) -> Vec<Vec<u8>> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_pool!(store, |p| sqlx::query_scalar(sql).fetch_all(p).await).unwrap()
}

/// The count `sql` selects, straight from the database.
pub async fn raw_count(store: &tansu_identity::store::Store, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_pool!(store, |p| sqlx::query_scalar(sql).fetch_one(p).await).unwrap()
}

/// Runs `sql` with `args` bound as text, straight on the database.
pub async fn raw_exec(store: &tansu_identity::store::Store, sql: &str, args: &[&str]) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    on_pool!(store, |p| {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(*a);
        }
        q.execute(p).await.map(|_| ())
    })
    .unwrap()
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
