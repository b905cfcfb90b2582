//! Several replicas of every service as separate processes (the binaries of this build) on one
//! PostgreSQL and one Redis: what one replica does, the others see.
//!
//! Two identities, two database services, two dashboards and two gateways; gateway 1
//! balances the dashboard over both replicas and gateway 2 sends it to dashboard 2 only; both
//! gateways balance identity and the database service over both replicas. The PostgreSQL and Redis servers belong to the
//! test, so the fault suites may stop and start them.
//!
//! Needs the service binaries (`cargo build --workspace --bins`, which the README's test
//! command and CI run first), PostgreSQL's server binaries and `redis-server`; skipped without
//! them unless `TANSU_REQUIRE_ALL=1`.

#[path = "../dashboard/common.rs"]
mod common;
mod faults;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tansu_shared::testing::processes::{self, Postgres, Redis, Replica, free_port};

const SUITE: &str = "replicas";
const DEV_SECRET: &str = "replicas-dev-client-secret-0123456789";
/// How long a gateway trusts a tenant's status from identity's directory, and identity a
/// client row or tenant status: long, so that only the pushed change can explain a
/// suspension holding everywhere within [`PUSH_BOUND`].
const CACHE_MS: u64 = 30_000;
/// Within this, a change made on one replica holds on every replica and gateway (pushed
/// through Redis; the time is Redis's round trip and one directory lookup).
const PUSH_BOUND: Duration = Duration::from_secs(1);
/// The strict budget shared by both gateways in the rate-limit check.
const LIMITED: &str = "/db/limited";
const LIMITED_BURST: usize = 6;

