//! Listeners and connections: worker threads (one single-threaded runtime each, see the crate
//! docs), TLS handshakes, HTTP/1.1 + HTTP/2 serving, the plain-HTTP redirector, connection
//! limits, idle timeouts and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tansu_shared::config::Validate;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::accepted::{ConnSettings, Handler, builder, serve_proxied, serve_redirect, serve_tls};
use crate::balance::{Balancer, Door, Handover, Open};
use crate::proxy::{Gateway, build_client};
use crate::ratelimit::{InMemoryLimiter, RateLimiter, RedisLimiter};
use crate::tenant::{HttpDirectory, OpenDirectory, StaticDirectory, TenantDirectory};
use crate::tls::{self, ReloadingCert};

pub(crate) async fn run(
    https: TcpListener,
    http: Option<TcpListener>,
    config: Config,
    parts: crate::Parts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tansu_shared::install_crypto_provider();
    let plain_http_proxy = parts.plain_http_proxy;
    let problems = config.validate();
    anyhow::ensure!(
        problems.is_empty(),
        "invalid gateway config: {}",
        problems.join("; ")
    );
    let (certified, files) = tls::load_files(&config.tls_cert, &config.tls_key)
        .context("loading the TLS certificate")?;
    let resolver = Arc::new(ReloadingCert::new(certified));
    let acceptor = TlsAcceptor::from(Arc::new(tls::server_config(resolver.clone())?));

    let directory: Arc<dyn TenantDirectory> = match (
        parts.tenant_directory,
        &config.tenant_directory,
        &config.tenants,
    ) {
        (Some(d), _, _) => d,
        (None, Some(c), _) => Arc::new(HttpDirectory::new(c)?),
        (None, None, Some(list)) => Arc::new(StaticDirectory::new(list)),
        (None, None, None) => Arc::new(OpenDirectory),
    };
    let rl = &config.rate_limit;
    let mut in_memory = None;
    let limiter: Option<Arc<dyn RateLimiter>> = match parts.rate_limiter {
        _ if !rl.enabled => None,
        Some(l) => Some(l),
        None if !rl.redis_url.is_empty() => Some(Arc::new(RedisLimiter::connect(rl).await?)),
        None => {
            let l = Arc::new(InMemoryLimiter::new(rl));
            in_memory = Some(l.clone());
            Some(l)
        }
    };
    let gateway = Arc::new(Gateway::new(&config, directory, limiter).await?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = tokio::task::JoinSet::new();
    background.spawn(tls::watch(
        resolver,
        config.tls_cert.clone(),
        config.tls_key.clone(),
        files,
        Duration::from_millis(config.tls_reload_interval_ms),
        stop_rx.clone(),
    ));
    background.spawn(crate::upstream::health_loop(
        gateway.pools().into_iter().map(|(_, p)| p).collect(),
        gateway.client.clone(),
        Duration::from_millis(config.upstream.health_interval_ms),
        Duration::from_millis(config.upstream.health_timeout_ms),
        stop_rx.clone(),
    ));
    // Tenant changes pushed by identity through the Redis the budgets are shared in.
    if !rl.redis_url.is_empty() {
        let (url, g, mut stop) = (
            rl.redis_url.expose().to_owned(),
            gateway.clone(),
            stop_rx.clone(),
        );
        let g2 = gateway.clone();
        background.spawn(async move {
            tansu_shared::changes::subscribe(
                &url,
                move || g.tenant_cache().expire_all(),
                move |change| {
                    if let tansu_shared::changes::Change::Tenant { id, slug } = change {
                        g2.tenant_cache().expire(&id, &slug);
                    }
                },
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )
            .await;
        });
    }
    if let Some(l) = in_memory {
        background.spawn(crate::ratelimit::housekeeping_loop(l, stop_rx.clone()));
    }
    if let Some(internal) = parts.internal_listener {
        tracing::info!(addr = ?internal.local_addr().ok(), "gateway internal listener (/metrics)");
        background.spawn(crate::metrics::serve_internal(
            internal,
            gateway.clone(),
            stop_rx.clone(),
        ));
    }

    let https_port = match config.public_https_port {
        Some(p) => p,
        None => https.local_addr()?.port(),
    };
    let limits = &config.limits;
    let settings = Arc::new(ConnSettings {
        builder: builder(&config),
        handshake_timeout: Duration::from_millis(limits.tls_handshake_timeout_ms),
        idle_timeout: Duration::from_millis(limits.idle_timeout_ms),
        header_read_timeout: Duration::from_millis(limits.header_read_timeout_ms),
    });
    let mut redirect_builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    redirect_builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(false);
    let redirect_settings = Arc::new(ConnSettings {
        builder: redirect_builder,
        handshake_timeout: settings.handshake_timeout,
        idle_timeout: settings.idle_timeout,
        header_read_timeout: settings.header_read_timeout,
    });
    tracing::info!(addr = ?https.local_addr().ok(), "gateway listening (HTTPS)");
    let (plain, redirect) = match http {
        Some(l) if plain_http_proxy => (Some(l), None),
        other => (None, other),
    };
    if let Some(l) = &plain {
        tracing::info!(addr = ?l.local_addr().ok(), "gateway listening (plain HTTP, proxying)");
    }
    if let Some(l) = &redirect {
        tracing::info!(addr = ?l.local_addr().ok(), "gateway listening (HTTP → HTTPS redirect)");
    }
    let shared = Arc::new(WorkerShared {
        gateway: gateway.clone(),
        config: config.clone(),
        acceptor,
        settings,
        redirect_settings,
        https_port,
        https: SharedListener::new(https, limits)?,
        plain: plain.map(|l| SharedListener::new(l, limits)).transpose()?,
        redirect: redirect
            .map(|l| SharedListener::new(l, limits))
            .transpose()?,
    });

    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut finished = Vec::with_capacity(workers);
    let mut started = Vec::with_capacity(workers);
    let (balancer, handovers) = Balancer::new(workers);
    for (n, handovers) in handovers.into_iter().enumerate() {
        let (started_tx, started_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let shared = shared.clone();
        let stop = stop_rx.clone();
        let seat = Seat {
            me: n,
            balancer: balancer.clone(),
            handovers,
        };
        std::thread::Builder::new()
            .name(format!("gateway-{n}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(worker(shared, seat, stop, started_tx)),
                    Err(e) => {
                        let _ = started_tx.send(Err(format!("runtime: {e}")));
                    }
                }
                drop(done_tx);
            })
            .context("starting a gateway worker thread")?;
        started.push(started_rx);
        finished.push(done_rx);
    }
    // The workers hold the listening sockets from here on: when their accept loops end, the
    // sockets close and new connections are refused (instead of waiting in the backlog).
    drop(shared);
    let mut failure = None;
    for s in started {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a worker stopped during start-up".to_owned()),
        }
    }
    if failure.is_none() {
        shutdown.await;
        tracing::info!("gateway shutting down");
    }
    let _ = stop_tx.send(true);
    // Every worker drains its own connections (bounded by the drain timeout) before it ends.
    for f in finished {
        let _ = f.await;
    }
    background.shutdown().await;
    match failure {
        Some(e) => Err(anyhow::anyhow!("gateway worker failed to start: {e}")),
        None => Ok(()),
    }
}

