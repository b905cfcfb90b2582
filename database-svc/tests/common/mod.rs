//! The database service on a real loopback port, on SQLite and (when `TANSU_TEST_DATABASE_URL`
//! is set) on PostgreSQL, with a token-signing issuer to mint tokens of any tenant and scope.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tansu_shared::config::Secret;
use tansu_shared::testing::TestDatabase;
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::issuer::{TestIssuer, TestKey, rsa_key, sign};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const TENANT_A: Uuid = Uuid::from_u128(0x0190f5c0_0000_7000_8000_00000000000a);
pub const TENANT_B: Uuid = Uuid::from_u128(0x0190f5c0_0000_7000_8000_00000000000b);

pub enum Store {
    Sqlite(tempfile::TempDir),
    Postgres {
        db: TestDatabase,
        admin_url: String,
        prefix: String,
    },
}

pub struct Running {
    pub base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

pub struct Env {
    pub name: &'static str,
    pub issuer: TestIssuer,
    pub key: TestKey,
    pub http: reqwest::Client,
    pub store: Store,
    pub config: tansu_database::Config,
    pub running: Option<Running>,
}

/// One environment per available backend: SQLite always, PostgreSQL when configured.
pub async fn envs(suite: &str) -> Vec<Env> {
    envs_with(suite, |_| {}).await
}

pub async fn envs_with(suite: &str, tweak: impl Fn(&mut tansu_database::Config)) -> Vec<Env> {
    let mut out = vec![
        Env::new(
            "sqlite",
            Store::Sqlite(tempfile::tempdir().unwrap()),
            &tweak,
        )
        .await,
    ];
    if let Some(db) = TestDatabase::create(suite).await {
        let admin_url = std::env::var("TANSU_TEST_DATABASE_URL").unwrap();
        // `tansu_t_…`: what CI sweeps up after an interrupted run (.ci/run).
        let prefix = format!("tansu_t_{}_", &Uuid::now_v7().simple().to_string()[20..]);
        out.push(
            Env::new(
                "postgres",
                Store::Postgres {
                    db,
                    admin_url,
                    prefix,
                },
                &tweak,
            )
            .await,
        );
    }
    out
}

impl Env {
    async fn new(
        name: &'static str,
        store: Store,
        tweak: &impl Fn(&mut tansu_database::Config),
    ) -> Env {
        let key = rsa_key("k1");
        let issuer = TestIssuer::start(&[&key]).await;
        let mut config = tansu_database::Config {
            listen: "127.0.0.1:0".into(),
            issuer: issuer.issuer.clone(),
            ..Default::default()
        };
        match &store {
            Store::Sqlite(dir) => config.data_dir = dir.path().to_owned(),
            Store::Postgres {
                db,
                admin_url,
                prefix,
            } => {
                config.data_dir = std::env::temp_dir().join("tansu-db-unused");
                config.database_url = Secret::new(db.url.clone());
                config.postgres_url = Secret::new(admin_url.clone());
                config.tenant_db_prefix = prefix.clone();
                config.tenant_pool_size = 2;
                config.max_open_tenants = 8;
            }
        }
        tweak(&mut config);
        let mut env = Env {
            name,
            issuer,
            key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            store,
            config,
            running: None,
        };
        env.start().await;
        env
    }

    /// Starts `serve_on` on a fresh ephemeral port (the listener is bound first, so requests
    /// wait in the backlog until the service accepts them: no readiness polling needed).
    pub async fn start(&mut self) {
        assert!(self.running.is_none());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let config = self.config.clone();
        let task = tokio::spawn(async move {
            tansu_database::serve_on(listener, config, async {
                let _ = rx.await;
            })
            .await
        });
        self.running = Some(Running {
            base,
            stop: tx,
            task,
        });
    }

