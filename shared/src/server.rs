//! Serving a service router: the common middleware stack, binding and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, header};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::problem::Problem;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service router in the layers every Tansu service has: request ids (kept when the
/// gateway set one), tracing spans, redaction of credentials from logs, a panic guard that
/// answers 500 problem+json instead of dropping the connection, request metrics labelled with
/// `service`, and `/metrics`.
pub fn with_common_layers(service: &'static str, router: Router) -> Router {
    // Install the process-wide recorder before the first request is counted.
    let _ = crate::telemetry::metrics_handle();
    router
        .merge(crate::telemetry::metrics_router())
        .layer(axum::middleware::from_fn(
            move |req: Request<axum::body::Body>, next: axum::middleware::Next| {
                crate::telemetry::record_request(service, req, next)
            },
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                use axum::response::IntoResponse;
                Problem::internal(&"handler panicked").into_response()
            },
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |req: &Request<_>| {
                crate::telemetry::request_span(service, req)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            REQUEST_ID,
            crate::ids::MakeRequestUuidV7,
        ))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
}

/// Binds `addr` (port 0 for an ephemeral port).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Without TCP_NODELAY a response written in two parts (headers, then a streamed body)
    // waits for the peer's delayed ACK: ~40 ms per small streamed answer on Linux.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// How long a drain may take before the process stops anyway, unless `--drain-secs` /
/// `TANSU_DRAIN_SECS` says otherwise ([`drain_bound`]).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

static DRAIN_BOUND: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// How long in-flight requests may take to finish after SIGTERM or Ctrl-C before the process
/// stops anyway: `--drain-secs` / `TANSU_DRAIN_SECS` of the service binary, else
/// [`DRAIN_TIMEOUT`].
pub fn drain_bound() -> Duration {
    *DRAIN_BOUND.get().unwrap_or(&DRAIN_TIMEOUT)
}

/// The command line every service binary takes.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// Platform config file (TOML); `TANSU_<SECTION>__<KEY>` environment variables override it.
    #[arg(long, env = "TANSU_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Ask the running service whether it is healthy and exit (0: it answered 2xx within 3 s):
    /// a GET of `--probe-url`, for container health checks (the images have no HTTP client).
    #[arg(long)]
    pub probe: bool,
    /// What `--probe` asks: a plain-HTTP URL on this host, e.g.
    /// `http://127.0.0.1:7001/health/ready`.
    #[arg(long, env = "TANSU_PROBE_URL", default_value = "")]
    pub probe_url: String,
    /// After SIGTERM or Ctrl-C, how long in-flight requests may take to finish (seconds)
    /// before the process stops anyway. New connections are refused from the signal on.
    #[arg(long, env = "TANSU_DRAIN_SECS", default_value_t = DRAIN_TIMEOUT.as_secs())]
    pub drain_secs: u64,
}

/// `--probe`: one GET of `url` (`http://<loopback>:<port>/<path>`), true on a 2xx answer.
pub fn probe(url: &str) -> Result<bool, String> {
    use std::io::{Read, Write};
    let parsed = url::Url::parse(url).map_err(|e| format!("--probe-url {url:?}: {e}"))?;
    let local = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if parsed.scheme() != "http" || !local {
        return Err(format!(
            "--probe-url {url:?}: must be http:// on a loopback address"
        ));
    }
    let addrs = parsed
        .socket_addrs(|| Some(80))
        .map_err(|e| format!("--probe-url {url:?}: {e}"))?;
    let timeout = Duration::from_secs(3);
    let addr = addrs.first().ok_or("--probe-url: no address")?;
    let mut stream =
        std::net::TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        &parsed[url::Position::BeforePath..]
    )
    .map_err(|e| e.to_string())?;
    // The status line is all that is needed: `HTTP/1.1 200 OK`.
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    Ok(head.starts_with(b"HTTP/1.") && head[8] == b' ' && head[9] == b'2')
}

/// Scheduler ticks between two polls for I/O events on a service's runtime.
pub const EVENT_INTERVAL: u32 = 4;

/// A service's runtime: multi-threaded, one worker per core unless `workers` is given.
///
/// It polls for I/O every few tasks (tokio's default is 61). A service whose handlers spend a
/// long time on the CPU (identity signs a token in 0.3–0.9 ms) otherwise reads new requests
/// only after dozens of them, so under load a request can wait milliseconds for the next I/O
/// poll. (The cost: a non-blocking `epoll_wait` every few tasks.)
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all().event_interval(EVENT_INTERVAL).build()
}

/// The whole `main` of a service binary: parse arguments, load and validate the service's
/// config section, set up telemetry, run until Ctrl-C/SIGTERM. Exits 2 on a config error.
pub fn service_main<C, F, Fut>(section: &'static str, run: F) -> std::process::ExitCode
where
    C: serde::de::DeserializeOwned + serde::Serialize + crate::config::Validate,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use clap::Parser;
    let args = ServiceArgs::parse();
    if args.probe {
        return match probe(&args.probe_url) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("tansu-{section}: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let config: C =
        match crate::config::load_section(&crate::config::figment(args.config.as_deref()), section)
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tansu-{section}: {e}");
                return std::process::ExitCode::from(2);
            }
        };
    if args.print_config {
        print!("{}", crate::config::to_redacted_toml(section, &config));
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match runtime(None) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tansu-{section}: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let drain = Duration::from_secs(args.drain_secs);
    let _ = DRAIN_BOUND.set(drain);
    runtime.block_on(async {
        let _telemetry = crate::telemetry::init(section);
        // The service drains on the same signal; past the bound it is stopped here.
        let bound = async {
            shutdown_signal().await;
            tokio::time::sleep(drain).await;
        };
        tokio::select! {
            outcome = run(config) => match outcome {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "stopped with an error");
                    std::process::ExitCode::FAILURE
                }
            },
            () = bound => {
                tracing::warn!(drain_secs = drain.as_secs(), "drain bound reached; stopping with requests in flight");
                std::process::ExitCode::SUCCESS
            }
        }
    })
}
