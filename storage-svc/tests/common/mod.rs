//! The storage service on an ephemeral port, with a token-signing issuer, on SQLite or on a
//! fresh PostgreSQL database.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use tansu_shared::auth::AccessClaims;
use tansu_shared::testing::http::SendOk;
use tansu_shared::testing::issuer::{TestIssuer, TestKey, rsa_key, sign};
use tansu_shared::testing::{TestDatabase, TestServer};
use tansu_storage::{AppState, Config};

pub const TENANT_A: &str = "0190f5c0-0000-7000-8000-00000000000a";
pub const TENANT_B: &str = "0190f5c0-0000-7000-8000-00000000000b";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Fixture {
    pub issuer: TestIssuer,
    pub key: TestKey,
    pub app: TestServer,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub pg: Option<TestDatabase>,
    pub state: AppState,
}

impl Fixture {
    /// `None` when the database kind is not available here (PostgreSQL without
    /// `TANSU_TEST_DATABASE_URL`), unless `TANSU_REQUIRE_ALL=1`.
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<Fixture> {
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(TestDatabase::create("tansu-storage").await?),
        };
        let key = rsa_key("k1");
        let issuer = TestIssuer::start(&[&key]).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            issuer: issuer.issuer.clone(),
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        if let Some(pg) = &pg {
            config.database_url = tansu_shared::config::Secret::new(pg.url.clone());
        }
        tweak(&mut config);
        let state = AppState::new(config).await.unwrap();
        let app = TestServer::start(tansu_storage::router(state.clone())).await;
        Some(Fixture {
            issuer,
            key,
            app,
            http: reqwest::Client::new(),
            dir,
            pg,
            state,
        })
    }

    pub async fn finish(self) {
        let Fixture { app, pg, state, .. } = self;
        app.stop().await;
        state.store.close().await;
        if let Some(pg) = pg {
            pg.drop_db().await;
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.state.config.data_dir.clone()
    }

    pub fn claims(&self, tenant: &str, scope: &str) -> AccessClaims {
        self.issuer.claims_for("tansu.storage", Some(tenant), scope)
    }

    pub fn token(&self, tenant: &str, scope: &str) -> String {
        sign(&self.key, &self.claims(tenant, scope))
    }

    /// A request as `tenant` with read and write scopes, through the gateway's tenant header.
    pub fn as_tenant(&self, method: Method, tenant: &str, path: &str) -> reqwest::RequestBuilder {
        self.with_token(
            method,
            tenant,
            &self.token(tenant, "storage.read storage.write"),
            path,
        )
    }

    pub fn with_token(
        &self,
        method: Method,
        tenant_header: &str,
        token: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.app.url(path))
            .bearer_auth(token)
            .header("x-tansu-tenant", tenant_header)
    }

    /// `method path` as `tenant` (read and write scopes): the response.
    pub async fn send(&self, method: Method, tenant: &str, path: &str) -> reqwest::Response {
        self.as_tenant(method, tenant, path).send_ok().await
    }

    /// `method path` as `tenant` with `headers` and `body` (empty: none): the response.
    pub async fn send_with(
        &self,
        method: Method,
        tenant: &str,
        path: &str,
        headers: Vec<(&str, String)>,
        body: &'static str,
    ) -> reqwest::Response {
        let mut r = self.as_tenant(method, tenant, path);
        for (name, value) in headers {
            r = r.header(name, value);
        }
        if !body.is_empty() {
            r = r.body(body);
        }
        r.send_ok().await
    }

    /// `GET path` as `tenant`: the answer's JSON (status not checked).
    pub async fn get_json(&self, tenant: &str, path: &str) -> serde_json::Value {
        self.as_tenant(Method::GET, tenant, path).send_json().await
    }

    /// The keys listed in `bucket` of `tenant` (one page).
    pub async fn keys(&self, tenant: &str, bucket: &str) -> Vec<String> {
        let v = self
            .get_json(tenant, &format!("/api/buckets/{bucket}/objects"))
            .await;
        v["objects"]
            .as_array()
            .expect("a listing")
            .iter()
            .map(|o| o["key"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn create_bucket(&self, tenant: &str, bucket: &str) {
        let r = self
            .send(Method::PUT, tenant, &format!("/api/buckets/{bucket}"))
            .await;
        assert_eq!(r.status(), 201, "create bucket {bucket}");
    }

    pub async fn put(
        &self,
        tenant: &str,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> reqwest::Response {
        self.as_tenant(
            Method::PUT,
            tenant,
            &format!("/api/buckets/{bucket}/objects/{key}"),
        )
        .body(body.to_vec())
        .send_ok()
        .await
    }

    pub async fn usage(&self, tenant: &str) -> serde_json::Value {
        self.get_json(tenant, "/api/usage").await
    }

    /// Blob files stored for `TENANT_A`.
    pub fn blob_files(&self) -> usize {
        std::fs::read_dir(self.data_dir().join("objects").join(TENANT_A))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Files left in the upload temp directory.
    pub fn temp_files(&self) -> usize {
        std::fs::read_dir(self.data_dir().join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ETag the service gives `body`: its quoted SHA-256.
pub fn etag_of(body: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", hex(&sha2::Sha256::digest(body)))
}

/// How many of `statuses` are `s`.
pub fn count(statuses: &[reqwest::StatusCode], s: reqwest::StatusCode) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

/// `n` uploads of `size` bytes at once, as `TENANT_A`, to `uploads/{prefix}-{i}` (chunked:
/// without a Content-Length). Their statuses, in no particular order.
pub async fn concurrent_uploads(
    f: &Fixture,
    prefix: &str,
    n: usize,
    size: usize,
    chunked: bool,
) -> Vec<reqwest::StatusCode> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let req = f.as_tenant(
            Method::PUT,
            TENANT_A,
            &format!("/api/buckets/uploads/objects/{prefix}-{i}"),
        );
        let body = vec![1u8; size];
        tasks.spawn(async move {
            let req = if chunked {
                let stream = futures::stream::iter([Ok::<_, std::io::Error>(body)]);
                req.body(reqwest::Body::wrap_stream(stream))
            } else {
                req.body(body)
            };
            req.send_ok().await.status()
        });
    }
    tasks.join_all().await
}

/// Polls `cond` until it holds, for at most `limit`.
pub async fn eventually(limit: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Declares one test per database kind for an `async fn(Db)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Db::Postgres).await;
                }
            )*
        }
    };
}
