//! A worker thread's idle HTTP/1.1 connections to the upstream instances.
//!
//! Each worker (one single-threaded runtime, see `server`) keeps its own: a connection is
//! opened, driven and reused on the thread that serves the requests sent on it. A proxied
//! request takes the most recently used idle connection of its instance (or opens one), sends
//! on it directly (`hyper::client::conn::http1`), and the connection goes back to the idle list
//! when the response body has been read to its end. Unlike hyper-util's pooled client there is
//! no shared pool lock, no per-request task that waits for the connection to become ready
//! again, and no boxed future per request.
//!
//! Idle connections older than the idle timeout are closed when the list is next used; at most
//! `max_idle` stay per instance. A connection the upstream closed while idle is noticed when it
//! is taken (`ready` fails) and dropped; a request that hyper could not send at all on it
//! (the upstream closed it in the same instant) comes back and is sent on a new connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::{BoxError, ProxyBody};
use crate::upstream::Upstream;

type Sender = http1::SendRequest<ProxyBody>;

/// Why a request could not be answered by an upstream.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, unreachable, timed out): the instance is down.
    Connect(std::io::Error),
    /// The connection failed while the request was sent or the response read.
    Request(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connecting: {e}"),
            Self::Request(e) => write!(f, "{e}"),
        }
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The idle connections of one instance.
#[derive(Default)]
struct IdleList(Mutex<Vec<Idle>>);

/// One worker's idle upstream connections, per route and instance.
pub struct Connections {
    /// `lists[route][instance]`.
    lists: Vec<Vec<Arc<IdleList>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

impl Connections {
    /// `instances[r]` is the number of instances of route `r`.
    pub fn new(
        instances: &[usize],
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        Self {
            lists: instances
                .iter()
                .map(|&n| (0..n).map(|_| Arc::new(IdleList::default())).collect())
                .collect(),
            connect_timeout,
            idle_timeout,
            max_idle,
        }
    }

    /// Sends `req` to instance `instance` of route `route` and answers its response, whose
    /// body hands the connection back when it ends. `replayable`: the request has no body, so
    /// it may be sent again on a new connection when the reused one turned out closed.
    pub async fn send(
        &self,
        (route, instance): (usize, usize),
        upstream: &Upstream,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, SendError> {
        let list = &self.lists[route][instance];
        // Reused connections first; each can only fail before anything was sent.
        while let Some(mut sender) = self.take_idle(list) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.wrap(resp, sender, list)),
                Err(mut e) => match e.take_message() {
                    // Not sent (the connection closed meanwhile): the next one gets it.
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut sender = self.connect(upstream).await?;
        let resp = sender.send_request(req).await.map_err(SendError::Request)?;
        Ok(self.wrap(resp, sender, list))
    }

    /// The most recently used idle connection that is still open; older ones beyond the idle
    /// timeout are closed on the way.
    fn take_idle(&self, list: &IdleList) -> Option<Sender> {
        let mut idle = list
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let fresh = idle.partition_point(|c| now.duration_since(c.since) > self.idle_timeout);
        idle.drain(..fresh);
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() {
                return Some(c.sender);
            }
        }
        None
    }

    async fn connect(&self, upstream: &Upstream) -> Result<Sender, SendError> {
        let authority = upstream.authority();
        let port = authority.port_u16().unwrap_or(80);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                ))
            })?
            .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(SendError::Request)?;
        // Driven by this worker's runtime; ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// The response with a body that returns `sender` to `list` once read to its end (at once
    /// when there is no body). A switch of protocols keeps the connection for the upgrade.
    fn wrap(
        &self,
        resp: Response<Incoming>,
        sender: Sender,
        list: &Arc<IdleList>,
    ) -> Response<ProxyBody> {
        let back = if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            None
        } else {
            Some(ReturnTo {
                sender,
                list: list.clone(),
                max_idle: self.max_idle,
            })
        };
        resp.map(|inner| {
            let mut body = Returning { inner, back };
            if body.inner.is_end_stream() {
                body.give_back();
            }
            http_body_util::BodyExt::boxed_unsync(body)
        })
    }
}

struct ReturnTo {
    sender: Sender,
    list: Arc<IdleList>,
    max_idle: usize,
}

/// A response body that gives its connection back when it ends. Dropped before its end, the
/// connection is dropped with it (hyper closes it: the rest of the body is unread).
struct Returning {
    inner: Incoming,
    back: Option<ReturnTo>,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some(r) = self.back.take() {
            let mut idle = r
                .list
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < r.max_idle {
                idle.push(Idle {
                    sender: r.sender,
                    since: Instant::now(),
                });
            }
        }
    }
}

impl Drop for Returning {
    /// A consumer that knew the length may stop polling after the last byte: read to its end
    /// is enough to reuse the connection.
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.give_back(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.give_back(),
            Some(Err(_)) => this.back = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame.map(|r| r.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
