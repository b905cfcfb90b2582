//! `tansu-bench token` — the issuer benchmark: client_credentials tokens/s (RS256 and
//! ES256), refresh grants/s and password logins/s against the identity service, each next to
//! the raw rate of the operation that bounds it (RS256/ES256 signing, Argon2id verification)
//! measured on every core of the same machine in the same run; and the token endpoint's latency
//! during a login storm. On SQLite (the embedded default) and PostgreSQL.
//!
//! Identity runs as its own process (`tansu-bench-identity serve-identity`), so its CPU time
//! and memory are its own; the load generator shares the cores with it (see
//! dev/bench/README.md). The raw Argon2id rate is measured by that executable too, on the same
//! allocator as the service's hashes (`tansu_bench::identity_rig`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::Full;
use tansu_identity::keys::{SigningAlg, SigningPair};

use crate::gateway::{Row, date_utc, machine, measure, table};
use crate::load::{LoadSpec, Req, Script, ScriptFactory, Step};
use crate::procs::{self, Measured};

pub(crate) use tansu_bench::identity_rig::DEV_SECRET;
use tansu_bench::identity_rig::{PASSWORD, raw_rate};
const REDIRECT_URI: &str = "http://127.0.0.1/cb";

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per scenario (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Stores to run on: `sqlite`, `postgres` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    stores: Vec<String>,
    /// A PostgreSQL server URL (a database on it is created for the run and dropped after).
    /// The default, on loopback, without TLS: as a server beside its database is deployed
    /// (sqlx's default `sslmode=prefer` would encrypt, unverified, on loopback too).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    )]
    postgres: String,
    /// Scenarios: `cc-rs256`, `cc-es256`, `refresh`, `login`, `storm` (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "cc-rs256,cc-es256,refresh,login,storm"
    )]
    only: Vec<String>,
    /// Rounds of each rate-bounded scenario, each between two measurements of its raw rate
    /// (the ratio of a round uses the mean of the two; the report gives the median round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// identity's PostgreSQL pool size (`database_max_connections`; 0: its default).
    #[arg(long, default_value_t = 0)]
    database_max_connections: u32,
    /// Token-endpoint connections running beside the login storm.
    #[arg(long, default_value_t = 4)]
    storm_token_connections: usize,
    /// Also write the report (markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A message the size of an access token's signing input.
fn token_sized_message() -> Vec<u8> {
    vec![b'x'; 560]
}

fn raw_signing_rate(alg: SigningAlg, duration: Duration) -> anyhow::Result<f64> {
    let (pair, _) = SigningPair::generate(alg)?;
    let message = token_sized_message();
    pair.sign(&message)?;
    Ok(raw_rate(duration, move || {
        let _ = pair.sign(&message);
    }))
}

/// The raw operation that bounds a scenario's rate.
#[derive(Clone, Copy)]
enum Bound {
    Sign(SigningAlg),
    Argon2,
}

impl Bound {
    fn name(self) -> String {
        match self {
            Self::Sign(alg) => format!("{} signing", alg.as_str()),
            Self::Argon2 => "Argon2id verification".into(),
        }
    }

    /// The raw rate on every core, measured on blocking threads (the runtime stays free).
    async fn rate(self, window: Duration) -> anyhow::Result<f64> {
        match self {
            Self::Sign(alg) => {
                tokio::task::spawn_blocking(move || raw_signing_rate(alg, window)).await?
            }
            Self::Argon2 => procs::raw_argon2_rate(window).await,
        }
    }
}

/// The ratio of each round: its rate over the mean of the raw rates measured just before and
/// just after it (`raws` has one more entry than `rps`).
fn round_ratios(rps: &[f64], raws: &[f64]) -> Vec<f64> {
    rps.iter()
        .zip(raws.windows(2))
        .map(|(r, w)| r / ((w[0] + w[1]) / 2.0))
        .collect()
}

