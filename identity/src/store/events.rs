//! The security-event log: append (with the chain link) and reads.

use sqlx::Row;

use super::grants::{CODE_COLUMNS, CODE_WIDTH, CodeRow, NewSession, bind_code};
use super::users::{SESSION_COLUMNS, SESSION_WIDTH, bind_session};
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
    /// Newest first (the cursor then continues with older events).
    pub desc: bool,
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

/// Binds an event's columns in `COLUMNS` order (a macro: the query type differs per dialect).
macro_rules! bind_event {
    ($q:expr, $e:expr) => {
        $q.bind(&$e.id)
            .bind(&$e.tenant_id)
            .bind($e.seq)
            .bind($e.at)
            .bind(&$e.kind)
            .bind(&$e.actor)
            .bind(&$e.ip)
            .bind(&$e.user_agent)
            .bind(&$e.outcome)
            .bind(&$e.details)
            .bind(&$e.trace_id)
            .bind(&$e.prev_hash)
            .bind(&$e.hash)
    };
}

/// Parameters per event in [`COLUMNS`].
const EVENT_WIDTH: usize = 13;
/// Events per insert statement, at most ([`EVENT_WIDTH`] parameters each, well under SQLite's
/// limit).
pub const INSERT_CHUNK: usize = 100;

/// One row when a chain holds link ($1 tenant, $2 seq, $3 hash) as its event $2: seq 0 is the
/// empty chain; otherwise the newest event at or before seq $2 must have that hash (a
/// retention purge always keeps each chain's newest event, so the link an append continues is
/// never purged). Written as the backward scan of `(tenant_id, seq)` that `last_event_link`
/// uses: a plan cached while the table was small and unanalysed still takes that index (an
/// `EXISTS … seq = $2` took `(tenant_id, id)` and filtered the tenant's whole chain).
const LINK_CHECK: &str = "SELECT 1 AS linked WHERE $2 = 0 OR (SELECT hash FROM security_events \
    WHERE tenant_id = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1) = $3";

impl Store {
    /// The last link of a tenant's chain: (seq, hash); (0, "") for an empty chain.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db last_event_link", otel.kind = "client", db.system = self.dialect(), db.operation.name = "last_event_link"))]
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

