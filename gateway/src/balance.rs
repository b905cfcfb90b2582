//! Spreads accepted connections over the worker threads.
//!
//! Every worker accepts from the same listening sockets, and whichever wakes first takes the
//! connection: under a burst of new connections the first-woken worker can end up with most or
//! all of them (measured: all 32 keep-alive connections of a benchmark on one of two workers),
//! so one core saturates while the other idles, for as long as those connections live. So a
//! connection is served by the worker with the fewest open connections: the accepting one when
//! it is among them, otherwise the connection is handed to that worker (its socket leaves the
//! accepting worker's reactor and joins the other's — once per connection, not per request).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// Which listener a connection came in on, so the worker it is handed to serves it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Https,
    /// Plain HTTP, proxied.
    Plain,
    /// Plain HTTP, redirected to HTTPS.
    Redirect,
}

/// A connection on its way to another worker.
pub struct Handover {
    pub door: Door,
    pub tcp: std::net::TcpStream,
    pub peer: SocketAddr,
    pub permit: OwnedSemaphorePermit,
    pub open: Open,
}

/// The workers' open connection counts and their hand-over queues.
pub struct Balancer {
    open: Vec<AtomicUsize>,
    queues: Vec<mpsc::UnboundedSender<Handover>>,
}

/// Counts one open connection of a worker for as long as it lives.
pub struct Open {
    balancer: Arc<Balancer>,
    worker: usize,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.balancer.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Balancer {
    /// A balancer for `workers` workers and each worker's hand-over queue (index = worker).
    pub fn new(workers: usize) -> (Arc<Self>, Vec<mpsc::UnboundedReceiver<Handover>>) {
        let (queues, receivers) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let balancer = Self {
            open: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
            queues,
        };
        (Arc::new(balancer), receivers)
    }

    /// Counts a connection for `worker`.
    fn open(self: &Arc<Self>, worker: usize) -> Open {
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        Open {
            balancer: self.clone(),
            worker,
        }
    }

    /// The worker that should serve a connection accepted by `me`: the one with the fewest
    /// open connections, `me` on a tie.
    fn target(&self, me: usize) -> usize {
        let count = |w: usize| self.open[w].load(Ordering::Relaxed);
        let mut best = (count(me), me);
        for w in 0..self.open.len() {
            let c = count(w);
            if c < best.0 {
                best = (c, w);
            }
        }
        best.1
    }

    /// Places a connection accepted by worker `me`: `Some` to serve it here, `None` when it
    /// was handed to a worker with fewer connections. When the other worker is gone, the
    /// connection stays here.
    pub fn place(
        self: &Arc<Self>,
        me: usize,
        door: Door,
        tcp: TcpStream,
        peer: SocketAddr,
        permit: OwnedSemaphorePermit,
    ) -> Option<(TcpStream, OwnedSemaphorePermit, Open)> {
        let target = self.target(me);
        if target == me {
            return Some((tcp, permit, self.open(me)));
        }
        let std = match tcp.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection could not be handed over");
                return None;
            }
        };
        let handover = Handover {
            door,
            tcp: std,
            peer,
            permit,
            open: self.open(target),
        };
        match self.queues[target].send(handover) {
            Ok(()) => None,
            Err(mpsc::error::SendError(back)) => {
                let Handover {
                    tcp, permit, open, ..
                } = back;
                drop(open);
                let tcp = TcpStream::from_std(tcp).ok()?;
                Some((tcp, permit, self.open(me)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected loopback socket pair: (the accepted end, its peer address, the client end).
    async fn accepted(l: &tokio::net::TcpListener) -> (TcpStream, SocketAddr, TcpStream) {
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (tcp, peer) = l.accept().await.unwrap();
        (tcp, peer, client)
    }

    #[tokio::test]
    async fn connections_go_to_the_worker_with_the_fewest() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let permits = Arc::new(tokio::sync::Semaphore::new(10));
        let permit = || permits.clone().try_acquire_owned().unwrap();
        let (balancer, mut queues) = Balancer::new(2);
        let mut clients = Vec::new();
        let mut kept = Vec::new();

        // A tie stays with the accepting worker.
        let (tcp, peer, c) = accepted(&l).await;
        clients.push(c);
        let (_, _, open) = balancer
            .place(0, Door::Https, tcp, peer, permit())
            .expect("served by the accepting worker");
        kept.push(open);
        assert_eq!(balancer.open[0].load(Ordering::Relaxed), 1);

        // Worker 0 has more: the next one it accepts goes to worker 1, door and all.
        let (tcp, peer, c) = accepted(&l).await;
        clients.push(c);
        assert!(
            balancer
                .place(0, Door::Plain, tcp, peer, permit())
                .is_none()
        );
        let handed = queues[1].try_recv().expect("handed to worker 1");
        assert_eq!((handed.door, handed.peer), (Door::Plain, peer));
        assert!(queues[0].try_recv().is_err());
        assert_eq!(balancer.open[1].load(Ordering::Relaxed), 1);
        // The socket still works on the other side.
        let tcp = TcpStream::from_std(handed.tcp).unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), peer);

        // A closed connection no longer counts.
        drop(kept.pop());
        drop(handed.open);
        assert_eq!(balancer.open[0].load(Ordering::Relaxed), 0);
        assert_eq!(balancer.open[1].load(Ordering::Relaxed), 0);

        // A worker that is gone gets nothing: the connection stays where it was accepted.
        let held = balancer.open(0);
        drop(queues.remove(1));
        let (tcp, peer, c) = accepted(&l).await;
        clients.push(c);
        let (_, _, open) = balancer
            .place(0, Door::Https, tcp, peer, permit())
            .expect("kept by the accepting worker");
        assert_eq!(balancer.open[0].load(Ordering::Relaxed), 2);
        assert_eq!(balancer.open[1].load(Ordering::Relaxed), 0);
        drop((held, open));
    }
}