    /// Graceful stop: drains and closes every pool; returns once `serve_on` returned.
    pub async fn stop(&mut self) {
        let r = self.running.take().expect("running");
        let _ = r.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), r.task)
            .await
            .expect("service stops within 30 s")
            .unwrap()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.as_ref().expect("running").base, path)
    }

    /// A signed access token for `tenant` (None: a platform token without `tid`).
    pub fn token(&self, tenant: Option<Uuid>, scope: &str) -> String {
        let tenant = tenant.map(|t| t.to_string());
        let claims = self.issuer.claims_for("tansu.db", tenant.as_deref(), scope);
        sign(&self.key, &claims)
    }

    pub fn platform(&self) -> String {
        self.token(None, "db.provision")
    }

    pub fn rw(&self, tenant: Uuid) -> String {
        self.token(Some(tenant), "db.read db.write")
    }

    pub fn ro(&self, tenant: Uuid) -> String {
        self.token(Some(tenant), "db.read")
    }

    /// A request with a bearer token and (optionally) the gateway's tenant header.
    pub fn req(
        &self,
        method: Method,
        path: &str,
        token: &str,
        tenant: Option<Uuid>,
    ) -> RequestBuilder {
        let mut r = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(t) = tenant {
            r = r.header("x-tansu-tenant", t.to_string());
        }
        r
    }

    /// A request of `tenant` with a read-write token of the same tenant.
    pub fn as_tenant(&self, method: Method, path: &str, tenant: Uuid) -> RequestBuilder {
        self.req(method, path, &self.rw(tenant), Some(tenant))
    }

    /// `method path` as `tenant` (read-write token), with a JSON body when given: the
    /// response (a transport error panics).
    pub async fn call(
        &self,
        method: Method,
        tenant: Uuid,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut r = self.as_tenant(method, path, tenant);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send_ok().await
    }

    pub async fn get(&self, tenant: Uuid, path: &str) -> Response {
        self.call(Method::GET, tenant, path, None).await
    }

    pub async fn delete(&self, tenant: Uuid, path: &str) -> Response {
        self.call(Method::DELETE, tenant, path, None).await
    }

    pub async fn post(&self, tenant: Uuid, path: &str, body: &Value) -> Response {
        self.call(Method::POST, tenant, path, Some(body)).await
    }

    pub async fn put(&self, tenant: Uuid, path: &str, body: &Value) -> Response {
        self.call(Method::PUT, tenant, path, Some(body)).await
    }

    pub async fn patch(&self, tenant: Uuid, path: &str, body: &Value) -> Response {
        self.call(Method::PATCH, tenant, path, Some(body)).await
    }

    /// A bulk insert of `docs` (`{id?, data}` items) into `collection` as `tenant`.
    pub async fn bulk(&self, tenant: Uuid, collection: &str, docs: &[Value]) -> Response {
        let path = format!("/api/collections/{collection}/bulk");
        self.post(tenant, &path, &serde_json::json!({ "documents": docs }))
            .await
    }

    /// `GET path` as `tenant`: the answer's JSON (status not checked).
    pub async fn get_json(&self, tenant: Uuid, path: &str) -> Value {
        self.get(tenant, path).await.json().await.unwrap()
    }

    /// `POST path` as `tenant`: the answer's JSON (status not checked).
    pub async fn post_json(&self, tenant: Uuid, path: &str, body: &Value) -> Value {
        self.post(tenant, path, body).await.json().await.unwrap()
    }

    pub async fn provision(&self, tenant: Uuid) -> Value {
        let resp = self
            .req(
                Method::PUT,
                &format!("/provision/{tenant}"),
                &self.platform(),
                None,
            )
            .send_ok()
            .await;
        assert!(
            resp.status().is_success(),
            "{}: provision {}",
            self.name,
            resp.status()
        );
        resp.json().await.unwrap()
    }

    /// Provisions `tenant`; returns the environment's name (for assertion messages).
    pub async fn provisioned(&self, tenant: Uuid) -> &'static str {
        self.provision(tenant).await;
        self.name
    }

    /// Provisions `tenant` and creates `collection`; returns the environment's name.
    pub async fn ready(&self, tenant: Uuid, collection: &str) -> &'static str {
        self.provision(tenant).await;
        self.create_collection(tenant, collection).await;
        self.name
    }

    pub async fn create_collection(&self, tenant: Uuid, name: &str) {
        let resp = self
            .post(
                tenant,
                "/api/collections",
                &serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{}: create collection",
            self.name
        );
    }

    /// Stops the service and removes everything it created on PostgreSQL.
    pub async fn finish(mut self) {
        if self.running.is_some() {
            self.stop().await;
        }
        if let Store::Postgres {
            db,
            admin_url,
            prefix,
        } = self.store
        {
            drop_prefixed(&admin_url, &prefix).await;
            db.drop_db().await;
        }
    }
}

/// Drops the tenant databases and roles a test created (names `<prefix><uuid hex>`).
pub async fn drop_prefixed(admin_url: &str, prefix: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await.unwrap();
    let pattern = format!("{prefix}%").replace('_', "\\_");
    for (list, drop) in [
        (
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        ),
        (
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
            "DROP ROLE IF EXISTS \"{}\"",
        ),
    ] {
        let names: Vec<String> = sqlx::query_scalar(list)
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for name in names {
            sqlx::query(sqlx::AssertSqlSafe(drop.replace("{}", &name)))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    let _ = conn.close().await;
}

/// Asserts a problem+json answer with the given status; returns its body.
pub async fn problem(resp: Response, status: StatusCode, what: &str) -> Value {
    assert_eq!(resp.status(), status, "{what}");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json"),
        "{what}: problem+json"
    );
    resp.json().await.unwrap()
}
