//! Master-key rotation: loading the current and previous master keys, the start-up
//! check that every sealed row can be opened, and the re-wrap that moves every row still sealed
//! under a previous key to the current one — without downtime (the service reads rows under any
//! configured key meanwhile) and without loss (each row is replaced by a compare-and-set, only
//! after its new ciphertext was made).
//!
//! What is sealed under the master key ([`crate::store::sealed::SEALED_COLUMNS`]): signing
//! private keys, tenants' vault data keys, TOTP secrets. Vault secret values and providers'
//! client secrets are sealed under the tenant's data key (envelope encryption), so only the
//! wrapped data keys need re-wrapping.
//!
//! The re-wrap runs in batches of `master_key_rewrap_batch_size` rows, each batch one
//! transaction, under the database lease `master-key-rewrap` (renewed after each batch), so
//! with several replicas one re-wraps at a time; it is idempotent and resumes where an
//! interrupted run stopped (it selects whatever is not under the current key yet). It starts
//! in the background at start-up (`master_key_rewrap_on_start`) and on
//! `POST /admin/master-key/rewrap`; `GET /admin/master-key` reports its state.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::config::{Config, MASTER_KEY_SOURCE_KEYRING};
use crate::crypto::{MasterKey, MasterKeySource, MasterKeys};
use crate::event_log::EventLog;
use crate::events::{self, Event, Meta};
use crate::keys::SigningAlg;
use crate::store::sealed::{
    MAIL_OUTBOX, MFA_TOTP, SEALED_COLUMNS, SIGNING_KEYS, SealedColumn, SealedRow,
};
use crate::store::{Store, new_id, now_ms};
use crate::{mfa, vault};

/// The lease that makes one replica at a time re-wrap.
pub const REWRAP_LEASE: &str = "master-key-rewrap";
const LEASE_MS: i64 = 60_000;

/// The security event of a re-wrap's start and finish (`details.phase`).
pub const MASTER_KEY_REWRAP: &str = "master_key.rewrap";

/// Loads the current master key (per `master_key_source`) and the previous ones.
pub fn load(config: &Config) -> anyhow::Result<MasterKeys> {
    let (current, source) = if config.master_key_source == MASTER_KEY_SOURCE_KEYRING {
        MasterKey::load_from_keyring(
            &config.master_key_keyring_service,
            &config.master_key_keyring_user,
            config.dev_mode,
        )?
    } else {
        MasterKey::load(
            config.master_key.expose(),
            &config.master_key_file(),
            config.dev_mode,
        )?
    };
    match &source {
        MasterKeySource::Created(path) => {
            tracing::warn!(path = %path.display(), "dev mode: created a new master key file")
        }
        MasterKeySource::KeyringCreated(service, user) => {
            tracing::warn!(%service, %user, "dev mode: created a new master key in the OS keyring")
        }
        other => tracing::info!(source = ?other, id = current.id(), "master key loaded"),
    }
    let previous = crate::crypto::load_previous_keys(
        &config.previous_master_keys,
        &config.previous_master_key_files,
    )?;
    let keys = MasterKeys::new(current, previous);
    if !keys.previous_ids().is_empty() {
        tracing::info!(previous = ?keys.previous_ids(), "previous master keys loaded");
    }
    Ok(keys)
}

/// Rows per master key id that is not the current one, per sealed table.
pub(crate) async fn remaining(
    store: &Store,
    current: &str,
) -> anyhow::Result<Vec<(SealedColumn, String, i64)>> {
    let mut out = Vec::new();
    for col in SEALED_COLUMNS {
        for (id, n) in store.sealed_counts(col).await? {
            if id != current {
                out.push((col, id, n));
            }
        }
    }
    Ok(out)
}

