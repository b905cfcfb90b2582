//! The gateway as the benchmarks run it (`tansu-bench gateway` and `db`): the executable
//! `tansu-bench-gateway` (dev/bench/gateway_main.rs) serves this configuration with
//! `tansu_gateway::serve_with`, which the `tansu-gateway` binary's `serve` calls too. It is an
//! executable of its own so that it runs on the allocator `tansu-gateway` ships with
//! (mimalloc), while the other services `tansu-bench` starts keep the system allocator, as
//! their own binaries do.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Buckets so large that the benchmark never empties them: every request still takes a token
/// from its per-client bucket (a full GCRA check), none is refused. The benchmark's requests
/// carry no token the gateway verifies, so they spend no tenant's budget.
pub const HUGE_BURST: u32 = 1_000_000_000;

/// Servers started by a benchmark live at most this long, whatever happens to it.
pub const CHILD_LIFETIME: Duration = Duration::from_secs(3600);

/// `tansu-bench-gateway`: prints `LISTEN <https> <http>` once listening; exits when its stdin
/// closes (the benchmark stopped).
#[derive(clap::Parser)]
#[command(name = "tansu-bench-gateway")]
pub struct ServeGatewayArgs {
    /// The upstream (`http://127.0.0.1:port`).
    #[arg(long)]
    pub upstream: String,
    #[arg(long)]
    pub cert: PathBuf,
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long)]
    pub no_rate_limit: bool,
    /// The gateway's `workers` (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub gateway_workers: usize,
    /// The route's prefix (`tansu-bench db` routes `/db` to database-svc).
    #[arg(long, default_value = "/bench")]
    pub prefix: String,
}

/// The gateway configuration of the benchmark: one route, the default protections, tenant
/// resolution (open directory: `/t/acme/…` is tenant `acme`) and rate limiting on.
pub fn gateway_config(upstream: &str, cert: &Path, key: &Path) -> tansu_gateway::Config {
    let mut config = tansu_gateway::Config {
        listen_https: "127.0.0.1:0".into(),
        listen_http: String::new(),
        tls_cert: cert.to_owned(),
        tls_key: key.to_owned(),
        dev_mode: false,
        routes: vec![tansu_gateway::Route {
            prefix: "/bench".into(),
            upstreams: vec![upstream.to_owned()],
        }],
        route_settings: Vec::new(),
        tenants: None,
        ..tansu_gateway::Config::default()
    };
    let huge = tansu_gateway::Bucket {
        burst: HUGE_BURST,
        replenish_ms: 1,
    };
    config.rate_limit.enabled = true;
    config.rate_limit.per_ip = huge;
    config.rate_limit.per_tenant = huge;
    config
}

/// Serves the benchmark's gateway (HTTPS, and the same proxy over plain HTTP) until the
/// process ends.
pub async fn serve_gateway(args: ServeGatewayArgs) -> anyhow::Result<()> {
    exit_with_parent(CHILD_LIFETIME);
    let mut config = gateway_config(&args.upstream, &args.cert, &args.key);
    config.rate_limit.enabled = !args.no_rate_limit;
    config.workers = args.gateway_workers;
    config.routes[0].prefix = args.prefix;
    let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("LISTEN {} {}", https.local_addr()?, http.local_addr()?);
    let parts = tansu_gateway::Parts {
        plain_http_proxy: true,
        ..Default::default()
    };
    tansu_gateway::serve_with(https, Some(http), config, parts, std::future::pending()).await
}

/// In a server a benchmark started: exits the process once stdin closes (the benchmark
/// stopped or died), or after `at_most` in any case.
pub fn exit_with_parent(at_most: Duration) {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    std::thread::spawn(move || {
        std::thread::sleep(at_most);
        eprintln!("tansu-bench: child ran for {at_most:?}; exiting");
        std::process::exit(1);
    });
}
