//! The security-event log: append (with the chain link) and reads.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: String,
    pub tenant_id: String,
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub ip: String,
    pub user_agent: String,
    pub outcome: String,
    pub details: String,
    pub trace_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters of an event query (all optional; `tenant_id` `Some("")` is the platform chain).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub tenant_id: Option<String>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub after: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, tenant_id, seq, at, type, actor, ip, user_agent, outcome, details, \
    trace_id, prev_hash, hash";

macro_rules! event_row {
    ($r:expr) => {
        EventRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            seq: $r.try_get("seq")?,
            at: $r.try_get("at")?,
            kind: $r.try_get("type")?,
            actor: $r.try_get("actor")?,
            ip: $r.try_get("ip")?,
            user_agent: $r.try_get("user_agent")?,
            outcome: $r.try_get("outcome")?,
            details: $r.try_get("details")?,
            trace_id: $r.try_get("trace_id")?,
            prev_hash: $r.try_get("prev_hash")?,
            hash: $r.try_get("hash")?,
        }
    };
}

impl Store {
    /// The last link of a tenant's chain: (seq, hash); (0, "") for an empty chain.
    pub async fn last_event_link(&self, tenant_id: &str) -> StoreResult<(i64, String)> {
        const SQL: &str =
            "SELECT seq, hash FROM security_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
                None => (0, String::new()),
            })
        })
    }

    /// Inserts a fully linked event; a unique violation means another writer took `seq`.
    pub async fn insert_event(&self, e: &EventRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO security_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&e.id)
                .bind(&e.tenant_id)
                .bind(e.seq)
                .bind(e.at)
                .bind(&e.kind)
                .bind(&e.actor)
                .bind(&e.ip)
                .bind(&e.user_agent)
                .bind(&e.outcome)
                .bind(&e.details)
                .bind(&e.trace_id)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Events matching `f`, by id (time order), after the cursor.
    pub async fn query_events(&self, f: &EventFilter, limit: i64) -> StoreResult<Vec<EventRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM security_events WHERE id > $1 \
             AND ($2 = '*' OR tenant_id = $2) AND ($3 = '' OR type = $3) \
             AND ($4 = '' OR actor = $4) AND ($5 = '' OR outcome = $5) \
             AND at >= $6 AND at <= $7 ORDER BY id LIMIT $8"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(f.after.as_deref().unwrap_or(""))
                .bind(f.tenant_id.as_deref().unwrap_or("*"))
                .bind(f.kind.as_deref().unwrap_or(""))
                .bind(f.actor.as_deref().unwrap_or(""))
                .bind(f.outcome.as_deref().unwrap_or(""))
                .bind(f.from.unwrap_or(i64::MIN))
                .bind(f.to.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(event_row!(r));
            }
            Ok(out)
        })
    }

    /// A tenant's chain in order, from `after_seq` (exclusive).
    pub async fn chain_page(
        &self,
        tenant_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM security_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(event_row!(r));
            }
            Ok(out)
        })
    }
}
