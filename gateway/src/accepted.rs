//! One accepted client connection: TLS, then HTTP/1.1 or HTTP/2 served by the proxy with the
//! idle and head timeouts (see `idle`), or the plain-HTTP redirect.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::connections::Connections;
use crate::forwarding::Connection;
use crate::idle::{Activity, IdleIo};
use crate::proxy::{Client, Gateway};
use crate::redirect::redirect;

/// What a proxied connection needs: the shared gateway and this worker's upstream client.
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) client: Client,
    pub(crate) conns: Arc<Connections>,
}

pub(crate) struct ConnSettings {
    pub(crate) builder: auto::Builder<TokioExecutor>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// From a request head's first byte to its end (HTTP/1).
    pub(crate) header_read_timeout: Duration,
}

pub(crate) fn builder(config: &Config) -> auto::Builder<TokioExecutor> {
    let limits = &config.limits;
    let mut b = auto::Builder::new(TokioExecutor::new());
    // hyper's head timer runs from the moment it waits for a head, so on a keep-alive
    // connection it would also bound the wait for the next request: set to the idle and head
    // timeouts together it is only a backstop, and `Activity` closes idle and slow
    // connections each at its own bound.
    let head_backstop = limits
        .idle_timeout_ms
        .saturating_add(limits.header_read_timeout_ms);
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(head_backstop))
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        // No server pings: they would count as activity and keep idle connections open
        // forever; the idle timeout closes silent peers instead.
        .keep_alive_interval(None);
    b
}

pub(crate) async fn serve_tls(
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    acceptor: TlsAcceptor,
    handler: Handler,
    settings: Arc<ConnSettings>,
    watcher: Watcher,
) {
    let tls = match tokio::time::timeout(settings.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    serve_proxied(tls, peer, "https", permit, handler, settings, watcher).await;
}

/// Serves the proxy on one established connection (TLS, or plain with
/// [`crate::Parts::plain_http_proxy`]) until it closes or idles out.
pub(crate) async fn serve_proxied<T>(
    io: T,
    peer: SocketAddr,
    proto: &'static str,
    _permit: OwnedSemaphorePermit,
    handler: Handler,
    settings: Arc<ConnSettings>,
    watcher: Watcher,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_info = Arc::new(Connection::new(
        peer,
        handler.gateway.trusted.contains(peer.ip()),
        proto,
    ));
    let activity = Activity::new();
    let io = TokioIo::new(IdleIo {
        inner: io,
        activity: activity.clone(),
    });
    let handler = Arc::new(handler);
    let requests = activity.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let handler = handler.clone();
        let conn_info = conn_info.clone();
        let in_flight = requests.request(req.version());
        async move {
            let resp = handler
                .gateway
                .handle(req, &conn_info, (&handler.client, &handler.conns))
                .await;
            drop(in_flight);
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = watcher.watch(
        settings
            .builder
            .serve_connection_with_upgrades(io, service)
            .into_owned(),
    );
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
        () = activity.idle(settings.idle_timeout) => {
            tracing::debug!(%peer, "idle connection closed");
        }
        () = activity.head_timeout(settings.header_read_timeout) => {
            tracing::debug!(%peer, "request head not complete in time; connection closed");
        }
    }
}

pub(crate) async fn serve_redirect(
    tcp: TcpStream,
    _permit: OwnedSemaphorePermit,
    https_port: u16,
    settings: Arc<ConnSettings>,
    watcher: Watcher,
) {
    let activity = Activity::new();
    let io = TokioIo::new(IdleIo {
        inner: tcp,
        activity: activity.clone(),
    });
    let service = service_fn(move |req: Request<Incoming>| async move {
        Ok::<_, Infallible>(redirect(&req, https_port))
    });
    let conn = watcher.watch(
        settings
            .builder
            .serve_connection_with_upgrades(io, service)
            .into_owned(),
    );
    tokio::select! {
        _ = conn => {}
        () = activity.idle(settings.idle_timeout) => {}
    }
}