/// A listening socket every worker accepts from (each registers its own duplicate of the
/// descriptor with its runtime), with one connection budget for all of them.
struct SharedListener {
    socket: std::net::TcpListener,
    conns: Arc<Semaphore>,
}

impl SharedListener {
    fn new(listener: TcpListener, limits: &crate::Limits) -> std::io::Result<Self> {
        Ok(Self {
            socket: listener.into_std()?,
            conns: Arc::new(Semaphore::new(
                limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
        })
    }

    /// This worker's handle on the socket (inside the worker's runtime).
    fn for_this_runtime(&self) -> std::io::Result<TcpListener> {
        TcpListener::from_std(self.socket.try_clone()?)
    }
}

/// What every worker thread starts from.
struct WorkerShared {
    gateway: Arc<Gateway>,
    config: Config,
    acceptor: TlsAcceptor,
    settings: Arc<ConnSettings>,
    redirect_settings: Arc<ConnSettings>,
    https_port: u16,
    https: SharedListener,
    /// The plain-HTTP listener when it proxies ([`crate::Parts::plain_http_proxy`]).
    plain: Option<SharedListener>,
    /// The plain-HTTP listener when it redirects to HTTPS.
    redirect: Option<SharedListener>,
}

/// One worker: accepts on every listener until `stop`, then drains its connections. Its
/// upstream client (and so its connection pool) is its own: pooled upstream connections are
/// driven by tasks of this runtime, never handed between threads.
async fn worker(
    shared: Arc<WorkerShared>,
    seat: Seat,
    stop: watch::Receiver<bool>,
    started: oneshot::Sender<Result<(), String>>,
) {
    let handler = Handler {
        gateway: shared.gateway.clone(),
        client: build_client(&shared.config),
        conns: Arc::new(shared.gateway.connections(&shared.config)),
    };
    let graceful = Arc::new(GracefulShutdown::new());
    let mut loops = tokio::task::JoinSet::new();
    let result = start_accepting(&shared, seat, &handler, &graceful, &stop, &mut loops);
    let ok = result.is_ok();
    let _ = started.send(result.map_err(|e| e.to_string()));
    if !ok {
        loops.shutdown().await;
        return;
    }
    drop(shared);
    while loops.join_next().await.is_some() {}
    // The accept loops (and their handles on `graceful`) are gone: drain open connections.
    if let Ok(graceful) = Arc::try_unwrap(graceful)
        && tokio::time::timeout(tansu_shared::server::drain_bound(), graceful.shutdown())
            .await
            .is_err()
    {
        tracing::warn!("drain timed out; closing the remaining connections");
    }
}

/// A worker's place among the workers: its index, the balancer, its hand-over queue.
struct Seat {
    me: usize,
    balancer: Arc<Balancer>,
    handovers: mpsc::UnboundedReceiver<Handover>,
}

/// Serves one connection on the calling worker.
type Serve = Arc<dyn Fn(TcpStream, SocketAddr, OwnedSemaphorePermit, Open) + Send + Sync>;

/// Starts this worker's accept loop on every listener, and the loop serving the connections
/// other workers hand to it (see [`crate::balance`]).
fn start_accepting(
    shared: &Arc<WorkerShared>,
    seat: Seat,
    handler: &Handler,
    graceful: &Arc<GracefulShutdown>,
    stop: &watch::Receiver<bool>,
    loops: &mut tokio::task::JoinSet<()>,
) -> std::io::Result<()> {
    let (s, h, g) = (shared.clone(), handler.clone(), graceful.clone());
    let https: Serve = Arc::new(move |tcp, peer, permit, open| {
        let (acceptor, h, settings, watcher) = (
            s.acceptor.clone(),
            h.clone(),
            s.settings.clone(),
            g.watcher(),
        );
        tokio::spawn(async move {
            let _open = open;
            serve_tls(tcp, peer, permit, acceptor, h, settings, watcher).await;
        });
    });
    let (s, h, g) = (shared.clone(), handler.clone(), graceful.clone());
    let plain: Serve = Arc::new(move |tcp, peer, permit, open| {
        let (h, settings, watcher) = (h.clone(), s.settings.clone(), g.watcher());
        tokio::spawn(async move {
            let _open = open;
            serve_proxied(tcp, peer, "http", permit, h, settings, watcher).await;
        });
    });
    let (s, g) = (shared.clone(), graceful.clone());
    let redirect: Serve = Arc::new(move |tcp, _peer, permit, open| {
        let (port, settings, watcher) = (s.https_port, s.redirect_settings.clone(), g.watcher());
        tokio::spawn(async move {
            let _open = open;
            serve_redirect(tcp, permit, port, settings, watcher).await;
        });
    });
    let serve_at = move |door: Door| -> Serve {
        match door {
            Door::Https => https.clone(),
            Door::Plain => plain.clone(),
            Door::Redirect => redirect.clone(),
        }
    };
    let Seat {
        me,
        balancer,
        mut handovers,
    } = seat;
    let mut spawn_loop = |l: &SharedListener, door: Door| -> std::io::Result<()> {
        let listener = l.for_this_runtime()?;
        let (serve, balancer) = (serve_at(door), balancer.clone());
        let on_conn = move |tcp, peer, permit| {
            if let Some((tcp, permit, open)) = balancer.place(me, door, tcp, peer, permit) {
                serve(tcp, peer, permit, open);
            }
        };
        loops.spawn(accept_loop(
            listener,
            l.conns.clone(),
            stop.clone(),
            on_conn,
        ));
        Ok(())
    };
    spawn_loop(&shared.https, Door::Https)?;
    if let Some(plain) = &shared.plain {
        spawn_loop(plain, Door::Plain)?;
    }
    if let Some(redirect) = &shared.redirect {
        spawn_loop(redirect, Door::Redirect)?;
    }
    let mut stop = stop.clone();
    loops.spawn(async move {
        loop {
            let handover = tokio::select! {
                h = handovers.recv() => match h {
                    Some(h) => h,
                    None => return,
                },
                _ = stop.changed() => return,
            };
            match TcpStream::from_std(handover.tcp) {
                Ok(tcp) => {
                    serve_at(handover.door)(tcp, handover.peer, handover.permit, handover.open)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a handed-over connection could not be served")
                }
            }
        }
    });
    Ok(())
}

/// Accepts until `stop` changes. A connection is accepted only with a free permit, so at most
/// `max_connections` are open; the rest wait in the kernel's backlog.
async fn accept_loop<F>(
    listener: TcpListener,
    conns: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    on_conn: F,
) where
    F: Fn(TcpStream, SocketAddr, OwnedSemaphorePermit),
{
    loop {
        let permit = tokio::select! {
            p = conns.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                on_conn(tcp, peer, permit);
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