    /// Appends linked events of one tenant's chain, all or none, and with them `sessions`: the
    /// new sessions (and codes) of the sign-ins the events record. Returns `false`, storing
    /// nothing, when the chain does not hold the link the first event names (seq − 1 with
    /// `prev_hash`): the writer's remembered last link was lost, say in a failover to a
    /// replica that had not received it. Another writer's append in the meantime is a unique
    /// violation of `(tenant_id, seq)`. Either way the caller re-reads the link and retries;
    /// no event is ever stored after a link the chain does not hold.
    ///
    /// On PostgreSQL up to [`INSERT_CHUNK`] events and their sessions are one statement
    /// (data-modifying CTEs: one round trip, one commit); more events, or sessions on SQLite,
    /// take one transaction.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_events", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_events"))]
    pub async fn insert_events(
        &self,
        events: &[EventRow],
        sessions: &[NewSession],
    ) -> StoreResult<bool> {
        let Some(first_event) = events.first() else {
            return Ok(true);
        };
        let link_seq = first_event.seq - 1;
        let link = (&first_event.tenant_id, link_seq, &first_event.prev_hash);
        let codes: Vec<&CodeRow> = sessions.iter().filter_map(|s| s.code.as_ref()).collect();
        // Each table's rows as `INSERT … SELECT` from their VALUES, joined with `from`: the
        // link check in one statement, nothing in a transaction (it checks on its own).
        let insert = |table: &str, columns: &str, (first, width, rows), from: &str| {
            let values = super::placeholders(first, width, rows);
            format!("INSERT INTO {table} ({columns}) SELECT v.* FROM (VALUES {values}) AS v{from}")
        };
        let sessions_sql = |first: usize, from: &str| {
            let shape = (first, SESSION_WIDTH, sessions.len());
            insert("sessions", SESSION_COLUMNS, shape, from)
        };
        let codes_sql = |first: usize, from: &str| {
            let shape = (first, CODE_WIDTH, codes.len());
            insert("authorization_codes", CODE_COLUMNS, shape, from)
        };
        let events_sql = |first: usize, rows: usize, from: &str| {
            insert("security_events", COLUMNS, (first, EVENT_WIDTH, rows), from)
        };
        let one_statement = events.len() <= INSERT_CHUNK
            && (sessions.is_empty() || matches!(self, Store::Postgres(_)));
        if one_statement {
            // The link check takes $1..$3, then the sessions, the codes and the events.
            let mut ctes = vec![format!("link AS ({LINK_CHECK})")];
            let mut next = 4;
            if !sessions.is_empty() {
                ctes.push(format!("s AS ({})", sessions_sql(next, " CROSS JOIN link")));
                next += sessions.len() * SESSION_WIDTH;
            }
            if !codes.is_empty() {
                ctes.push(format!("c AS ({})", codes_sql(next, " CROSS JOIN link")));
                next += codes.len() * CODE_WIDTH;
            }
            let sql = format!(
                "WITH {} {}",
                ctes.join(", "),
                events_sql(next, events.len(), " CROSS JOIN link")
            );
            let stored = on_pool!(self, pool => {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(link.0)
                    .bind(link.1)
                    .bind(link.2);
                for s in sessions {
                    q = bind_session!(q, s.session);
                }
                for c in &codes {
                    q = bind_code!(q, c);
                }
                for e in events {
                    q = bind_event!(q, e);
                }
                q.execute(pool).await?.rows_affected()
            });
            // The link check gates every insert of the statement: all rows or none.
            return Ok(stored == events.len() as u64);
        }
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            if !sessions.is_empty() {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sessions_sql(1, "")));
                for s in sessions {
                    q = bind_session!(q, s.session);
                }
                q.execute(&mut *tx).await?;
            }
            if !codes.is_empty() {
                let mut q = sqlx::query(sqlx::AssertSqlSafe(codes_sql(1, "")));
                for c in &codes {
                    q = bind_code!(q, c);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in events.chunks(INSERT_CHUNK) {
                let sql = events_sql(1, chunk.len(), "");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for e in chunk {
                    q = bind_event!(q, e);
                }
                q.execute(&mut *tx).await?;
            }
            // Checked after the inserts: on SQLite a transaction that reads first fails, rather
            // than waits, when another connection writes before it does.
            let linked = sqlx::query(LINK_CHECK)
                .bind(link.0)
                .bind(link.1)
                .bind(link.2)
                .fetch_optional(&mut *tx)
                .await?;
            if linked.is_none() {
                return Ok(false);
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Which of `ids` are stored already (an ingest retried after a lost answer).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db existing_event_ids", otel.kind = "client", db.system = self.dialect(), db.operation.name = "existing_event_ids"))]
    pub async fn existing_event_ids(&self, ids: &[String]) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        const SQL: &str =
            "SELECT id FROM security_events WHERE id IN (SELECT value FROM json_each($1))";
        const PG: &str = "SELECT id FROM security_events WHERE id = ANY(SELECT jsonb_array_elements_text($1::jsonb))";
        let list =
            serde_json::to_string(ids).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
        match self {
            Store::Sqlite(pool, _) => {
                Ok(sqlx::query_scalar(SQL).bind(list).fetch_all(pool).await?)
            }
            Store::Postgres(pool) => Ok(sqlx::query_scalar(PG).bind(list).fetch_all(pool).await?),
        }
    }

    /// Where a tenant's remaining chain starts: the last purged link (seq, hash), or (0, "").
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db event_anchor", otel.kind = "client", db.system = self.dialect(), db.operation.name = "event_anchor"))]
    pub async fn event_anchor(&self, tenant_id: &str) -> StoreResult<(i64, String)> {
        const SQL: &str = "SELECT seq, hash FROM security_event_anchors WHERE tenant_id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
                None => (0, String::new()),
            })
        })
    }

    /// Retention: deletes every event older than `before` (unix ms) except each chain's newest
    /// event (it links the next append), recording the last deleted link of each chain as its
    /// anchor in the same transaction. Returns how many events were deleted.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_events", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_events"))]
    pub async fn purge_events(&self, before: i64, now: i64) -> StoreResult<u64> {
        const OLD: &str =
            "SELECT tenant_id, MAX(seq) FROM security_events WHERE at < $1 GROUP BY tenant_id";
        const HASH: &str = "SELECT hash FROM security_events WHERE tenant_id = $1 AND seq = $2";
        const ANCHOR: &str = "INSERT INTO security_event_anchors (tenant_id, seq, hash, purged_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO UPDATE \
            SET seq = excluded.seq, hash = excluded.hash, purged_at = excluded.purged_at";
        const DELETE: &str = "DELETE FROM security_events WHERE tenant_id = $1 AND seq <= $2";
        let mut deleted = 0;
        let old: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(OLD).bind(before).fetch_all(pool).await?
        });
        for (tenant_id, newest_old) in old {
            let (last, _) = self.last_event_link(&tenant_id).await?;
            let cut = newest_old.min(last - 1);
            if cut <= 0 {
                continue;
            }
            on_pool!(self, pool => {
                let _turn = self.serial_write().await;
                let mut tx = pool.begin().await?;
                let hash: Option<String> = sqlx::query_scalar(HASH)
                    .bind(&tenant_id)
                    .bind(cut)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(hash) = hash {
                    sqlx::query(ANCHOR)
                        .bind(&tenant_id)
                        .bind(cut)
                        .bind(&hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    deleted += sqlx::query(DELETE)
                        .bind(&tenant_id)
                        .bind(cut)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
            });
        }
        Ok(deleted)
    }

    /// Events matching `f`, by id (time order; `f.desc`: newest first), after the cursor.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db query_events", otel.kind = "client", db.system = self.dialect(), db.operation.name = "query_events"))]
    pub async fn query_events(&self, f: &EventFilter, limit: i64) -> StoreResult<Vec<EventRow>> {
        // Only the filters in use appear in the SQL (always as bound parameters), so each
        // dialect's planner can use the matching index — `(tenant_id, id)`, `(actor, id)`,
        // `at` — instead of scanning the whole log for `($2 = '*' OR tenant_id = $2)`.
        enum Bind<'a> {
            Text(&'a str),
            Int(i64),
        }
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<Bind<'_>> = Vec::new();
        let text = [
            (if f.desc { "id < " } else { "id > " }, f.after.as_deref()),
            ("tenant_id = ", f.tenant_id.as_deref()),
            ("type = ", f.kind.as_deref()),
            ("actor = ", f.actor.as_deref()),
            ("outcome = ", f.outcome.as_deref()),
        ];
        for (clause, value) in text {
            if let Some(v) = value {
                binds.push(Bind::Text(v));
                clauses.push(format!("{clause}${}", binds.len()));
            }
        }
        for (clause, value) in [("at >= ", f.from), ("at <= ", f.to)] {
            if let Some(v) = value {
                binds.push(Bind::Int(v));
                clauses.push(format!("{clause}${}", binds.len()));
            }
        }
        binds.push(Bind::Int(limit));
        let limit_param = binds.len();
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let dir = if f.desc { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM security_events {filter} ORDER BY id {dir} LIMIT ${limit_param}"
        );
        on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in &binds {
                q = match b {
                    Bind::Text(t) => q.bind(*t),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            let rows = q.fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(event_row!(r));
            }
            Ok(out)
        })
    }

    /// A tenant's chain in order, from `after_seq` (exclusive).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db chain_page", otel.kind = "client", db.system = self.dialect(), db.operation.name = "chain_page"))]
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
