//! What the developer-surface suites share: the stack (identity on SQLite, or on a fresh
//! PostgreSQL database), an admin API client through the gateway, and oauth4webapi (a standard
//! client library from npm) installed once per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::{TestDatabase, skip_or_fail};

pub const PASSWORD: &str = "correct horse battery staple 42";

/// A running stack and an HTTP client that trusts its certificate.
pub struct Platform {
    pub stack: Stack,
    pub http: reqwest::Client,
    /// `https://{gateway}`
    pub base: String,
    pub dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    /// One stack per test binary at a time: two starting side by side on a small machine
    /// starve each other's health probes, and the gateway takes a service out.
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

static ONE_STACK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Platform {
    /// The stack with identity on SQLite (`postgres: false`) or on a fresh PostgreSQL database;
    /// `None` when PostgreSQL is not configured (skipped, unless `TANSU_REQUIRE_ALL=1`).
    pub async fn start(suite: &str, postgres: bool) -> Option<Platform> {
        let turn = ONE_STACK.lock().await;
        let database = if postgres {
            Some(TestDatabase::create(suite).await?)
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tansu.toml");
        std::fs::write(
            &config,
            format!(
                "[identity]\ndev_admin_password = \"{PASSWORD}\"\n{}",
                database
                    .as_ref()
                    .map_or(String::new(), |d| format!("database_url = \"{}\"\n", d.url))
            ),
        )
        .unwrap();
        let mut stack = Stack::start(StackOptions {
            config_file: Some(config),
            ..StackOptions::for_tests(&dir.path().join("data"))
        })
        .await
        .unwrap();
        stack.wait_ready(Duration::from_secs(60)).await.unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(stack.certificate_pem.as_bytes()).unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("https://{}", stack.gateway);
        // Ready as the gateway sees it: every route it forwards to answers through it.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for route in ["identity", "db", "storage"] {
            let url = format!("{base}/{route}/health/live");
            while !http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{url} answers through the gateway"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Some(Platform {
            stack,
            http,
            base,
            dir,
            database,
            _turn: turn,
        })
    }

    pub async fn shutdown(self) {
        self.stack.shutdown().await.unwrap();
        if let Some(db) = self.database {
            db.drop_db().await;
        }
    }

    /// The certificate as a file (for Node's `NODE_EXTRA_CA_CERTS`).
    pub fn certificate_file(&self) -> PathBuf {
        let path = self.dir.path().join("gateway.pem");
        std::fs::write(&path, &self.stack.certificate_pem).unwrap();
        path
    }

    /// A platform administrator's token (the dev-mode dashboard client).
    pub async fn admin_token(&self) -> String {
        let secret =
            std::fs::read_to_string(self.dir.path().join("data/identity/tansu-dashboard.secret"))
                .unwrap();
        let resp = self
            .http
            .post(format!("{}/identity/connect/token", self.base))
            .basic_auth("tansu-dashboard", Some(secret.trim()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full"),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An admin API call through the gateway: the status and the JSON answer.
    pub async fn admin(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/identity/admin/{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send_ok().await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(json!(text)))
    }

    /// A new tenant with its owner and a provisioned database (self-service registration):
    /// `(tenant id, slug)`.
    pub async fn register(&self, owner: &str, shop: &str) -> (String, String) {
        let resp = self
            .http
            .post(format!("{}/identity/registrations", self.base))
            .json(&json!({"email": owner, "password": PASSWORD, "shop_name": shop}))
            .send_ok()
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        (
            body["tenant_id"].as_str().unwrap().to_owned(),
            body["slug"].as_str().unwrap().to_owned(),
        )
    }
}

impl Platform {
    /// Signs `email` in through identity's login form (code + PKCE, the public `client_id`
    /// with `redirect_uri`) and redeems the code: the access token.
    pub async fn user_token(
        &self,
        client_id: &str,
        redirect_uri: &str,
        email: &str,
        scope: &str,
    ) -> String {
        use base64::Engine;
        use tansu_shared::testing::http::{hidden_field, query_param, set_cookie};
        let verifier = format!(
            "{}{}",
            uuid::Uuid::now_v7().simple(),
            uuid::Uuid::now_v7().simple()
        );
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()),
        );
        let authorize = with_query(
            &format!("{}/identity/connect/authorize", self.base),
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("scope", scope),
                ("state", "s"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let resp = self.http.get(authorize).send_ok().await;
        assert_eq!(resp.status(), 200, "the login page");
        let cookie = set_cookie(&resp, "tansu_csrf").expect("CSRF cookie");
        let html = resp.text().await.unwrap();
        let resp = self
            .http
            .post(format!("{}/identity/login", self.base))
            .header("cookie", cookie)
            .form(&[
                ("csrf", hidden_field(&html, "csrf").unwrap().as_str()),
                ("request", hidden_field(&html, "request").unwrap().as_str()),
                ("email", email),
                ("password", PASSWORD),
            ])
            .send_ok()
            .await;
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
        let resp = self
            .http
            .post(format!("{}/identity/connect/token", self.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
                ("code_verifier", &verifier),
            ])
            .send_ok()
            .await;
        let body: Value = resp.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{body}"))
            .to_owned()
    }

    /// identity's own address (what services call it on).
    pub fn identity_url(&self, path: &str) -> String {
        let addr = self
            .stack
            .services
            .iter()
            .find(|(n, _)| *n == "identity")
            .unwrap()
            .1;
        format!("http://{addr}{path}")
    }
}

/// `url` with the form-encoded `params` as its query.
pub fn with_query<K: AsRef<str>, V: AsRef<str>>(url: &str, params: &[(K, V)]) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    url.to_string()
}

/// The folder oauth4webapi (and the tests' other npm tools: an OpenAPI validator) is
/// installed in (`npm ci` of `dev/tests/js`, once per test
/// binary); `None` when Node or npm is missing or the registry unreachable (skipped, unless
/// `TANSU_REQUIRE_ALL=1`).
pub async fn oauth4webapi(suite: &str) -> Option<PathBuf> {
    static DIR: tokio::sync::OnceCell<Result<PathBuf, String>> = tokio::sync::OnceCell::const_new();
    let installed = DIR
        .get_or_init(|| async {
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("client-libraries");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let mut changed = false;
            for f in [
                "package.json",
                "package-lock.json",
                "oauth4webapi.mjs",
                "openapi.mjs",
            ] {
                let new = std::fs::read(src.join(f)).map_err(|e| e.to_string())?;
                if std::fs::read(dir.join(f)).ok().as_ref() != Some(&new) {
                    std::fs::write(dir.join(f), new).map_err(|e| e.to_string())?;
                    changed = true;
                }
            }
            let installed = ["oauth4webapi", "@readme/openapi-parser"].iter().all(|p| {
                dir.join("node_modules")
                    .join(p)
                    .join("package.json")
                    .exists()
            });
            if changed || !installed {
                let run = tokio::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                    .current_dir(&dir)
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(Duration::from_secs(180), run)
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
        Err(reason) => skip_or_fail(suite, reason),
    }
}

/// Runs the oauth4webapi relying party (`dev/tests/js/oauth4webapi.mjs`) with `args`, trusting
/// the gateway's certificate; its one line of JSON.
pub async fn node_rp(dir: &Path, certificate: &Path, args: &[&str]) -> Value {
    let run = tokio::process::Command::new("node")
        .arg("oauth4webapi.mjs")
        .args(args)
        .current_dir(dir)
        .env("NODE_EXTRA_CA_CERTS", certificate)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("node finishes within 60 s")
        .expect("node runs");
    assert!(
        out.status.success(),
        "node oauth4webapi.mjs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "node printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