/// Fails start-up with a clear message when rows are sealed under a master key that is not
/// configured (a wrong key, or an old one removed before the re-wrap finished).
pub async fn ensure_known(store: &Store, keys: &MasterKeys) -> anyhow::Result<()> {
    let unknown: Vec<(SealedColumn, String, i64)> = remaining(store, keys.id())
        .await?
        .into_iter()
        .filter(|(_, id, _)| !keys.knows(id))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = unknown.iter().map(|(_, id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<String> = unknown
        .iter()
        .map(|(col, id, n)| format!("{} {}: {n}", col.table, id))
        .collect();
    anyhow::bail!(
        "the identity database has rows sealed under master key(s) {} ({}), but the configured \
         master key is {} and the previous keys are {:?}: configure the key those rows were \
         sealed with (as the master key, or in previous_master_keys while the re-wrap runs)",
        ids.join(", "),
        rows.join(", "),
        keys.id(),
        keys.previous_ids()
    )
}

/// The last re-wrap this replica ran (its shape is the admin API's).
pub use tansu_shared::admin_api::RewrapRun;

/// This replica's re-wrap state, shared by the handlers and the background job.
#[derive(Debug, Default)]
pub struct RewrapTracker {
    pub(crate) running: AtomicBool,
    last: std::sync::Mutex<Option<RewrapRun>>,
}

impl RewrapTracker {
    pub(crate) fn last(&self) -> Option<RewrapRun> {
        self.last.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn set_last(&self, run: RewrapRun) {
        if let Ok(mut g) = self.last.lock() {
            *g = Some(run);
        }
    }
}

/// Clears the tracker's running flag when the job ends, however it ends.
struct Running(Arc<RewrapTracker>);

impl Running {
    fn claim(tracker: &Arc<RewrapTracker>) -> Option<Self> {
        tracker
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Self(tracker.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// How a re-wrap run should go.
#[derive(Debug, Clone, Copy)]
pub struct RewrapOptions {
    pub batch_size: usize,
    /// Stop after this many batches (a test hook for an interrupted run).
    pub max_batches: Option<usize>,
}

impl RewrapOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            batch_size: usize::try_from(config.master_key_rewrap_batch_size)
                .unwrap_or(100)
                .max(1),
            max_batches: None,
        }
    }
}

/// What a re-wrap uses: clones of the service's handles, so it can run in the background.
#[derive(Debug, Clone)]
pub struct Rewrapper {
    pub store: Store,
    pub master: Arc<MasterKeys>,
    pub events: EventLog,
    pub tracker: Arc<RewrapTracker>,
}

/// What a call to [`rewrap`] did.
#[derive(Debug, Clone)]
pub enum RewrapOutcome {
    /// Every row is already under the current key.
    NothingToDo,
    /// This replica is already re-wrapping, or another holds the lease.
    Busy,
    Ran(RewrapRun),
}

/// Re-wraps every row not sealed under the current master key, holding the re-wrap lease.
/// `actor` is recorded in the start and finish security events.
pub async fn rewrap(
    with: &Rewrapper,
    actor: &str,
    options: RewrapOptions,
) -> anyhow::Result<RewrapOutcome> {
    let Some(running) = Running::claim(&with.tracker) else {
        return Ok(RewrapOutcome::Busy);
    };
    rewrap_claimed(with, running, actor, options).await
}

/// [`rewrap`], with this replica's running flag already claimed.
async fn rewrap_claimed(
    with: &Rewrapper,
    _running: Running,
    actor: &str,
    options: RewrapOptions,
) -> anyhow::Result<RewrapOutcome> {
    let keys = with.master.clone();
    let before = remaining(&with.store, keys.id()).await?;
    if before.is_empty() {
        return Ok(RewrapOutcome::NothingToDo);
    }
    let holder = new_id();
    if !with
        .store
        .try_acquire_lease(REWRAP_LEASE, &holder, now_ms(), now_ms() + LEASE_MS)
        .await?
    {
        return Ok(RewrapOutcome::Busy);
    }
    let total: i64 = before.iter().map(|(_, _, n)| n).sum();
    let from: Vec<&str> = before.iter().map(|(_, id, _)| id.as_str()).collect();
    tracing::info!(rows = total, to = keys.id(), "master-key re-wrap started");
    let system = Meta::default();
    let event = |outcome: &'static str, details: serde_json::Value| Event {
        tenant_id: None,
        kind: MASTER_KEY_REWRAP,
        actor: actor.to_owned(),
        outcome,
        details,
    };
    events::record(
        &with.events,
        &system,
        event(
            "success",
            json!({"phase": "start", "to": keys.id(), "from": from, "rows": total}),
        ),
    )
    .await;
    let mut run = RewrapRun {
        started_at: now_ms(),
        total_at_start: u64::try_from(total).unwrap_or(0),
        ..RewrapRun::default()
    };
    with.tracker.set_last(run.clone());
    let result = run_batches(with, &keys, &holder, options, &mut run).await;
    if let Err(e) = with.store.release_lease(REWRAP_LEASE, &holder).await {
        tracing::warn!(error = %e, "re-wrap lease not released; it will expire");
    }
    run.finished_at = Some(now_ms());
    match &result {
        Ok(complete) => run.complete = *complete,
        Err(e) => run.error = Some(format!("{e:#}")),
    }
    with.tracker.set_last(run.clone());
    if run.complete || run.error.is_some() {
        let ok = run.complete && run.failed == 0;
        events::record(
            &with.events,
            &system,
            event(
                if ok { "success" } else { "failure" },
                json!({"phase": "finish", "to": keys.id(), "rewrapped": run.rewrapped,
                       "failed": run.failed, "error": run.error}),
            ),
        )
        .await;
        tracing::info!(
            rewrapped = run.rewrapped,
            failed = run.failed,
            "master-key re-wrap finished"
        );
    }
    result?;
    Ok(RewrapOutcome::Ran(run))
}

/// The batches; `Ok(false)` when stopped by `max_batches`.
async fn run_batches(
    with: &Rewrapper,
    keys: &MasterKeys,
    holder: &str,
    options: RewrapOptions,
    run: &mut RewrapRun,
) -> anyhow::Result<bool> {
    let limit = i64::try_from(options.batch_size).unwrap_or(i64::MAX);
    let mut batches = 0usize;
    for col in SEALED_COLUMNS {
        let mut after = String::new();
        loop {
            if options.max_batches.is_some_and(|max| batches >= max) {
                return Ok(false);
            }
            let rows = with
                .store
                .sealed_batch(col, keys.id(), &after, limit)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.key.clone();
            let mut resealed = Vec::with_capacity(rows.len());
            for row in rows {
                match reseal_one(keys, col, &row) {
                    Ok(value) => resealed.push((row, value)),
                    Err(e) => {
                        run.failed += 1;
                        tracing::error!(table = col.table, key = %row.key, error = %e, "row not re-wrapped");
                    }
                }
            }
            run.rewrapped += with.store.reseal(col, &resealed, keys.id()).await?;
            batches += 1;
            with.tracker.set_last(run.clone());
            anyhow::ensure!(
                with.store
                    .renew_lease(REWRAP_LEASE, holder, now_ms() + LEASE_MS)
                    .await?,
                "the re-wrap lease was lost"
            );
        }
    }
    Ok(true)
}

/// The row's value, opened with the key it names and sealed under the current key.
fn reseal_one(keys: &MasterKeys, col: SealedColumn, row: &SealedRow) -> anyhow::Result<Vec<u8>> {
    let aad = aad_of(col, row)?;
    let plain = keys.open(&row.master_key_id, &row.sealed, &aad)?;
    keys.seal(&plain, &aad)
}

/// The AAD each table seals with (the same functions its module uses).
fn aad_of(col: SealedColumn, row: &SealedRow) -> anyhow::Result<Vec<u8>> {
    Ok(if col == SIGNING_KEYS {
        let alg = SigningAlg::parse(&row.extra)
            .ok_or_else(|| anyhow::anyhow!("unknown algorithm {}", row.extra))?;
        crate::keys::aad(&row.key, alg).into_bytes()
    } else if col == MFA_TOTP {
        mfa::aad(&row.key)
    } else if col == MAIL_OUTBOX {
        crate::mail::aad(&row.key)
    } else {
        vault::dek_aad(&row.key)
    })
}

/// Starts the re-wrap in the background (it ends at once when nothing is under a previous
/// key). `None` when this replica is already re-wrapping.
pub fn spawn_rewrap(
    with: Rewrapper,
    options: RewrapOptions,
    actor: String,
) -> Option<tokio::task::JoinHandle<()>> {
    let running = Running::claim(&with.tracker)?;
    Some(tokio::spawn(async move {
        match rewrap_claimed(&with, running, &actor, options).await {
            Ok(RewrapOutcome::Busy) => {
                tracing::info!("master-key re-wrap: already running (here or on another replica)")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "master-key re-wrap failed"),
        }
    }))
}
