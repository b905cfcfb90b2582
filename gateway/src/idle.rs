//! Idle and slow connections: a connection on which no byte moved for a whole idle timeout is
//! closed, and so is one whose HTTP/1 request head is not complete within the head timeout
//! after its first byte (slow or silent clients cannot hold connections open). The two are
//! apart on purpose: a keep-alive connection waits for its next request for the idle timeout,
//! not the head timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What the watchers of one connection need to know about it. Reads and writes only set a
/// flag (no clock read per read or write); the idle watcher wakes a few times per timeout and
/// closes the connection after a whole timeout without movement. The clock is read once per
/// request head, when its first byte arrives.
#[derive(Clone)]
pub(crate) struct Activity(Arc<Shared>);

struct Shared {
    moved: AtomicBool,
    /// Requests handed to the service and not answered yet.
    in_flight: AtomicUsize,
    /// When the first byte of a head not yet complete arrived: milliseconds since `start`,
    /// plus one; 0 when no head is being read.
    head_since: AtomicU64,
    /// HTTP/2: bytes without a request in flight are frames (pings, settings), not a head;
    /// the idle timeout alone applies.
    multiplexed: AtomicBool,
    head_started: Notify,
    start: Instant,
}

/// Checks per idle timeout: a silent connection closes after between the timeout and
/// `1 + 1/IDLE_CHECKS` times it.
const IDLE_CHECKS: u32 = 4;

impl Activity {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Shared {
            moved: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            head_since: AtomicU64::new(0),
            multiplexed: AtomicBool::new(false),
            head_started: Notify::new(),
            start: Instant::now(),
        }))
    }

    fn touch(&self) {
        self.0.moved.store(true, Ordering::Relaxed);
    }

    /// Bytes arrived: with no request in flight on an HTTP/1 connection they begin a head.
    fn received(&self) {
        self.touch();
        let s = &self.0;
        if s.in_flight.load(Ordering::Acquire) == 0
            && s.head_since.load(Ordering::Acquire) == 0
            && !s.multiplexed.load(Ordering::Relaxed)
        {
            let since = u64::try_from(s.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
            s.head_since.store(since, Ordering::Release);
            s.head_started.notify_one();
        }
    }

    /// A request's head is complete and goes to the service; the request counts as in flight
    /// until the returned guard drops (its response head is ready).
    pub(crate) fn request(&self, version: http::Version) -> InFlight {
        let s = &self.0;
        if version >= http::Version::HTTP_2 {
            s.multiplexed.store(true, Ordering::Relaxed);
        }
        s.in_flight.fetch_add(1, Ordering::AcqRel);
        s.head_since.store(0, Ordering::Release);
        InFlight(self.0.clone())
    }

    /// Resolves once no byte has moved for `timeout`.
    pub(crate) async fn idle(&self, timeout: Duration) {
        let tick = (timeout / IDLE_CHECKS).max(Duration::from_millis(1));
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(tick).await;
            if self.0.moved.swap(false, Ordering::Relaxed) {
                quiet = Duration::ZERO;
            } else {
                quiet = quiet.saturating_add(tick);
                if quiet >= timeout {
                    return;
                }
            }
        }
    }

    /// Resolves once an HTTP/1 request head has been arriving for `limit` without being
    /// complete (a slow client). The wait for a head's first byte is the idle timeout's.
    pub(crate) async fn head_timeout(&self, limit: Duration) {
        let s = &self.0;
        loop {
            let since = s.head_since.load(Ordering::Acquire);
            if since == 0 {
                s.head_started.notified().await;
                continue;
            }
            let deadline = s.start + Duration::from_millis(since - 1) + limit;
            tokio::time::sleep_until(deadline.into()).await;
            if s.head_since.load(Ordering::Acquire) == since {
                return;
            }
        }
    }
}

/// A request in flight on its connection (see [`Activity::request`]).
pub(crate) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An IO that records activity for the idle timeout (slow or silent clients are closed).
pub(crate) struct IdleIo<T> {
    pub(crate) inner: T,
    pub(crate) activity: Activity,
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.received();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
