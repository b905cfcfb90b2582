//! The mail outbox (messages waiting for the mail server) and tenants' own message templates.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// A message waiting for delivery. Its content is sealed under the master key
/// ([`crate::mail::aad`]); `next_attempt_at` is when a sender may try it next.
#[derive(Clone)]
pub struct OutboxRow {
    pub id: String,
    pub tenant_id: Option<String>,
    /// The message kind (`password_reset`, `email_verification`, …).
    pub kind: String,
    pub recipient: String,
    pub content_sealed: Vec<u8>,
    pub master_key_id: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, tenant_id, kind, recipient, content_sealed, master_key_id, created_at, \
    attempts, next_attempt_at, last_error";

impl Store {
    /// Stores a message for delivery.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db enqueue_mail", otel.kind = "client", db.system = self.dialect(), db.operation.name = "enqueue_mail"))]
    pub async fn enqueue_mail(&self, m: &OutboxRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO mail_outbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&m.id)
                .bind(&m.tenant_id)
                .bind(&m.kind)
                .bind(&m.recipient)
                .bind(&m.content_sealed)
                .bind(&m.master_key_id)
                .bind(m.created_at)
                .bind(m.attempts)
                .bind(m.next_attempt_at)
                .bind(&m.last_error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Up to `limit` messages due at `now`, the longest waiting first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db due_mail", otel.kind = "client", db.system = self.dialect(), db.operation.name = "due_mail"))]
    pub async fn due_mail(&self, now: i64, limit: i64) -> StoreResult<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $2"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(OutboxRow {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    kind: r.try_get("kind")?,
                    recipient: r.try_get("recipient")?,
                    content_sealed: r.try_get("content_sealed")?,
                    master_key_id: r.try_get("master_key_id")?,
                    created_at: r.try_get("created_at")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_error: r.try_get("last_error")?,
                });
            }
            Ok(out)
        })
    }

    /// Claims a message for one delivery attempt: moves its next attempt to `until` if it is
    /// still `seen` (so of several replicas one sends it). Whether this caller won.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db claim_mail", otel.kind = "client", db.system = self.dialect(), db.operation.name = "claim_mail"))]
    pub async fn claim_mail(&self, id: &str, seen: i64, until: i64) -> StoreResult<bool> {
        const SQL: &str =
            "UPDATE mail_outbox SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(id).bind(seen).bind(until).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// The mail server took the message: it leaves the outbox.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db mail_delivered", otel.kind = "client", db.system = self.dialect(), db.operation.name = "mail_delivered"))]
    pub async fn mail_delivered(&self, id: &str) -> StoreResult<()> {
        const SQL: &str = "DELETE FROM mail_outbox WHERE id = $1";
        on_pool!(self, pool => { sqlx::query(SQL).bind(id).execute(pool).await?; });
        Ok(())
    }

    /// A delivery attempt failed: the message stays, to be tried again at `next_attempt_at`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db mail_failed", otel.kind = "client", db.system = self.dialect(), db.operation.name = "mail_failed"))]
    pub async fn mail_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE mail_outbox SET attempts = $2, next_attempt_at = $3, \
            last_error = $4 WHERE id = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(id).bind(attempts).bind(next_attempt_at).bind(error).execute(pool).await?;
        });
        Ok(())
    }

    /// Messages waiting in the outbox.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db outbox_len", otel.kind = "client", db.system = self.dialect(), db.operation.name = "outbox_len"))]
    pub async fn outbox_len(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM mail_outbox";
        on_pool!(self, pool => Ok(sqlx::query_scalar(SQL).fetch_one(pool).await?))
    }

    /// A tenant's own template of a message kind: (subject, body).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db mail_template", otel.kind = "client", db.system = self.dialect(), db.operation.name = "mail_template"))]
    pub async fn mail_template(
        &self,
        tenant_id: &str,
        kind: &str,
    ) -> StoreResult<Option<(String, String)>> {
        const SQL: &str =
            "SELECT subject, body FROM mail_templates WHERE tenant_id = $1 AND kind = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).bind(kind).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some((r.try_get("subject")?, r.try_get("body")?)),
                None => None,
            })
        })
    }

    /// Sets (or with `None` removes) a tenant's own template of a message kind.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db set_mail_template", otel.kind = "client", db.system = self.dialect(), db.operation.name = "set_mail_template"))]
    pub async fn set_mail_template(
        &self,
        tenant_id: &str,
        kind: &str,
        template: Option<(&str, &str)>,
        now: i64,
    ) -> StoreResult<()> {
        const DELETE: &str = "DELETE FROM mail_templates WHERE tenant_id = $1 AND kind = $2";
        const UPSERT: &str = "INSERT INTO mail_templates (tenant_id, kind, subject, body, updated_at) \
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, kind) \
            DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_at = excluded.updated_at";
        on_pool!(self, pool => {
            match template {
                None => { sqlx::query(DELETE).bind(tenant_id).bind(kind).execute(pool).await?; }
                Some((subject, body)) => {
                    sqlx::query(UPSERT).bind(tenant_id).bind(kind).bind(subject).bind(body).bind(now).execute(pool).await?;
                }
            }
        });
        Ok(())
    }
}
