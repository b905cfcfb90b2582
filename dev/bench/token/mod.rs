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
use tansu_identity::keys::{SigningAlg, SigningPair};

use crate::gateway::{Row, date_utc, machine, measure, table};
use crate::load::{LoadSpec, ScriptFactory};
use crate::procs::{self, Measured};

pub(crate) use tansu_bench::identity_rig::DEV_SECRET;
use tansu_bench::identity_rig::raw_rate;

mod fixture;
mod scripts;

pub(crate) use fixture::*;
pub(crate) use scripts::*;
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

// ---------------------------------------------------------------------------------------------
// Set-up through the admin API

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
    use http::{HeaderMap, header};

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
