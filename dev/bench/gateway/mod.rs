//! The gateway benchmark: a small response (13 bytes) from a tiny upstream,
//! measured direct, through Tansu's gateway and through nginx configured as the same reverse
//! proxy, over plain HTTP and TLS, with the same connections and duration, in one run.
//!
//! Every server runs as its own process so its memory and CPU are measured alone: the
//! upstream is this executable started again (`serve-upstream`), the gateway is
//! `tansu-bench-gateway` (`tansu_gateway::serve_with`, which the `tansu-gateway` binary's
//! `serve` calls, on the same allocator), nginx is Debian's `/usr/sbin/nginx` with a generated
//! config.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use rustls::pki_types::ServerName;
use tokio::process::{Child, Command};

use tansu_bench::gateway_rig::CHILD_LIFETIME;

use crate::load::{self, LoadSpec};
use crate::procs::{self, Measured};

mod nginx;
mod report;

pub(crate) use nginx::*;
pub(crate) use report::*;

/// The upstream's answer: 13 bytes.
pub const BODY: &str = "Hello, world!";
/// The tenant addressed by path (`/t/acme/…`); both proxies inject it as `X-Tansu-Tenant`.
const TENANT: &str = "acme";
/// The path through a proxy; the upstream sees `/hello`.
const PROXIED_PATH: &str = "/t/acme/bench/hello";
#[derive(clap::Args)]
pub struct Args {
    /// Concurrent keep-alive connections, the same for every target.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds per target and round.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before each measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Rounds over all targets (interleaved, so a burst of load from elsewhere on a shared
    /// machine hits one round rather than one target); the median round is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Only these targets (direct, gateway-http, gateway-https, nginx-http, nginx-https).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the results as markdown to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// nginx executable (Debian: `apt-get install -y nginx-light`).
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// Diagnosis only (not the gateway vs nginx comparison): the gateway without rate limiting.
    #[arg(long)]
    diag_no_rate_limit: bool,
    /// Diagnosis only: the gateway's worker threads (its `workers` setting; default: one per
    /// CPU).
    #[arg(long)]
    diag_gateway_workers: Option<usize>,
}

pub async fn serve_upstream() -> anyhow::Result<()> {
    procs::exit_with_parent(CHILD_LIFETIME);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTEN {}", listener.local_addr()?);
    let router = Router::new().fallback(hello);
    axum::serve(listener, router).await?;
    Ok(())
}

/// 13 bytes; the tenant the proxy injected is echoed in a header so the probe can check it.
async fn hello(headers: HeaderMap) -> (HeaderMap, &'static str) {
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(t) = headers.get("x-tansu-tenant") {
        out.insert("x-bench-tenant", t.clone());
    }
    (out, BODY)
}

/// A process tree started for the benchmark, stopped on drop at the latest.
pub(crate) struct Server {
    child: Child,
    /// nginx is stopped with `nginx -s stop` (its workers would outlive a killed master).
    nginx_stop: Option<Command>,
}

impl Server {
    async fn stop(mut self) {
        if let Some(mut cmd) = self.nginx_stop.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), cmd.status()).await;
            if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                .await
                .is_err()
            {
                kill_tree(&mut self.child).await;
            }
        } else {
            procs::stop(&mut self.child, Duration::from_secs(3)).await;
        }
    }
}

/// Kills a master and its workers (SIGKILL), when asking nicely did not work.
async fn kill_tree(child: &mut Child) {
    if let Some(pid) = child.id() {
        for worker in procs::children_of(pid) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(worker.to_string())
                .status()
                .await;
        }
    }
    let _ = child.kill().await;
}

pub(crate) struct Target {
    name: &'static str,
    proto: &'static str,
    spec: LoadSpec,
    measured: Measured,
    /// The tenant the upstream must have received (`None` direct).
    expect_tenant: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds >= 1 && args.rounds <= 20, "--rounds: 1 to 20");
    anyhow::ensure!(
        args.connections >= 1 && args.connections <= 1000,
        "--connections: 1 to 1000"
    );
    let dir = tempfile::Builder::new().prefix("tansu-bench-").tempdir()?;
    let mut servers: Vec<Server> = Vec::new();
    let outcome = tokio::select! {
        r = run_in(&args, dir.path(), &mut servers) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Always: every server started is stopped, also after an error or ^C.
    for s in servers.drain(..).rev() {
        s.stop().await;
    }
    outcome
}