/// The index of the median of `values` (the lower one for an even count).
fn median_index(values: &[f64]) -> Option<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    order.get(values.len().saturating_sub(1) / 2).copied()
}

// ---------------------------------------------------------------------------------------------
// Scripts

fn form_request(host: &str, path: &str, body: String, extra: &[(&str, &str)]) -> Req {
    let mut b = Request::post(path)
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body)))
        .expect("a benchmark request is well-formed")
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const CC_BODY: &str = "grant_type=client_credentials&scope=db.read%20db.write";

/// `client_credentials` with `client_secret_basic`; 200 = success. Sent pre-encoded
/// ([`Script::encoded`]): the same bytes every time.
struct ClientCredentials {
    host: String,
    basic: String,
}

impl Script for ClientCredentials {
    fn start(&mut self) -> Req {
        form_request(
            &self.host,
            "/connect/token",
            CC_BODY.into(),
            &[("authorization", &self.basic)],
        )
    }

    fn encoded(&self) -> Option<Bytes> {
        Some(Bytes::from(format!(
            "POST /connect/token HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{CC_BODY}",
            self.host,
            self.basic,
            CC_BODY.len()
        )))
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        if status == StatusCode::OK && body.starts_with(b"{\"access_token\"") {
            Step::Done
        } else {
            Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

/// One rotation of a refresh-token chain per operation; the new token is used next time.
struct Refresh {
    host: String,
    client_id: String,
    token: String,
    /// Where the chain's newest token goes back when the connection ends, for the next round.
    chains: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Refresh {
    fn drop(&mut self) {
        if let Ok(mut chains) = self.chains.lock() {
            chains.push(std::mem::take(&mut self.token));
        }
    }
}

impl Script for Refresh {
    fn start(&mut self) -> Req {
        form_request(
            &self.host,
            "/connect/token",
            format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                enc(&self.client_id),
                enc(&self.token)
            ),
            &[],
        )
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        match parsed
            .as_ref()
            .and_then(|v| v.get("refresh_token"))
            .and_then(|t| t.as_str())
        {
            Some(t) if status == StatusCode::OK => {
                self.token = t.to_owned();
                Step::Done
            }
            _ => Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

/// A browser sign-in through the real login form: `GET /connect/authorize` (the login page,
/// its CSRF cookie and fields), then `POST /login` with the password → a redirect to the client with
/// a code. No session cookie is kept, so every operation is a full password login.
struct Login {
    host: String,
    authorize: String,
    email: String,
    csrf_cookie: Option<String>,
}

impl Script for Login {
    fn start(&mut self) -> Req {
        self.csrf_cookie = None;
        Request::get(self.authorize.as_str())
            .header(header::HOST, self.host.as_str())
            .body(Full::default())
            .expect("a benchmark request is well-formed")
    }

    fn response(&mut self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> Step {
        match self.csrf_cookie.take() {
            None => {
                let html = String::from_utf8_lossy(&body);
                let (Some(cookie), Some(csrf), Some(request)) = (
                    cookie_pair(headers, "tansu_csrf"),
                    hidden_field(&html, "csrf"),
                    hidden_field(&html, "request"),
                ) else {
                    return Step::Failed(format!("login page: status {status}"));
                };
                let body = format!(
                    "csrf={}&request={}&email={}&password={}",
                    enc(&csrf),
                    enc(&request),
                    enc(&self.email),
                    enc(PASSWORD)
                );
                self.csrf_cookie = Some(cookie.clone());
                Step::Next(Box::new(form_request(
                    &self.host,
                    "/login",
                    body,
                    &[("cookie", &cookie)],
                )))
            }
            Some(_) => {
                let location = headers
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if status.is_redirection()
                    && location.starts_with(REDIRECT_URI)
                    && location.contains("code=")
                {
                    Step::Done
                } else {
                    Step::Failed(format!("login: status {status}, location {location:?}"))
                }
            }
        }
    }
}

/// `name=value` of a `Set-Cookie` header.
fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
        .map(str::to_owned)
}

/// The value of `<input type="hidden" name="{name}" value="…">`, HTML-unescaped.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

// ---------------------------------------------------------------------------------------------
// Set-up through the admin API

/// What the benchmark created in identity.
struct Fixture {
    rs: (String, String),
    es: (String, String),
    app: String,
    users: Vec<String>,
}

fn pkce() -> (String, String) {
    let verifier = tansu_identity::crypto::random_secret().expect("randomness");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

fn authorize_path(client_id: &str, challenge: &str, login_hint: Option<&str>) -> String {
    let mut p = format!(
        "/connect/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=bench&code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(REDIRECT_URI),
        enc("openid offline_access db.read"),
        enc(challenge)
    );
    if let Some(h) = login_hint {
        let _ = write!(p, "&login_hint={}", enc(h));
    }
    p
}

pub(crate) async fn json_ok(
    resp: reqwest::Response,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{what}: {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

async fn set_up(base: &str, users: usize) -> anyhow::Result<Fixture> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = json_ok(
        http.post(format!("{base}connect/token"))
            .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full"),
            ])
            .send()
            .await?,
        "admin token",
    )
    .await?;
    let admin = admin["access_token"]
        .as_str()
        .context("admin access_token")?
        .to_owned();
    let create_client = |body: serde_json::Value| {
        let (http, admin) = (http.clone(), admin.clone());
        async move {
            let v = json_ok(
                http.post(format!("{base}admin/clients"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await?,
                "create client",
            )
            .await?;
            anyhow::Ok((
                v["client_id"].as_str().context("client_id")?.to_owned(),
                v["client_secret"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    };
    let machine = |alg: &str| {
        serde_json::json!({
            "name": format!("bench {alg}"),
            "grant_types": ["client_credentials"],
            "scopes": ["db.read", "db.write"],
            "signing_alg": alg,
        })
    };
    let rs = create_client(machine("RS256")).await?;
    let es = create_client(machine("ES256")).await?;
    let (app, _) = create_client(serde_json::json!({
        "name": "bench app",
        "client_type": "public",
        "first_party": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "offline_access", "db.read"],
        "redirect_uris": [REDIRECT_URI],
        "signing_alg": "RS256",
    }))
    .await?;
    let tenant = json_ok(
        http.post(format!("{base}admin/tenants"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"slug": "bench", "name": "Bench"}))
            .send()
            .await?,
        "create tenant",
    )
    .await?;
    let tid = tenant["id"].as_str().context("tenant id")?.to_owned();
    let mut emails = Vec::new();
    for i in 0..users {
        let email = format!("user{i}@bench.test");
        json_ok(
            http.post(format!("{base}admin/tenants/{tid}/users"))
                .bearer_auth(&admin)
                .json(&serde_json::json!({"email": email, "password": PASSWORD, "roles": ["User"]}))
                .send()
                .await?,
            "create user",
        )
        .await?;
        emails.push(email);
    }
    Ok(Fixture {
        rs,
        es,
        app,
        users: emails,
    })
}

/// A refresh token for `email` through the real code flow (login form, code, PKCE).
async fn refresh_token_for(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    email: &str,
) -> anyhow::Result<String> {
    let (verifier, challenge) = pkce();
    let page = http
        .get(format!(
            "{}{}",
            base.trim_end_matches('/'),
            authorize_path(client_id, &challenge, None)
        ))
        .send()
        .await?;
    let cookie = cookie_pair(page.headers(), "tansu_csrf").context("csrf cookie")?;
    let html = page.text().await?;
    let csrf = hidden_field(&html, "csrf").context("csrf field")?;
    let request = hidden_field(&html, "request").context("request field")?;
    let resp = http
        .post(format!("{base}login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("login did not redirect")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let tokens = json_ok(
        http.post(format!("{base}connect/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .send()
            .await?,
        "code exchange",
    )
    .await?;
    Ok(tokens["refresh_token"]
        .as_str()
        .context("no refresh_token")?
        .to_owned())
}

// ---------------------------------------------------------------------------------------------
// The run

/// A PostgreSQL database created for the run, dropped at the end.
pub(crate) struct BenchDb {
    server: String,
    name: String,
}

impl BenchDb {
    pub(crate) async fn create(server: &str) -> anyhow::Result<(Self, String)> {
        use sqlx::Connection as _;
        let name = format!("tansu_bench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        let mut url = url::Url::parse(server)?;
        url.set_path(&name);
        Ok((
            Self {
                server: server.to_owned(),
                name,
            },
            url.to_string(),
        ))
    }

    pub(crate) async fn drop_it(self) {
        use sqlx::Connection as _;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.server).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let warmup = crate::seconds(args.warmup, "--warmup")?;
    let duration = crate::seconds(args.duration, "--duration")?;
    anyhow::ensure!(args.connections > 0, "--connections: at least 1");
    anyhow::ensure!(args.rounds > 0, "--rounds: at least 1");
    for s in &args.only {
        anyhow::ensure!(
            ["cc-rs256", "cc-es256", "refresh", "login", "storm"].contains(&s.as_str()),
            "unknown scenario {s}"
        );
    }
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    // The PostgreSQL server as the command named it (its TLS mode shows), without a password.
    let postgres = if args.stores.iter().any(|s| s == "postgres") {
        let mut url = url::Url::parse(&args.postgres).context("--postgres")?;
        let _ = url.set_password(None);
        format!(" --postgres '{url}'")
    } else {
        String::new()
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Run on {}, {}.\n\nCommand: `tansu-bench token --connections {} --duration {} --warmup {} --stores {} --only {} --rounds {} --database-max-connections {}{postgres}`\n",
        date_utc(),
        machine(),
        args.connections,
        args.duration,
        args.warmup,
        args.stores.join(","),
        args.only.join(","),
        args.rounds,
        args.database_max_connections
    );

    // Raw rates first, with the machine otherwise idle (identity is not started yet).
    let raw_window = duration
        .min(Duration::from_secs(5))
        .max(Duration::from_secs(1));
    let mut raw = String::from("| raw operation, one thread per CPU | per second |\n|---|---:|\n");
    let rs_raw = raw_signing_rate(SigningAlg::RS256, raw_window)?;
    let es_raw = raw_signing_rate(SigningAlg::ES256, raw_window)?;
    let _ = writeln!(raw, "| RS256 sign (RSA-2048, aws-lc-rs) | {rs_raw:.0} |");
    let _ = writeln!(raw, "| ES256 sign (P-256, aws-lc-rs) | {es_raw:.0} |");
    let argon_raw = if wants("login") || wants("storm") {
        let r = procs::raw_argon2_rate(raw_window).await?;
        let _ = writeln!(raw, "| Argon2id verify (m=19 MiB, t=2, p=1) | {r:.1} |");
        Some(r)
    } else {
        None
    };
    report.push_str(&raw);
    eprintln!("{raw}");

    for store in &args.stores {
        let (dir, db, url) = crate::seed::store_database(store, &args.postgres).await?;
        let result = run_store(
            &args,
            store,
            &url,
            dir.path(),
            (warmup, duration, raw_window),
        )
        .await;
        if let Some(db) = db {
            db.drop_it().await;
        }
        let (rows, extra) = result?;
        let _ = writeln!(report, "\n### {store}\n");
        report.push_str(&table(&rows));
        report.push('\n');
        report.push_str(&extra);
    }
    // The ratios above use the raw rates taken before the load. Taken again now, they show
    // whether the machine's speed drifted during the run (a shared VM's can, by more than the
    // targets' margins): a ratio is only as good as this agreement.
    let rs_after = raw_signing_rate(SigningAlg::RS256, raw_window)?;
    let _ = writeln!(
        report,
        "\nRaw rates again after the load (drift check): RS256 {rs_after:.0}/s ({:+.1} %)",
        (rs_after / rs_raw - 1.0) * 100.0
    );
    if let Some(before) = argon_raw {
        let after = procs::raw_argon2_rate(raw_window).await?;
        let _ = writeln!(
            report,
            "Argon2id {after:.1}/s ({:+.1} %)",
            (after / before - 1.0) * 100.0
        );
    }
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

async fn run_store(
    args: &Args,
    store: &str,
    url: &str,
    dir: &Path,
    (warmup, duration, raw_window): (Duration, Duration, Duration),
) -> anyhow::Result<(Vec<Row>, String)> {
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    let (mut child, words) = procs::spawn_identity(&[
        "--database-url".into(),
        url.into(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--database-max-connections".into(),
        args.database_max_connections.to_string(),
    ])
    .await?;
    let outcome = async {
        let addr: SocketAddr = words.first().context("address")?.parse()?;
        let pid = child.id().context("identity pid")?;
        let measured = Measured { pids: vec![pid] };
        let base = format!("http://{addr}/");
        let host = addr.to_string();
        let fixture = set_up(&base, args.connections).await?;
        let spec = |connections: usize, script: ScriptFactory| LoadSpec {
            addr,
            host: host.clone(),
            path: "/".into(),
            tls: None,
            connections,
            warmup,
            duration,
            request_timeout: Duration::from_secs(10),
            script: Some(script),
        };
        let cc = |(id, secret): &(String, String)| -> ScriptFactory {
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", enc(id), enc(secret)))
            );
            let host = host.clone();
            Arc::new(move |_| {
                Box::new(ClientCredentials {
                    host: host.clone(),
                    basic: basic.clone(),
                })
            })
        };
        let login = |offset: usize| -> ScriptFactory {
            let host = host.clone();
            let app = fixture.app.clone();
            let users = fixture.users.clone();
            Arc::new(move |n| {
                let (_, challenge) = pkce();
                Box::new(Login {
                    host: host.clone(),
                    authorize: authorize_path(&app, &challenge, None),
                    email: users[(n + offset) % users.len()].clone(),
                    csrf_cookie: None,
                })
            })
        };
        let mut rows = Vec::new();
        let mut extra = String::new();
        let run_one = async |name: &str, spec: LoadSpec| -> anyhow::Result<Row> {
            eprintln!("{store}: {name} …");
            let row = measure(name, store, &spec, &measured).await?;
            eprintln!("{}", table(std::slice::from_ref(&row)));
            if let Some(e) = &row.first_error {
                eprintln!("first error: {e}");
            }
            Ok(row)
        };
        // A rate-bounded scenario: `rounds` rounds, each between two measurements of the raw
        // rate of its bound, so a drift of the machine's speed shows in the ratio of one round
        // instead of biasing all of them.
        let run_bounded = async |name: &str, bound: Bound, spec: LoadSpec| -> anyhow::Result<(Row, String)> {
            let mut raws = vec![bound.rate(raw_window).await?];
            let mut rows: Vec<Row> = Vec::new();
            for round in 1..=args.rounds {
                rows.push(run_one(&format!("{name} (round {round} of {})", args.rounds), spec.clone()).await?);
                raws.push(bound.rate(raw_window).await?);
            }
            let rps: Vec<f64> = rows.iter().map(|r| r.result.rps()).collect();
            let ratios = round_ratios(&rps, &raws);
            let median = median_index(&ratios).context("no rounds")?;
            let list = |v: &[f64], f: &dyn Fn(f64) -> String| v.iter().map(|&x| f(x)).collect::<Vec<_>>().join(" / ");
            let line = format!(
                "- {name}: **{:.1} %** of raw {} (median of {} rounds; per round {} %; raw rate before, between and after the rounds {} /s)\n",
                ratios[median] * 100.0,
                bound.name(),
                ratios.len(),
                list(&ratios, &|x| format!("{:.1}", x * 100.0)),
                list(&raws, &|x| format!("{x:.0}")),
            );
            eprint!("{line}");
            let mut row = rows.swap_remove(median);
            row.target = name.to_owned();
            row.rounds_rps = rps;
            Ok((row, line))
        };
        let mut bounded = async |name: &str, bound: Bound, spec: LoadSpec| -> anyhow::Result<()> {
            let (row, line) = run_bounded(name, bound, spec).await?;
            rows.push(row);
            extra.push_str(&line);
            Ok(())
        };
        if wants("cc-rs256") {
            let spec = spec(args.connections, cc(&fixture.rs));
            bounded("client_credentials RS256", Bound::Sign(SigningAlg::RS256), spec).await?;
        }
        if wants("cc-es256") {
            let spec = spec(args.connections, cc(&fixture.es));
            bounded("client_credentials ES256", Bound::Sign(SigningAlg::ES256), spec).await?;
        }
        if wants("refresh") {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut tokens = Vec::new();
            for email in &fixture.users {
                tokens.push(refresh_token_for(&http, &base, &fixture.app, email).await?);
            }
            let chains = Arc::new(std::sync::Mutex::new(tokens));
            let host = host.clone();
            let app = fixture.app.clone();
            let script: ScriptFactory = Arc::new(move |_| {
                let token = chains
                    .lock()
                    .expect("not poisoned")
                    .pop()
                    .unwrap_or_default();
                Box::new(Refresh {
                    host: host.clone(),
                    client_id: app.clone(),
                    token,
                    chains: chains.clone(),
                })
            });
            let spec = spec(args.connections, script);
            bounded("refresh_token (RS256)", Bound::Sign(SigningAlg::RS256), spec).await?;
        }
        if wants("login") {
            bounded("password login", Bound::Argon2, spec(args.connections, login(0))).await?;
        }
        if wants("storm") {
            let calm = run_one(
                "client_credentials RS256, alone",
                spec(args.storm_token_connections, cc(&fixture.rs)),
            )
            .await?;
            let storm_spec = spec(args.connections, login(1));
            let during_spec = spec(args.storm_token_connections, cc(&fixture.rs));
            let (storm, during) = tokio::join!(
                measure("password login (storm)", store, &storm_spec, &measured),
                measure(
                    "client_credentials RS256, during the storm",
                    store,
                    &during_spec,
                    &measured
                ),
            );
            let (storm, during) = (storm?, during?);
            let _ = writeln!(
                extra,
                "- token endpoint p99 during a login storm ({} login connections, {} token connections): {:.2} ms (alone: {:.2} ms)",
                args.connections,
                args.storm_token_connections,
                during.result.quantile_ms(0.99),
                calm.result.quantile_ms(0.99)
            );
            rows.push(calm);
            rows.push(storm);
            rows.push(during);
        }
        anyhow::Ok((rows, extra))
    }
    .await;
    procs::stop(&mut child, Duration::from_secs(5)).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_fields_and_cookies_are_read() {
        let html = r#"<input type="hidden" name="csrf" value="a&amp;b"><input type="hidden" name="request" value="x=1&amp;y=2">"#;
        assert_eq!(hidden_field(html, "csrf").as_deref(), Some("a&b"));
        assert_eq!(hidden_field(html, "request").as_deref(), Some("x=1&y=2"));
        assert_eq!(hidden_field(html, "nope"), None);
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, "other=1; Path=/".parse().unwrap());
        headers.append(
            header::SET_COOKIE,
            "tansu_csrf=abc; Path=/; HttpOnly".parse().unwrap(),
        );
        assert_eq!(
            cookie_pair(&headers, "tansu_csrf").as_deref(),
            Some("tansu_csrf=abc")
        );
    }
}
