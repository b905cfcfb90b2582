//! Idle connections: a connection on which no byte moved for a whole idle timeout is closed
//! (slow or silent clients cannot hold connections open).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether bytes moved on a connection since the idle watcher last looked. Reads and writes
/// only set a flag (no clock read per read or write); the watcher wakes a few times per
/// timeout and closes the connection after a whole timeout without movement.
#[derive(Clone)]
pub(crate) struct Activity {
    moved: Arc<AtomicBool>,
}

/// Checks per idle timeout: a silent connection closes after between the timeout and
/// `1 + 1/IDLE_CHECKS` times it.
const IDLE_CHECKS: u32 = 4;

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            moved: Arc::new(AtomicBool::new(false)),
        }
    }

    fn touch(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `timeout`.
    pub(crate) async fn idle(&self, timeout: Duration) {
        let tick = (timeout / IDLE_CHECKS).max(Duration::from_millis(1));
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(tick).await;
            if self.moved.swap(false, Ordering::Relaxed) {
                quiet = Duration::ZERO;
            } else {
                quiet = quiet.saturating_add(tick);
                if quiet >= timeout {
                    return;
                }
            }
        }
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
            self.activity.touch();
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
