//! `tansu-bench` — load generation against loopback targets, the gateway benchmark (direct vs
//! Tansu's gateway vs nginx, plain HTTP and TLS, in one run) and the issuer's (`token`), the
//! event log's (`events`) and the dashboard's (`dashboard`) benchmarks, and the soak (`soak`).
//! How to run it and what each number means: `dev/bench/README.md`.
#![forbid(unsafe_code)]

mod dashboard;
mod db;
mod events;
mod gateway;
mod load;
mod procs;
mod seed;
mod soak;
mod storage;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tansu-bench",
    about = "Tansu benchmarks: a keep-alive HTTP/1.1 load generator for loopback targets"
)]
struct Cli {
    /// Tokio worker threads of this process (default: one per CPU).
    #[arg(long, global = true, hide = true)]
    workers: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load one URL (http:// or https:// on 127.0.0.1, ::1 or localhost) and print the figures.
    Load(LoadArgs),
    /// Upstream direct vs Tansu's gateway vs nginx, plain HTTP and TLS, in one run.
    Gateway(gateway::Args),
    /// Issuer: client_credentials, refresh and login rates next to raw signing/Argon2id rates.
    Token(token::Args),
    /// Security events: ingest rate up to 1M events, then query and verify latency.
    Events(events::Args),
    /// Storage: MiB/s through the gateway next to a file copy, and 4 KiB req/s.
    Storage(storage::Args),
    /// (internal) The storage service for `storage`; prints `LISTEN <addr>`.
    #[command(hide = true)]
    ServeStorage(tansu_bench::storage_rig::ServeStorageArgs),
    /// Dashboard pages with 10,000 users and 100,000 events: latency and Server-Timing.
    Dashboard(dashboard::Args),
    /// Database: document get and insert through the gateway next to direct sqlx (ratio).
    Db(db::Args),
    /// (internal) database-svc for `db`; prints `LISTEN <addr>`.
    #[command(hide = true)]
    ServeDatabase(db::ServeDatabaseArgs),
    /// Soak: the platform as separate processes under mixed traffic; RSS and open file
    /// descriptors of every process every minute, and their slopes.
    Soak(soak::Args),
    /// (internal) The benchmark's upstream: 13 bytes on every path; prints `LISTEN <addr>`.
    #[command(hide = true)]
    ServeUpstream,
}

#[derive(clap::Args)]
struct LoadArgs {
    /// The URL requested on every connection.
    url: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// PEM certificate to trust for https:// (the only one trusted).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Process(es) under test: their peak resident memory and CPU time are reported.
    #[arg(long)]
    pid: Vec<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = cli.workers;
    let result = match cli.command {
        Command::ServeUpstream => {
            service_runtime(workers).and_then(|rt| rt.block_on(gateway::serve_upstream()))
        }
        Command::Storage(args) => runtime(workers).and_then(|rt| rt.block_on(storage::run(args))),
        Command::ServeStorage(args) => {
            service_runtime(workers).and_then(|rt| rt.block_on(storage::serve(args)))
        }
        Command::Events(args) => runtime(workers).and_then(|rt| rt.block_on(events::run(args))),
        Command::Dashboard(args) => {
            runtime(workers).and_then(|rt| rt.block_on(dashboard::run(args)))
        }
        Command::Db(args) => runtime(workers).and_then(|rt| rt.block_on(db::run(args))),
        Command::Soak(args) => runtime(workers).and_then(|rt| rt.block_on(soak::run(args))),
        Command::ServeDatabase(args) => {
            service_runtime(workers).and_then(|rt| rt.block_on(db::serve_database(args)))
        }
        // The load generator needs a fraction of a core: one runtime thread leaves the rest
        // to identity (a second only adds cross-thread wake-ups).
        Command::Token(args) => {
            runtime(workers.or(Some(1))).and_then(|rt| rt.block_on(token::run(args)))
        }
        Command::Load(args) => runtime(workers).and_then(|rt| rt.block_on(load_one(args))),
        Command::Gateway(args) => runtime(workers).and_then(|rt| rt.block_on(gateway::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tansu-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A served service's runtime: the one its own binary runs on.
fn service_runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    tansu_shared::server::runtime(workers).context("starting the runtime")
}

/// The load generator's runtime: multi-threaded, one worker per core unless told otherwise.
fn runtime(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().build().context("starting the runtime")
}

/// Prints a benchmark's markdown report and, when asked, writes it to `out` too.
pub(crate) fn print_report(report: &str, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    println!("{report}");
    if let Some(out) = out {
        std::fs::write(out, report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// Seconds from the command line, bounded to something a benchmark can mean.
pub(crate) fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && (0.0..=3600.0).contains(&s),
        "{what}: between 0 and 3600 seconds"
    );
    Ok(Duration::from_secs_f64(s))
}

async fn load_one(args: LoadArgs) -> anyhow::Result<()> {
    let uri: http::Uri = args.url.parse().context("the URL")?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => anyhow::bail!("the URL must be http:// or https://"),
    };
    let authority = uri.authority().context("the URL has no host")?;
    let ip = match authority.host() {
        "localhost" => "127.0.0.1",
        "[::1]" => "::1",
        h => h,
    };
    let ip: std::net::IpAddr = ip
        .parse()
        .context("the host must be 127.0.0.1, ::1 or localhost")?;
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = std::net::SocketAddr::new(ip, port);
    load::check_loopback(addr)?;
    let tls = if https {
        let pem = match &args.ca {
            Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            None => anyhow::bail!("https:// needs --ca <certificate.pem>"),
        };
        let name = rustls::pki_types::ServerName::try_from(authority.host().to_owned())
            .context("the host as a TLS server name")?;
        Some((load::tls_connector(&pem)?, name))
    } else {
        None
    };
    let spec = load::LoadSpec {
        addr,
        host: authority.as_str().to_owned(),
        path: uri
            .path_and_query()
            .map_or("/".to_owned(), |pq| pq.as_str().to_owned()),
        tls,
        connections: args.connections,
        warmup: seconds(args.warmup, "--warmup")?,
        duration: seconds(args.duration, "--duration")?,
        request_timeout: Duration::from_secs(5),
        script: None,
    };
    let measured = procs::Measured { pids: args.pid };
    let row = gateway::measure(
        "target",
        if https { "https" } else { "http" },
        &spec,
        &measured,
    )
    .await?;
    println!("{}", gateway::table(std::slice::from_ref(&row)));
    if let Some(e) = &row.first_error {
        println!("first error: {e}");
    }
    Ok(())
}