async fn run_in(args: &Args, dir: &Path, servers: &mut Vec<Server>) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let warmup = crate::seconds(args.warmup, "--warmup")?;
    let duration = crate::seconds(args.duration, "--duration")?;

    // One self-signed certificate for both proxies.
    let (cert, key, pem) = self_signed(dir)?;
    let connector = load::tls_connector(pem.as_bytes())?;

    let (child, words) = procs::spawn_self(&["serve-upstream".to_owned()]).await?;
    let upstream_pid = child.id().context("upstream pid")?;
    servers.push(Server {
        child,
        nginx_stop: None,
    });
    let upstream: SocketAddr = words.first().context("upstream address")?.parse()?;

    let mut gateway_args = vec![
        "--upstream".to_owned(),
        format!("http://{upstream}"),
        "--cert".to_owned(),
        cert.display().to_string(),
        "--key".to_owned(),
        key.display().to_string(),
    ];
    let mut diagnosis = Vec::new();
    if args.diag_no_rate_limit {
        gateway_args.push("--no-rate-limit".to_owned());
        diagnosis.push("gateway rate limiting OFF".to_owned());
    }
    if let Some(n) = args.diag_gateway_workers {
        anyhow::ensure!((1..=64).contains(&n), "--diag-gateway-workers: 1 to 64");
        gateway_args.push("--gateway-workers".to_owned());
        gateway_args.push(n.to_string());
        diagnosis.push(format!("gateway with {n} worker thread(s)"));
    }
    let (child, words) = procs::spawn_gateway(&gateway_args).await?;
    let gateway_pid = child.id().context("gateway pid")?;
    servers.push(Server {
        child,
        nginx_stop: None,
    });
    let gw_https: SocketAddr = words.first().context("gateway address")?.parse()?;
    let gw_http: SocketAddr = words.get(1).context("gateway address")?.parse()?;

    let nginx = if args.nginx.exists() {
        let n = start_nginx(&args.nginx, dir, upstream, &cert, &key, cpus).await?;
        let (pid, http, https) = (n.0, n.1, n.2);
        servers.push(n.3);
        Some((pid, http, https))
    } else {
        None
    };
    let nginx_note = match &nginx {
        Some(_) => {
            let v = std::process::Command::new(&args.nginx).arg("-v").output();
            let v = v.map_or_else(
                |_| "nginx".into(),
                |o| String::from_utf8_lossy(&o.stderr).trim().to_owned(),
            );
            format!("{v} ({}), worker_processes {cpus}", args.nginx.display())
        }
        None => format!(
            "nginx skipped: {} does not exist (install it with `apt-get update && apt-get install -y nginx-light`)",
            args.nginx.display()
        ),
    };
    if nginx.is_none() {
        println!("{nginx_note}");
    }

    let spec = |addr: SocketAddr, path: &str, tls: bool| LoadSpec {
        addr,
        host: format!("localhost:{}", addr.port()),
        path: path.to_owned(),
        tls: tls.then(|| {
            (
                connector.clone(),
                ServerName::try_from("localhost").expect("a valid name"),
            )
        }),
        connections: args.connections,
        warmup,
        duration,
        request_timeout: Duration::from_secs(5),
        script: None,
    };
    let one = |pid: u32| Measured { pids: vec![pid] };
    let mut targets = vec![
        Target {
            name: "direct",
            proto: "http",
            spec: spec(upstream, "/hello", false),
            measured: one(upstream_pid),
            expect_tenant: false,
        },
        Target {
            name: "gateway",
            proto: "http",
            spec: spec(gw_http, PROXIED_PATH, false),
            measured: one(gateway_pid),
            expect_tenant: true,
        },
        Target {
            name: "gateway",
            proto: "https",
            spec: spec(gw_https, PROXIED_PATH, true),
            measured: one(gateway_pid),
            expect_tenant: true,
        },
    ];
    if let Some((pid, http, https)) = nginx {
        let mut pids = vec![pid];
        pids.extend(procs::children_of(pid));
        for (addr, proto, tls) in [(http, "http", false), (https, "https", true)] {
            targets.push(Target {
                name: "nginx",
                proto,
                spec: spec(addr, PROXIED_PATH, tls),
                measured: Measured { pids: pids.clone() },
                expect_tenant: true,
            });
        }
    }
    // Gateway and nginx of one protocol run back to back (their ratio is taken per round,
    // so load from elsewhere on a shared machine hits both alike).
    targets.sort_by_key(|t| (t.name != "direct", t.proto == "https"));
    if !args.only.is_empty() {
        targets.retain(|t| {
            let id = format!("{}-{}", t.name, t.proto);
            args.only
                .iter()
                .any(|o| *o == id || (o == "direct" && t.name == "direct"))
        });
        anyhow::ensure!(!targets.is_empty(), "--only selects no target");
    }

    // Every target answers what the benchmark expects before it is loaded.
    for t in &targets {
        let (status, headers, body) = load::probe(&t.spec)
            .await
            .with_context(|| format!("probing {} {}", t.name, t.proto))?;
        anyhow::ensure!(
            status.is_success() && body == BODY.as_bytes(),
            "{} {}: unexpected answer {status} {body:?}",
            t.name,
            t.proto
        );
        if t.expect_tenant {
            let tenant = headers.get("x-bench-tenant").and_then(|v| v.to_str().ok());
            anyhow::ensure!(
                tenant == Some(TENANT),
                "{} {}: the upstream did not receive X-Tansu-Tenant: {TENANT} ({tenant:?})",
                t.name,
                t.proto
            );
        }
    }

    let started = date_utc();
    println!(
        "{} target(s), {} connection(s), {:.0} s warm-up + {:.0} s measured, {} round(s); {cpus} CPUs",
        targets.len(),
        args.connections,
        warmup.as_secs_f64(),
        duration.as_secs_f64(),
        args.rounds
    );
    let mut results: Vec<Vec<Row>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=args.rounds {
        // Even rounds swap each gateway/nginx pair, so neither always goes first.
        let mut order: Vec<usize> = (0..targets.len()).collect();
        let mut i = 0;
        while round % 2 == 0 && i + 1 < order.len() {
            let (a, b) = (&targets[order[i]], &targets[order[i + 1]]);
            if a.proto == b.proto && a.name != "direct" && b.name != "direct" {
                order.swap(i, i + 1);
                i += 2;
            } else {
                i += 1;
            }
        }
        for i in order {
            let (t, rows) = (&targets[i], &mut results[i]);
            let row = measure(t.name, t.proto, &t.spec, &t.measured).await?;
            println!(
                "round {round}: {:<8} {:<5} {:>9.0} req/s  p99 {:>7.2} ms  errors {}  (load {})",
                t.name,
                t.proto,
                row.result.rps(),
                row.result.quantile_ms(0.99),
                row.result.errors,
                row.load_before
            );
            rows.push(row);
        }
    }
    let per_round = per_round_ratios(&targets, &results);
    let rows = median_rounds(results);

    let mut md = String::new();
    let _ = writeln!(md, "Run at {started} on {}.\n", machine());
    if !diagnosis.is_empty() {
        let _ = writeln!(
            md,
            "**Diagnostic run, not the gateway vs nginx comparison: {}.**\n",
            diagnosis.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "{} connections, {:.0} s warm-up + {:.0} s measured per target and round, {} round(s) interleaved; the median round is shown. Upstream body: {} bytes. {nginx_note}.\n",
        args.connections,
        warmup.as_secs_f64(),
        duration.as_secs_f64(),
        args.rounds,
        BODY.len()
    );
    md.push_str(&table(&rows));
    md.push('\n');
    md.push_str(&ratios(&rows));
    md.push_str(&per_round);
    for r in rows.iter().filter(|r| r.first_error.is_some()) {
        let _ = writeln!(
            md,
            "\nFirst error, {} {}: {}",
            r.target,
            r.proto,
            r.first_error.as_deref().unwrap_or_default()
        );
    }
    println!("\n{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
        println!("written to {}", out.display());
    }
    Ok(())
}

/// A free loopback port (bound and released; nginx binds it a moment later).
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tansu_shared::config::Validate;

    #[test]
    fn the_benchmark_gateway_config_is_valid_and_limits_on() {
        let c = tansu_bench::gateway_rig::gateway_config(
            "http://127.0.0.1:1",
            Path::new("c"),
            Path::new("k"),
        );
        assert_eq!(c.validate(), Vec::<String>::new());
        assert!(c.rate_limit.enabled);
        assert!(!c.dev_mode);
    }

    #[test]
    fn nginx_conf_names_every_setting_of_the_comparison() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let conf = nginx_conf(
            Path::new("/tmp/x"),
            a,
            a,
            a,
            Path::new("c"),
            Path::new("k"),
            2,
        );
        for needle in [
            "worker_processes 2;",
            "access_log off;",
            "keepalive 64;",
            "proxy_http_version 1.1;",
            "proxy_set_header X-Tansu-Tenant acme;",
            "proxy_set_header X-Forwarded-For $remote_addr;",
            "limit_req zone=per_ip",
            "listen 127.0.0.1:1 ssl;",
        ] {
            assert!(conf.contains(needle), "{needle}");
        }
    }
}
