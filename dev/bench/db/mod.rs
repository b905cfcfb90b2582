//! `tansu-bench db` — the database benchmark: document get (by id, random among the
//! pre-inserted documents) and insert through the gateway (TLS) at `--connections`
//! connections, next to the same statements run directly with sqlx on the tenant's database
//! in the same run (their ratio), on SQLite and PostgreSQL.
//!
//! Identity, database-svc and the gateway each run as their own process (`tansu-bench-identity`,
//! `serve-database`, and `tansu-bench-gateway`). The direct side runs in this process on a pool that
//! database-svc's own `Tenants` opens (same options, same size, `SET ROLE` on PostgreSQL) and
//! runs the statements of `tansu_database::store::sql` — exactly what the service runs for a
//! get (one `SELECT`) and an insert (the collection's schema lookup, then one write
//! transaction: collection check, document row, change-feed number and row).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::Full;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use sqlx::Row as _;
use tansu_database::store::BeginWrite as _;

use crate::gateway::{Row, date_utc, loadavg, machine, measure, median_rounds, table};
use crate::load::{LoadSpec, Req, Script, ScriptFactory, Step};
use crate::procs::{self, Measured};
use crate::token::json_ok;

/// The collection every request reads and writes.
const COLLECTION: &str = "bench";
/// Documents per bulk request while pre-inserting (database-svc's `max_bulk`).
const BULK: usize = 1000;
/// Servers started by the benchmark live at most this long, whatever happens to it.
use tansu_bench::gateway_rig::CHILD_LIFETIME;

mod direct;
mod fixture;

pub(crate) use direct::*;
pub(crate) use fixture::*;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per measurement (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Rounds; in each, every operation runs through the gateway and directly back to back.
    /// The median round is reported, and the ratio of every round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Stores to run on: `sqlite`, `postgres` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    stores: Vec<String>,
    /// The PostgreSQL server for the tenant databases (created by database-svc for the run
    /// with a per-run prefix, dropped after).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Documents inserted before measuring; the gets pick among them at random.
    #[arg(long, default_value_t = 10_000)]
    documents: usize,
    /// Connections of the tenant's pool, in database-svc and the direct pool alike (default:
    /// database-svc's default `tenant_pool_size`).
    #[arg(long)]
    pool_size: Option<u32>,
    /// Also write the report (markdown) here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// database-svc as the benchmark runs it (also the configuration of the direct side's pool).
#[derive(clap::Args, Clone)]
pub struct ServeDatabaseArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Identity's base URL (`http://127.0.0.1:port/`): the issuer, and its JWKS.
    #[arg(long)]
    identity: String,
    /// Tenant databases on this PostgreSQL server; empty: SQLite files under `data_dir`.
    #[arg(long, default_value = "")]
    postgres_url: String,
    #[arg(long)]
    prefix: String,
    #[arg(long)]
    pool_size: u32,
}

impl ServeDatabaseArgs {
    fn config(&self) -> tansu_database::Config {
        tansu_database::Config {
            listen: "127.0.0.1:0".into(),
            issuer: self.identity.clone(),
            jwks_uri: format!("{}.well-known/jwks", self.identity),
            data_dir: self.data_dir.clone(),
            postgres_url: tansu_shared::config::Secret::new(self.postgres_url.clone()),
            tenant_db_prefix: self.prefix.clone(),
            tenant_pool_size: self.pool_size,
            ..tansu_database::Config::default()
        }
    }

    fn to_args(&self) -> Vec<String> {
        [
            "serve-database",
            "--data-dir",
            &self.data_dir.display().to_string(),
            "--identity",
            &self.identity,
            "--postgres-url",
            &self.postgres_url,
            "--prefix",
            &self.prefix,
            "--pool-size",
            &self.pool_size.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

pub async fn serve_database(args: ServeDatabaseArgs) -> anyhow::Result<()> {
    procs::exit_with_parent(CHILD_LIFETIME);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTEN {}", listener.local_addr()?);
    tansu_database::serve_on(listener, args.config(), std::future::pending()).await
}

// ---------------------------------------------------------------------------------------------
// The operations

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Get,
    Insert,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Insert => "insert",
        }
    }
}

