//! Group commit for security events: one writer task per process appends what concurrent
//! requests record, in as few statements as possible.
//!
//! Every request that records an event still waits until its event is stored (nothing is
//! acknowledged from memory), but events that arrive while a write is in flight are linked
//! and written together by the next one: a sign-in storm costs one chain read and one insert
//! per batch instead of a read and an insert per sign-in, and requests of one process never
//! race each other for the next `seq` of a tenant's chain. The writer remembers each chain's
//! last link, so it reads it again only after another writer (a replica) moved it — detected
//! by the unique `(tenant_id, seq)` — or the database lost it (a failover to a replica that
//! had not received the chain's last events) — detected by the insert, which stores nothing
//! unless the chain holds the link it continues — or at start.
//!
//! A sign-in's new session (and its authorization code) is stored in the same write as the
//! sign-in's event ([`EventLog::append_sign_in`]): on PostgreSQL one statement and one commit
//! for all three, and never a session without its audit record.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::store::events::EventRow;
use crate::store::grants::NewSession;

/// Events waiting for the writer, at most (beyond them, recording waits to enqueue).
const QUEUE: usize = 8192;
/// Events the writer takes into one write, at most.
const BATCH: usize = 1000;
/// Chains whose last link the writer remembers, at most (it forgets them all beyond).
const LINKS: usize = 10_000;
/// Attempts to link a tenant's events when other writers keep appending to its chain.
const ATTEMPTS: usize = 20;

/// An event, and the new session stored with it when the event records a sign-in.
type Entry = (EventRow, Option<NewSession>);

struct Submission {
    entries: Vec<Entry>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The handle requests append through. Cheap to clone; the writer stops with the last clone.
#[derive(Clone, Debug)]
pub struct EventLog {
    tx: mpsc::Sender<Submission>,
}

impl EventLog {
    /// Starts the writer on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Links and stores `rows` (everything but `seq`, `prev_hash` and `hash` filled in) at
    /// the end of their tenants' chains; returns once they are stored.
    pub async fn append(&self, rows: Vec<EventRow>) -> anyhow::Result<()> {
        self.submit(rows.into_iter().map(|r| (r, None)).collect())
            .await
    }

    /// Stores a sign-in's event and, in the same write, its new session (and code): both or
    /// neither. Returns once they are stored.
    pub async fn append_sign_in(&self, row: EventRow, session: NewSession) -> anyhow::Result<()> {
        self.submit(vec![(row, Some(session))]).await
    }

    async fn submit(&self, entries: Vec<Entry>) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Submission { entries, done })
            .await
            .map_err(|_| anyhow::anyhow!("the security-event writer stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the security-event writer stopped"))?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Submission>) {
    let mut links = Links::default();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut events = batch[0].entries.len();
        while events < BATCH {
            match rx.try_recv() {
                Ok(s) => {
                    events += s.entries.len();
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        if batch.len() == 1 {
            let Submission { entries, done } = batch.remove(0);
            let _ = done.send(
                links
                    .append(&store, entries)
                    .await
                    .map_err(|e| format!("{e:#}")),
            );
            continue;
        }
        let all: Vec<Entry> = batch
            .iter()
            .flat_map(|s| s.entries.iter().cloned())
            .collect();
        match links.append(&store, all).await {
            Ok(()) => {
                for s in batch {
                    let _ = s.done.send(Ok(()));
                }
            }
            // One submission's bad row must not cost the others theirs: each on its own.
            Err(_) => {
                for Submission { entries, done } in batch {
                    let r = links.append(&store, entries).await;
                    let _ = done.send(r.map_err(|e| format!("{e:#}")));
                }
            }
        }
    }
}

/// The last link (seq, hash) of each chain this writer knows.
#[derive(Default)]
struct Links(HashMap<String, (i64, String)>);

impl Links {
    /// Per tenant, links the events after the chain's last one and inserts them (with their
    /// sessions) all or none; re-reads the link and retries when another writer appended
    /// meanwhile.
    async fn append(&mut self, store: &Store, entries: Vec<Entry>) -> anyhow::Result<()> {
        let mut by_tenant: Vec<(String, Vec<EventRow>, Vec<NewSession>)> = Vec::new();
        for (row, session) in entries {
            let i = match by_tenant.iter().position(|(t, ..)| *t == row.tenant_id) {
                Some(i) => i,
                None => {
                    by_tenant.push((row.tenant_id.clone(), Vec::new(), Vec::new()));
                    by_tenant.len() - 1
                }
            };
            by_tenant[i].1.push(row);
            by_tenant[i].2.extend(session);
        }
        for (tenant_id, mut rows, sessions) in by_tenant {
            let mut linked = false;
            for _ in 0..ATTEMPTS {
                let (mut seq, mut prev_hash) = match self.0.remove(&tenant_id) {
                    Some(link) => link,
                    None => store.last_event_link(&tenant_id).await?,
                };
                for row in &mut rows {
                    seq += 1;
                    row.seq = seq;
                    row.prev_hash = std::mem::take(&mut prev_hash);
                    row.hash = crate::events::link_hash(row);
                    prev_hash = row.hash.clone();
                }
                match store.insert_events(&rows, &sessions).await {
                    // The chain does not hold the remembered link (lost in a failover), or
                    // another writer appended: read it again.
                    Ok(false) => continue,
                    Ok(true) => {
                        if self.0.len() >= LINKS {
                            self.0.clear();
                        }
                        self.0.insert(tenant_id.clone(), (seq, prev_hash));
                        linked = true;
                        break;
                    }
                    // Another writer took the seq: the link is read again on the next try.
                    Err(e) if e.is_unique_violation() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            anyhow::ensure!(linked, "the event chain stayed contended");
            for row in &rows {
                metrics::counter!("identity_security_events_total", "type" => row.kind.clone())
                    .increment(1);
            }
        }
        Ok(())
    }
}