/// One replica of each suite runs at a time: each starts ten processes on two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The running platform.
pub struct Platform {
    pub pg: Postgres,
    pub redis: Redis,
    pub identities: Vec<Replica>,
    pub databases: Vec<Replica>,
    pub dashboards: Vec<Replica>,
    pub gateways: Vec<Replica>,
    /// `https://127.0.0.1:<gateway i>`
    pub bases: Vec<String>,
    pub issuer: String,
    pub certificate_pem: String,
    /// Trusts the gateways' certificate; no redirects followed.
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Everything the suite needs, or why it is skipped.
fn prerequisites() -> Option<PathBuf> {
    let bins = processes::bin_dir();
    for service in ["identity", "gateway", "database", "dashboard"] {
        if !bins.join(format!("tansu-{service}")).exists() {
            return tansu_shared::testing::skip_or_fail(
                SUITE,
                "the service binaries are not built (cargo build --workspace --bins)",
            );
        }
    }
    if !Redis::available() {
        return tansu_shared::testing::skip_or_fail(SUITE, "no redis-server");
    }
    match Postgres::binaries() {
        Some(b) => Some(b),
        None => tansu_shared::testing::skip_or_fail(SUITE, "no PostgreSQL server binaries"),
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

impl Platform {
    /// Starts everything and waits until every replica is ready.
    pub async fn start(pg_bin: PathBuf, tweak_identity: &str) -> Platform {
        tansu_shared::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("tansu-replicas-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_owned();
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        eprintln!("replicas: logs under {}", logs.display());

        let pg = tokio::task::spawn_blocking(move || Postgres::start(pg_bin))
            .await
            .unwrap();
        pg.create_database("identity");
        pg.create_database("database");
        let redis = Redis::start();

        let cert = tansu_dev::tls::ensure_dev_certificate(&root.join("tls")).unwrap();
        let gw_ports = [free_port(), free_port()];
        let id_ports = [free_port(), free_port()];
        let db_ports = [free_port(), free_port()];
        let dash_ports = [free_port(), free_port()];
        let public = format!("https://127.0.0.1:{}", gw_ports[0]);
        let issuer = format!("{public}/identity/");
        let b64 = base64::engine::general_purpose::STANDARD;
        let master_key = b64.encode(rand_bytes());
        let session_key = b64.encode(rand_bytes());

        // What every replica of a service shares; what differs per replica comes from the
        // environment (listeners, data directories, which identity a replica asks).
        let shared = format!(
            r#"
[identity]
issuer = "{issuer}"
database_url = "{identity_db}"
dev_mode = true
master_key = "{master_key}"
dev_client_secret = "{DEV_SECRET}"
dev_admin_password = "{password}"
dev_dashboard_url = "{public}/dashboard/"
database_service_url = "http://127.0.0.1:{db0}/"
provisioning_token_url = "http://127.0.0.1:{id0}/connect/token"
key_check_interval_secs = 1
redis_url = "{redis}"
key_rotation_lead_secs = 3
client_cache_ms = {CACHE_MS}
{tweak_identity}

[database]
issuer = "{issuer}"
discovery_url = ""
database_url = "{database_db}"
postgres_url = "{postgres}"
redis_url = "{redis}"

[dashboard]
issuer = "{issuer}"
public_url = "{public}/dashboard/"
health_url = "{public}/health"
client_id = "tansu-dashboard"
client_secret = "{DEV_SECRET}"
ca_file = "{cert}"
redis_url = "{redis}"
session_key = "{session_key}"

[gateway]
listen_http = ""
listen_internal = ""
tls_cert = "{cert}"
tls_key = "{key}"
dev_mode = true
tenant_cache_ms = {CACHE_MS}
routes = [
  {{ prefix = "/identity", upstreams = ["http://127.0.0.1:{id0}", "http://127.0.0.1:{id1}"] }},
  {{ prefix = "/db", upstreams = ["http://127.0.0.1:{db0}", "http://127.0.0.1:{db1}"] }},
  {{ prefix = "/dashboard", upstreams = ["DASHBOARD"] }},
]

[gateway.upstream]
health_interval_ms = 250
eject_ms = 2000

[gateway.tenant_directory]
client_id = "tansu-dashboard"
client_secret = "{DEV_SECRET}"

[gateway.rate_limit]
redis_url = "{redis}"
per_ip = {{ burst = 100000, replenish_ms = 1 }}
strict = [{{ path_prefix = "{LIMITED}", burst = {LIMITED_BURST}, replenish_ms = 600000 }}]
"#,
            identity_db = pg.url("identity"),
            database_db = pg.url("database"),
            postgres = pg.url("postgres"),
            password = common::PASSWORD,
            db0 = db_ports[0],
            db1 = db_ports[1],
            id0 = id_ports[0],
            id1 = id_ports[1],
            cert = cert.cert_path.display(),
            key = cert.key_path.display(),
            redis = redis.url(),
        );
        let config = write(&root, "tansu.toml", &shared);
        let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let mut identities = Vec::new();
        let mut databases = Vec::new();
        let mut dashboards = Vec::new();
        let mut gateways = Vec::new();
        for i in 0..2 {
            let data = root.join(format!("data-{i}"));
            identities.push(Replica::new(
                "identity",
                &format!("identity-{i}"),
                loopback(id_ports[i]),
                config.clone(),
                env(&[
                    ("TANSU_IDENTITY__LISTEN", loopback(id_ports[i]).to_string()),
                    (
                        "TANSU_IDENTITY__DATA_DIR",
                        data.join("identity").display().to_string(),
                    ),
                ]),
                &logs,
            ));
            let identity = format!("http://127.0.0.1:{}/", id_ports[i]);
            databases.push(Replica::new(
                "database",
                &format!("database-{i}"),
                loopback(db_ports[i]),
                config.clone(),
                env(&[
                    ("TANSU_DATABASE__LISTEN", loopback(db_ports[i]).to_string()),
                    (
                        "TANSU_DATABASE__DATA_DIR",
                        data.join("database").display().to_string(),
                    ),
                    (
                        "TANSU_DATABASE__JWKS_URI",
                        format!("{identity}.well-known/jwks"),
                    ),
                    ("TANSU_DATABASE__EVENTS__IDENTITY_URL", identity.clone()),
                    (
                        "TANSU_DATABASE__EVENTS__CLIENT_ID",
                        "tansu-dashboard".into(),
                    ),
                    ("TANSU_DATABASE__EVENTS__CLIENT_SECRET", DEV_SECRET.into()),
                    (
                        "TANSU_DATABASE__TENANT_DIRECTORY__IDENTITY_URL",
                        identity.clone(),
                    ),
                    (
                        "TANSU_DATABASE__TENANT_DIRECTORY__CLIENT_ID",
                        "tansu-dashboard".into(),
                    ),
                    (
                        "TANSU_DATABASE__TENANT_DIRECTORY__CLIENT_SECRET",
                        DEV_SECRET.into(),
                    ),
                ]),
                &logs,
            ));
            dashboards.push(Replica::new(
                "dashboard",
                &format!("dashboard-{i}"),
                loopback(dash_ports[i]),
                config.clone(),
                env(&[(
                    "TANSU_DASHBOARD__LISTEN",
                    loopback(dash_ports[i]).to_string(),
                )]),
                &logs,
            ));
            // Gateway 1 balances the dashboard over both replicas (a sign-in's steps land on
            // either: the pending sign-in is sealed with the shared key); gateway 2 sends it
            // to dashboard 2 only.
            let dashboards = match i {
                0 => format!(
                    "\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"",
                    dash_ports[0], dash_ports[1]
                ),
                _ => format!("\"http://127.0.0.1:{}\"", dash_ports[1]),
            };
            let own = shared.replace("\"DASHBOARD\"", &dashboards);
            gateways.push(Replica::new(
                "gateway",
                &format!("gateway-{i}"),
                loopback(gw_ports[i]),
                write(&root, &format!("gateway-{i}.toml"), &own),
                env(&[
                    (
                        "TANSU_GATEWAY__LISTEN_HTTPS",
                        loopback(gw_ports[i]).to_string(),
                    ),
                    ("TANSU_GATEWAY__TENANT_DIRECTORY__IDENTITY_URL", identity),
                ]),
                &logs,
            ));
        }
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut p = Platform {
            pg,
            redis,
            identities,
            databases,
            dashboards,
            gateways,
            bases: gw_ports
                .iter()
                .map(|p| format!("https://127.0.0.1:{p}"))
                .collect(),
            issuer,
            certificate_pem: cert.cert_pem,
            http,
            _dir: dir,
        };
        let ready = Duration::from_secs(90);
        for group in [&mut p.identities, &mut p.databases, &mut p.dashboards] {
            for r in group.iter_mut() {
                r.start();
            }
            for r in group.iter_mut() {
                let url = format!("http://{}/health/ready", r.addr);
                r.wait_ready(&p.http, &url, ready).await;
            }
        }
        for g in p.gateways.iter_mut() {
            g.start();
        }
        for g in p.gateways.iter_mut() {
            let url = format!("https://{}/health", g.addr);
            g.wait_ready(&p.http, &url, ready).await;
        }
        p
    }

    /// A client-credentials token of the dev client, asked of identity replica `i` directly.
    pub async fn dev_token(&self, i: usize, scope: &str) -> String {
        let r = self
            .http
            .post(format!("http://{}/connect/token", self.identities[i].addr))
            .basic_auth("tansu-dashboard", Some(DEV_SECRET))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "dev token from identity-{i}");
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Identity replica `i`'s admin API.
    pub async fn admin(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = self.dev_token(i, "admin.full").await;
        let mut req = self
            .http
            .request(
                method,
                format!("http://{}/admin/{path}", self.identities[i].addr),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A tenant with a provisioned database and a client that may read and write it; returns
    /// the tenant id, a token of that client and its credentials.
    pub async fn tenant_with_data(&self, slug: &str) -> (String, String, (String, String)) {
        let (s, t) = self
            .admin(
                0,
                reqwest::Method::POST,
                "tenants",
                Some(json!({"slug": slug, "name": slug})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create tenant: {t}");
        let tid = t["id"].as_str().unwrap().to_owned();
        let admin = self.dev_token(1, "admin.full db.provision").await;
        let r = self
            .http
            .put(format!("{}/db/provision/{tid}", self.bases[0]))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_eq!(
            status,
            201,
            "provision {slug}: {}",
            r.text().await.unwrap_or_default()
        );
        let (s, c) = self
            .admin(
                1,
                reqwest::Method::POST,
                "clients",
                Some(json!({
                    "name": format!("app of {slug}"),
                    "tenant_id": tid,
                    "grant_types": ["client_credentials"],
                    "scopes": ["db.read", "db.write"],
                })),
            )
            .await;
        assert!(s.is_success(), "create client: {s} {c}");
        let client = (
            c["client_id"].as_str().unwrap().to_owned(),
            c["client_secret"].as_str().unwrap().to_owned(),
        );
        let r = self
            .http
            .post(format!("{}/identity/connect/token", self.bases[1]))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "db.read db.write"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tenant token");
        let token = r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        (tid, token, client)
    }

    /// A client-credentials request of `client` at identity replica `i` directly.
    pub async fn client_token(&self, i: usize, client: &(String, String)) -> StatusCode {
        self.http
            .post(format!("http://{}/connect/token", self.identities[i].addr))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("grant_type", "client_credentials"), ("scope", "db.read")])
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// `GET /db/api/collections` through gateway `g` with `token`.
    pub async fn list_collections(&self, g: usize, token: &str) -> StatusCode {
        self.http
            .get(format!("{}/db/api/collections", self.bases[g]))
            .bearer_auth(token)
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or(StatusCode::BAD_GATEWAY)
    }

    /// The signing keys (`kid`s) identity replica `i` lists.
    pub async fn key_ids(&self, i: usize) -> Vec<String> {
        let (s, body) = self
            .admin(i, reqwest::Method::GET, "keys/policies", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let mut kids: Vec<String> = body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        kids
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

async fn introspect(p: &Platform, i: usize, token: &str) -> bool {
    let r = p
        .http
        .post(format!(
            "http://{}/connect/introspect",
            p.identities[i].addr
        ))
        .basic_auth("tansu-dashboard", Some(DEV_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["active"] == json!(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_does_every_replica_sees() {
    let Some(pg_bin) = prerequisites() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let p = Platform::start(pg_bin, "").await;

    // Both identities started on the empty database: the first keys were created once.
    let first = p.key_ids(0).await;
    assert_eq!(
        first,
        p.key_ids(1).await,
        "both replicas serve one key ring"
    );

    // A dashboard session created through gateway 1 (dashboard 1) works through gateway 2
    // (dashboard 2): the session lives in Redis, sealed with the shared key.
    let mut b = common::Browser::new(&p.certificate_pem);
    let landed = common::sign_in(&mut b, &format!("{}/dashboard/", p.bases[0]), "").await;
    assert!(landed.body.contains("Service health"), "{}", landed.body);
    let other = b.get(&format!("{}/dashboard/keys", p.bases[1])).await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    assert!(other.body.contains("Signing keys"), "{}", other.body);
    println!("replicas: a dashboard session made through gateway 1 works through gateway 2");

    // A token revoked on identity 1 is refused by identity 2's introspection at once.
    let token = p.dev_token(0, "admin.full").await;
    assert!(introspect(&p, 1, &token).await, "active before revocation");
    let r = p
        .http
        .post(format!(
            "http://{}/connect/revocation",
            p.identities[0].addr
        ))
        .basic_auth("tansu-dashboard", Some(DEV_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !introspect(&p, 1, &token).await,
        "revoked on identity 1: inactive at identity 2"
    );
    println!("replicas: revoked at identity 1, inactive at identity 2's introspection at once");

    // A tenant suspended on identity 2 is refused by both gateways, and its clients by
    // identity 1's token endpoint, within the push bound (all three had it cached as active).
    let (tid, tenant_token, client) = p.tenant_with_data("replica-shop").await;
    for g in 0..2 {
        assert_eq!(p.list_collections(g, &tenant_token).await, StatusCode::OK);
    }
    assert_eq!(p.client_token(0, &client).await, StatusCode::OK);
    let (s, body) = p
        .admin(
            1,
            reqwest::Method::POST,
            &format!("tenants/{tid}/suspend"),
            None,
        )
        .await;
    assert!(s.is_success(), "suspend: {s} {body}");
    let suspended = Instant::now();
    let mut refused_after = [None, None, None];
    while refused_after.iter().any(Option::is_none) {
        for (n, at) in refused_after.iter_mut().enumerate() {
            let refused = match n {
                0 | 1 => p.list_collections(n, &tenant_token).await == StatusCode::FORBIDDEN,
                _ => p.client_token(0, &client).await != StatusCode::OK,
            };
            if at.is_none() && refused {
                *at = Some(suspended.elapsed());
            }
        }
        assert!(
            suspended.elapsed() < PUSH_BOUND,
            "the suspended tenant is still served after {:?} (gateway 1, gateway 2, identity 1's token endpoint): {refused_after:?}",
            suspended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "replicas: suspended on identity 2; refused by gateway 1 after {:?}, gateway 2 after {:?}, identity 1's token endpoint after {:?} (caches {CACHE_MS} ms; pushed)",
        refused_after[0].unwrap(),
        refused_after[1].unwrap(),
        refused_after[2].unwrap()
    );

    // A tenant database deprovisioned at database 1 is refused by database 2 within the push
    // bound, though database 2 had just used (and confirmed) its open pool.
    let (gone, gone_token, _) = p.tenant_with_data("replica-gone").await;
    let collections_at = |i: usize| {
        p.http
            .get(format!("http://{}/api/collections", p.databases[i].addr))
            .bearer_auth(&gone_token)
            .header("x-tansu-tenant", &gone)
            .send()
    };
    for i in 0..2 {
        assert_eq!(collections_at(i).await.unwrap().status(), StatusCode::OK);
    }
    let provisioner = p.dev_token(0, "db.provision").await;
    let r = p
        .http
        .delete(format!("http://{}/provision/{gone}", p.databases[0].addr))
        .bearer_auth(&provisioner)
        .send()
        .await
        .unwrap();
    let deprovisioned = Instant::now();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    loop {
        let status = collections_at(1).await.unwrap().status();
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            deprovisioned.elapsed() < PUSH_BOUND,
            "database 2 still serves a tenant deprovisioned at database 1 after {:?}",
            deprovisioned.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "replicas: deprovisioned at database 1; refused by database 2 after {:?} (pushed)",
        deprovisioned.elapsed()
    );

    // One budget across both gateways (Redis): half through each, then both refuse.
    let mut statuses = Vec::new();
    for n in 0..LIMITED_BURST + 2 {
        let r = p
            .http
            .get(format!("{}{LIMITED}", p.bases[n % 2]))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        limited, 2,
        "{LIMITED_BURST} requests of one budget across two gateways, then 429: {statuses:?}"
    );
    assert!(
        statuses[..LIMITED_BURST].iter().all(|s| *s != 429),
        "{statuses:?}"
    );
    println!("replicas: rate limit across both gateways: {statuses:?}");

    // Twenty rotation requests, ten on each identity at once: one rotation (one new key per
    // algorithm), seen by both.
    let before = p.key_ids(0).await;
    let token = [
        p.dev_token(0, "admin.full").await,
        p.dev_token(1, "admin.full").await,
    ];
    let mut ticks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let req = p
            .http
            .post(format!(
                "http://{}/admin/keys/rotate-now",
                p.identities[n % 2].addr
            ))
            .bearer_auth(&token[n % 2]);
        ticks.spawn(async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) });
    }
    let answers = ticks.join_all().await;
    assert!(
        answers.iter().all(|s| (200..300).contains(s)),
        "{answers:?}"
    );
    let after = p.key_ids(0).await;
    let algorithms = first.len();
    assert_eq!(
        after.len(),
        before.len() + algorithms,
        "20 rotation requests over two replicas: exactly one rotation ({before:?} → {after:?})"
    );
    assert_eq!(after, p.key_ids(1).await);
    println!(
        "replicas: 20 rotation requests over both identities: {} new key(s), one per algorithm",
        after.len() - before.len()
    );
}