/// The id of pre-inserted document `k`.
fn doc_id(k: u64) -> String {
    format!("d{k:07}")
}

/// A small order-like document (about 120 bytes of JSON).
fn document(n: u64) -> Value {
    json!({
        "customer": format!("c{}", n % 1000),
        "status": "paid",
        "total": (n % 997) as f64 + 0.5,
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
        "n": n,
    })
}

/// xorshift64*: the gets' document picks (not security-relevant; one stream per connection).
struct Picks(u64);

impl Picks {
    fn new(seed: u64) -> Self {
        Picks(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// One document-API request per operation through the gateway: `GET` of a random
/// pre-inserted document (200) or `POST` of a new one (201).
struct DocRequest {
    op: Op,
    host: String,
    authorization: String,
    documents: u64,
    picks: Picks,
    n: u64,
}

impl Script for DocRequest {
    fn start(&mut self) -> Req {
        let base = format!("/db/api/collections/{COLLECTION}/documents");
        let (builder, body) = match self.op {
            Op::Get => {
                let id = doc_id(self.picks.below(self.documents));
                (Request::get(format!("{base}/{id}")), Full::default())
            }
            Op::Insert => {
                self.n += 1;
                let body = serde_json::to_vec(&document(self.n)).unwrap_or_default();
                (
                    Request::post(base).header(header::CONTENT_TYPE, "application/json"),
                    Full::new(Bytes::from(body)),
                )
            }
        };
        builder
            .header(header::HOST, self.host.as_str())
            .header(header::AUTHORIZATION, self.authorization.as_str())
            .body(body)
            .expect("a benchmark request is well-formed")
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        let expected = match self.op {
            Op::Get => StatusCode::OK,
            Op::Insert => StatusCode::CREATED,
        };
        if status == expected {
            Step::Done
        } else {
            Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Set-up

// ---------------------------------------------------------------------------------------------
// The run

pub async fn run(args: Args) -> anyhow::Result<()> {
    let warmup = crate::seconds(args.warmup, "--warmup")?;
    let duration = crate::seconds(args.duration, "--duration")?;
    anyhow::ensure!(
        (1..=1000).contains(&args.connections),
        "--connections: 1 to 1000"
    );
    anyhow::ensure!((1..=20).contains(&args.rounds), "--rounds: 1 to 20");
    anyhow::ensure!(args.documents >= 1, "--documents: at least 1");
    let pool_size = args
        .pool_size
        .unwrap_or(tansu_database::Config::default().tenant_pool_size);
    anyhow::ensure!((1..=100).contains(&pool_size), "--pool-size: 1 to 100");
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Run on {}, {}.\n\nCommand: `tansu-bench db --connections {} --duration {} --warmup {} --rounds {} --documents {} --pool-size {pool_size} --stores {}`\n",
        date_utc(),
        machine(),
        args.connections,
        args.duration,
        args.warmup,
        args.rounds,
        args.documents,
        args.stores.join(",")
    );
    for store in &args.stores {
        anyhow::ensure!(
            store == "sqlite" || store == "postgres",
            "unknown store {store}"
        );
        let dir = tempfile::Builder::new()
            .prefix("tansu-bench-db-")
            .tempdir()?;
        let prefix = format!("tansu_bench_{}_", std::process::id());
        let db = ServeDatabaseArgs {
            data_dir: dir.path().join("database"),
            identity: String::new(),
            postgres_url: if store == "postgres" {
                args.postgres.clone()
            } else {
                String::new()
            },
            prefix: prefix.clone(),
            pool_size,
        };
        let result = tokio::select! {
            r = run_store(&args, store, dir.path(), db, warmup, duration) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        if store == "postgres" {
            drop_prefixed(&args.postgres, &prefix).await;
        }
        let _ = writeln!(report, "### {store}\n\n{}", result?);
    }
    crate::print_report(&report, args.out.as_deref())
}

/// The processes of one store's run, stopped when dropped at the latest (`kill_on_drop`).
async fn run_store(
    args: &Args,
    store: &str,
    dir: &Path,
    mut db: ServeDatabaseArgs,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<String> {
    let mut children = Vec::new();
    let outcome = run_store_in(args, store, dir, &mut db, warmup, duration, &mut children).await;
    for mut c in children.into_iter().rev() {
        procs::stop(&mut c, Duration::from_secs(5)).await;
    }
    outcome
}

async fn run_store_in(
    args: &Args,
    store: &str,
    dir: &Path,
    db: &mut ServeDatabaseArgs,
    warmup: Duration,
    duration: Duration,
    children: &mut Vec<tokio::process::Child>,
) -> anyhow::Result<String> {
    let identity_dir = dir.join("identity");
    let (identity, words) = procs::spawn_identity(&[
        "--database-url".into(),
        format!("sqlite://{}/identity.db?mode=rwc", dir.display()),
        "--data-dir".into(),
        identity_dir.display().to_string(),
    ])
    .await?;
    children.push(identity);
    let mut spawn = async |argv: Vec<String>| -> anyhow::Result<(u32, Vec<String>)> {
        let (child, words) = procs::spawn_self(&argv).await?;
        let pid = child.id().context("child pid")?;
        children.push(child);
        Ok((pid, words))
    };
    let addr = |words: &[String], i: usize| -> anyhow::Result<SocketAddr> {
        let a: SocketAddr = words.get(i).context("address")?.parse()?;
        crate::load::check_loopback(a)?;
        Ok(a)
    };
    db.identity = format!("http://{}/", addr(&words, 0)?);
    let (db_pid, words) = spawn(db.to_args()).await?;
    let database = addr(&words, 0)?;
    let (cert, key, pem) = crate::gateway::self_signed(dir)?;
    let (gw, words) = procs::spawn_gateway(&[
        "--upstream".into(),
        format!("http://{database}"),
        "--prefix".into(),
        "/db".into(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ])
    .await?;
    let gw_pid = gw.id().context("gateway pid")?;
    children.push(gw);
    let gateway = addr(&words, 0)?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes())?])
        .build()?;
    let tokens = identity_set_up(&http, &db.identity).await?;
    let provisioned = http
        .put(format!("http://{database}/provision/{}", tokens.tenant))
        .bearer_auth(&tokens.provision)
        .send()
        .await?;
    json_ok(provisioned, "provision").await?;
    let gateway_base = format!("https://localhost:{}", gateway.port());
    eprintln!("{store}: inserting {} documents …", args.documents);
    fill(&http, &gateway_base, &tokens.read_write, args.documents).await?;

    // The direct side's pool: database-svc's own `Tenants` with the same configuration.
    let tenants = tansu_database::tenants::Tenants::open(Arc::new(db.config())).await?;
    let tenant: uuid::Uuid = tokens.tenant.parse()?;
    let pool = tenants.store(tenant).await?.pool().clone();

    let connector = crate::load::tls_connector(pem.as_bytes())?;
    let authorization = format!("Bearer {}", tokens.read_write);
    let measured = Measured {
        pids: vec![gw_pid, db_pid],
    };
    let documents = args.documents as u64;
    let mut results: Vec<Vec<Row>> = vec![Vec::new(); 4];
    for round in 1..=args.rounds {
        for (i, op) in [Op::Get, Op::Insert].into_iter().enumerate() {
            let host = format!("localhost:{}", gateway.port());
            let authorization = authorization.clone();
            let script: ScriptFactory = Arc::new(move |n| {
                Box::new(DocRequest {
                    op,
                    host: host.clone(),
                    authorization: authorization.clone(),
                    documents,
                    picks: Picks::new(n as u64 + 1),
                    n: (n as u64) << 40,
                })
            });
            let spec = LoadSpec {
                addr: gateway,
                host: format!("localhost:{}", gateway.port()),
                path: "/".into(),
                tls: Some((connector.clone(), ServerName::try_from("localhost")?)),
                connections: args.connections,
                warmup,
                duration,
                request_timeout: Duration::from_secs(5),
                script: Some(script),
            };
            let through = measure(op.name(), "gateway (TLS)", &spec, &measured).await?;
            let load_before = loadavg();
            let result = direct_load(
                pool.clone(),
                op,
                args.connections,
                documents,
                warmup,
                duration,
            )
            .await?;
            let direct = Row {
                target: op.name().into(),
                proto: "direct sqlx".into(),
                rounds_rps: vec![result.rps()],
                first_error: result.first_error.clone(),
                result,
                peak_rss_mib: None,
                server_cpu: None,
                load_before,
            };
            eprintln!(
                "{store} round {round}: {} through the gateway {:.0}/s (p99 {:.2} ms, {} errors), direct {:.0}/s (p99 {:.2} ms, {} errors)",
                op.name(),
                through.result.rps(),
                through.result.quantile_ms(0.99),
                through.result.errors,
                direct.result.rps(),
                direct.result.quantile_ms(0.99),
                direct.result.errors,
            );
            results[2 * i].push(through);
            results[2 * i + 1].push(direct);
        }
    }
    tenants.close().await;
    Ok(report(&results))
}

/// The table (median rounds), the gateway / direct ratios per round and their median, and
/// the first error of any row.
fn report(results: &[Vec<Row>]) -> String {
    let mut out = String::new();
    for (i, op) in ["get", "insert"].into_iter().enumerate() {
        let ratios: Vec<f64> = results[2 * i]
            .iter()
            .zip(&results[2 * i + 1])
            .map(|(g, d)| g.result.rps() / d.result.rps())
            .collect();
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        let _ = writeln!(
            out,
            "- {op}: through the gateway / direct sqlx, per round {} (median **{:.2}**)",
            list.join(" / "),
            sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
        );
    }
    let rows = median_rounds(results.to_vec());
    let mut s = table(&rows);
    s.push('\n');
    s.push_str(&out);
    for r in rows.iter().filter(|r| r.first_error.is_some()) {
        let _ = writeln!(
            s,
            "- first error, {} {}: {}",
            r.target,
            r.proto,
            r.first_error.as_deref().unwrap_or_default()
        );
    }
    s
}

/// Drops the tenant databases and roles database-svc created with `prefix`.
async fn drop_prefixed(server: &str, prefix: &str) {
    use sqlx::Connection as _;
    let Ok(mut conn) = sqlx::PgConnection::connect(server).await else {
        eprintln!("could not connect to {server} to drop the benchmark's databases");
        return;
    };
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    for (list, drop) in [
        (
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            "DROP DATABASE IF EXISTS",
        ),
        (
            "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1",
            "DROP ROLE IF EXISTS",
        ),
    ] {
        let names: Vec<String> = sqlx::query_scalar(list)
            .bind(&pattern)
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
        for name in names {
            let force = if drop.contains("DATABASE") {
                " WITH (FORCE)"
            } else {
                ""
            };
            // `name` matched our own prefix (letters, digits, `_`): safe to splice.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("{drop} \"{name}\"{force}")))
                .execute(&mut conn)
                .await;
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_spread() {
        let mut p = Picks::new(1);
        let seen: std::collections::HashSet<u64> = (0..1000).map(|_| p.below(10)).collect();
        assert_eq!(seen.len(), 10);
        assert!((0..1000).all(|_| p.below(7) < 7));
        assert_eq!(doc_id(42), "d0000042");
    }
}
