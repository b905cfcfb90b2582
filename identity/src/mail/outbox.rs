//! The outbox: every message is stored (content sealed) before delivery is tried, handed to
//! the [`Transport`] by a background sender, and removed only once the transport took it. A
//! failed attempt is retried after `retry_base_ms`, doubling per attempt up to `retry_max_ms`,
//! for as long as it takes. Several replicas share the table: a sender claims a message (moves
//! its next attempt past the transport's timeout) before it sends, so one replica sends it.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, Message, header::ContentType};
use tokio::sync::Notify;

use super::{Content, MailConfig, Transport, aad};
use crate::crypto::MasterKeys;
use crate::store::mail::OutboxRow;
use crate::store::{Store, now_ms};

/// Messages one pass of the sender looks at.
const BATCH: i64 = 50;
/// The longest error text kept with a message.
const MAX_ERROR: usize = 500;

/// The outbox and its sender (see the module docs). Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    master: Arc<MasterKeys>,
    transport: Arc<dyn Transport>,
    from: Mailbox,
    config: MailConfig,
    wake: Notify,
}

impl Outbox {
    pub fn new(
        store: Store,
        master: Arc<MasterKeys>,
        transport: Arc<dyn Transport>,
        config: MailConfig,
    ) -> anyhow::Result<Self> {
        let from = config
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
        Ok(Self {
            store,
            master,
            transport,
            from,
            config,
            wake: Notify::new(),
        })
    }

    /// Stores a message for `to` and wakes the sender. Once this returns the message will be
    /// delivered, however long the mail server is away. An address no mail server could take
    /// (it does not parse as a mailbox) is not queued at all, rather than retried for ever; the
    /// caller's answer does not change (a reset request answers the same either way).
    pub async fn enqueue(
        &self,
        tenant_id: Option<&str>,
        kind: &str,
        to: &str,
        content: &Content,
    ) -> anyhow::Result<()> {
        if to.parse::<Mailbox>().is_err() {
            tracing::warn!(
                kind,
                "mail not queued: the recipient is not a deliverable address"
            );
            return Ok(());
        }
        let id = tansu_shared::ids::uuid_v7().to_string();
        let plain = serde_json::to_vec(content)?;
        let now = now_ms();
        let row = OutboxRow {
            content_sealed: self.master.seal(&plain, &aad(&id))?,
            master_key_id: self.master.id().to_owned(),
            id,
            tenant_id: tenant_id.map(str::to_owned),
            kind: kind.to_owned(),
            recipient: to.to_owned(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
        };
        self.store.enqueue_mail(&row).await?;
        tracing::info!(mail_id = %row.id, kind, "mail queued");
        self.wake.notify_one();
        Ok(())
    }

    /// Sends what is due now; how many messages were delivered.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let now = now_ms();
        let mut delivered = 0;
        for row in self.store.due_mail(now, BATCH).await? {
            // Past the transport's timeout: a sender that dies mid-attempt frees it by then.
            let lease = i64::try_from(self.config.smtp_timeout_ms.saturating_mul(3))
                .unwrap_or(i64::MAX / 4);
            if !self
                .store
                .claim_mail(&row.id, row.next_attempt_at, now + lease)
                .await?
            {
                continue;
            }
            match self.attempt(&row).await {
                Ok(()) => {
                    self.store.mail_delivered(&row.id).await?;
                    tracing::info!(mail_id = %row.id, kind = %row.kind, attempts = row.attempts + 1, "mail delivered");
                    delivered += 1;
                }
                Err(e) => {
                    let attempts = row.attempts + 1;
                    let next = now_ms() + self.backoff_ms(attempts);
                    let error: String = e.chars().take(MAX_ERROR).collect();
                    tracing::warn!(mail_id = %row.id, kind = %row.kind, attempts, error = %error, "mail delivery failed; it stays queued");
                    self.store
                        .mail_failed(&row.id, attempts, next, &error)
                        .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// The delay before attempt `attempts + 1`.
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let ms = self
            .config
            .retry_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.config.retry_max_ms);
        i64::try_from(ms).unwrap_or(i64::MAX / 4)
    }

    async fn attempt(&self, row: &OutboxRow) -> Result<(), String> {
        let plain = self
            .master
            .open(&row.master_key_id, &row.content_sealed, &aad(&row.id))
            .map_err(|e| format!("opening the message: {e}"))?;
        let content: Content =
            serde_json::from_slice(&plain).map_err(|e| format!("the message: {e}"))?;
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("the recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(content.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(content.text)
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport.send(&message).await
    }

    /// Runs the sender until the handle is aborted: at once for a new message, every
    /// `poll_ms` for retries.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let outbox = self.clone();
        tokio::spawn(async move {
            let poll = Duration::from_millis(outbox.config.poll_ms);
            loop {
                if let Err(e) = outbox.deliver_due().await {
                    tracing::warn!(error = %format!("{e:#}"), "the mail outbox could not be read");
                }
                let _ = tokio::time::timeout(poll, outbox.wake.notified()).await;
            }
        })
    }
}
