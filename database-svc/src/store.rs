//! One tenant's document store: collections, documents, indexes and the change outbox, in the
//! tenant's own database (a SQLite file or a PostgreSQL database).
//!
//! The same statements serve both engines where the SQL allows (`$n` placeholders work in
//! both, JSON bodies are bound as `sqlx::types::Json`, which is TEXT in SQLite and JSONB in
//! PostgreSQL); where it does not (JSON paths, type tests, write transactions), the two
//! dialects sit side by side in [`crate::query`] and here.
//!
//! Change feed without gaps: every write transaction increments the single row of `feed_seq`
//! and appends to `changes` with that number before committing. The row lock (PostgreSQL) or
//! the database write lock (SQLite, `BEGIN IMMEDIATE`) is held until commit, so sequence
//! numbers become visible in commit order: a reader that has seen `n` will never later find a
//! change numbered below `n` appear.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Row, SqlitePool};
use time::OffsetDateTime;

use crate::ident::FieldPath;
use crate::query::{Arg, Dialect, DocQuery};

/// A connection pool of one engine.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Pg(_) => Dialect::Postgres,
        }
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Pg(p) => p.close().await,
        }
    }
}

/// Runs the same code against whichever pool it is (each arm is type-checked for its engine).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Pg($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Binds [`Arg`]s in order onto a query (inside [`on_pool!`]).
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::Float(f) => q.bind(*f),
                Arg::Json(v) => q.bind(Json(v.clone())),
            };
        }
        q
    }};
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (takes the write lock up front, so two
/// writers never deadlock upgrading read locks), a plain `BEGIN` on PostgreSQL.
pub trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// A numbered schema change, in both dialects.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The tenant database's schema, oldest first. Append only: applied versions are recorded in
/// `tansu_migrations` and never run twice.
pub const TENANT_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "documents_and_outbox",
        sqlite: "
        CREATE TABLE collections (name TEXT PRIMARY KEY, schema TEXT, created_at INTEGER NOT NULL);
        CREATE TABLE documents (
            collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
            version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (collection, id)) WITHOUT ROWID;
        CREATE TABLE doc_indexes (
            collection TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL,
            sql_name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
            PRIMARY KEY (collection, name));
        CREATE TABLE changes (
            seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT, op TEXT NOT NULL,
            version INTEGER, body TEXT, at INTEGER NOT NULL);
        CREATE TABLE feed_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
        INSERT INTO feed_seq (id, seq) VALUES (1, 0);
    ",
        postgres: "
        CREATE TABLE collections (name TEXT PRIMARY KEY, schema JSONB, created_at BIGINT NOT NULL);
        CREATE TABLE documents (
            collection TEXT NOT NULL, id TEXT NOT NULL, body JSONB NOT NULL,
            version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
            PRIMARY KEY (collection, id));
        CREATE TABLE doc_indexes (
            collection TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL,
            sql_name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL,
            PRIMARY KEY (collection, name));
        CREATE TABLE changes (
            seq BIGINT PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT, op TEXT NOT NULL,
            version BIGINT, body JSONB, at BIGINT NOT NULL);
        CREATE TABLE feed_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
        INSERT INTO feed_seq (id, seq) VALUES (1, 0);
    ",
    },
    Migration {
        version: 2,
        name: "changes_floor",
        // The highest sequence number compaction removed: a follower behind it missed changes.
        sqlite: "
        CREATE TABLE changes_floor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
        INSERT INTO changes_floor (id, seq) VALUES (1, 0);
    ",
        postgres: "
        CREATE TABLE changes_floor (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
        INSERT INTO changes_floor (id, seq) VALUES (1, 0);
    ",
    },
];

/// Applies the migrations not yet recorded, each in its own transaction with its record.
pub async fn migrate(pool: &Pool, migrations: &[Migration]) -> Result<(), sqlx::Error> {
    let dialect = pool.dialect();
    on_pool!(pool, p => {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tansu_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(p)
        .await?;
        for m in migrations {
            let mut tx = p.begin_write().await?;
            if dialect == Dialect::Postgres {
                // Replicas starting together migrate one at a time.
                sqlx::query("SELECT pg_advisory_xact_lock(727368)").execute(&mut *tx).await?;
            }
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM tansu_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            let sql = match dialect {
                Dialect::Sqlite => m.sqlite,
                Dialect::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO tansu_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::debug!(version = m.version, name = m.name, "migration applied");
        }
        Ok(())
    })
}

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the document's version does not match If-Match")]
    PreconditionFailed,
    #[error("{0}")]
    Invalid(String),
    /// The change feed no longer holds the changes after `since`: compaction removed those up
    /// to `floor`.
    #[error("changes up to {floor} were compacted")]
    Gone { floor: i64 },
    /// A write refused by a check inside the transaction, answered as the check put it.
    #[error("{0}")]
    Rejected(Box<tansu_shared::Problem>),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A stored document.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub id: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub data: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexInfo {
    pub name: String,
    pub field: String,
    pub created_at: String,
}

/// One entry of the change feed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub seq: i64,
    pub op: String,
    pub collection: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    pub at: String,
}

/// How a write is conditioned on the stored version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// `If-Match: "<version>"[, "<version>"…]`: the stored version must be one of these.
    Versions(Vec<i64>),
    /// `If-Match: *`: the document must exist.
    Exists,
    /// `If-None-Match: *`: the document must not exist.
    Absent,
}

impl Precondition {
    /// Whether a write may proceed given the stored version (`None`: no such document).
    pub fn allows(&self, current: Option<i64>) -> bool {
        match (self, current) {
            (Precondition::None, _) => true,
            (Precondition::Versions(vs), Some(v)) => vs.contains(&v),
            (Precondition::Versions(_), None) => false,
            (Precondition::Exists, c) => c.is_some(),
            (Precondition::Absent, c) => c.is_none(),
        }
    }
}

struct Inner {
    pool: Pool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last user is gone (evicted from the open-tenant cache and no request in flight):
        // close the connections gracefully.
        let pool = self.pool.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { pool.close().await });
        }
    }
}

/// A tenant's open store. Cheap to clone; the pool closes when the last clone drops.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish()
    }
}

const DOC_COLUMNS: &str = "id, body, version, created_at, updated_at";

/// The statements of a document get and insert, public so that the benchmark
/// (`tansu-bench db`) runs exactly these directly with sqlx beside the service.
pub mod sql {
    use crate::query::Dialect;

    /// A document by collection and id (`DOC_COLUMNS`).
    pub const GET_DOCUMENT: &str = "SELECT id, body, version, created_at, updated_at FROM documents WHERE collection = $1 AND id = $2";
    /// A collection and its schema: a write reads it to validate the document first.
    pub const GET_COLLECTION: &str =
        "SELECT name, schema, created_at FROM collections WHERE name = $1";
    /// Whether a collection exists; inside a write followed by [`share_lock`].
    pub const COLLECTION_EXISTS: &str = "SELECT CAST(1 AS BIGINT) FROM collections WHERE name = $1";
    /// A new document at version 1; no row affected when the id is taken.
    pub const INSERT_DOCUMENT: &str =
        "INSERT INTO documents (collection, id, body, version, created_at, updated_at)
                     VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (collection, id) DO NOTHING";
    /// Reserves `$1` change numbers; the row stays locked until commit.
    pub const NEXT_SEQ: &str = "UPDATE feed_seq SET seq = seq + $1 WHERE id = 1 RETURNING seq";
    /// One change-feed entry.
    pub const INSERT_CHANGE: &str =
        "INSERT INTO changes (seq, collection, doc_id, op, version, body, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)";

    /// The lock a write takes on its collection's row (see `require_collection!`): on
    /// PostgreSQL `FOR SHARE`; SQLite's `BEGIN IMMEDIATE` already holds the database.
    pub fn share_lock(dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Postgres => " FOR SHARE",
            Dialect::Sqlite => "",
        }
    }
}

/// Reads a [`Document`] from a row of `DOC_COLUMNS` (a macro: one body for both engines).
macro_rules! doc_from_row {
    ($row:expr) => {{
        let row = $row;
        (|| -> Result<Document, sqlx::Error> {
            let body: Json<Value> = row.try_get("body")?;
            Ok(Document {
                id: row.try_get("id")?,
                version: row.try_get("version")?,
                created_at: rfc3339(row.try_get("created_at")?),
                updated_at: rfc3339(row.try_get("updated_at")?),
                data: body.0,
            })
        })()
    }};
}

/// 404 unless the collection exists. In a write transaction on PostgreSQL pass
/// `" FOR SHARE"`: the row stays locked until commit, so a concurrent collection delete (which
/// deletes that row first) waits for this write and then sees its documents.
macro_rules! require_collection {
    ($exec:expr, $collection:expr) => {
        require_collection!($exec, $collection, "")
    };
    ($exec:expr, $collection:expr, $lock:expr) => {{
        let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{}{}",
            sql::COLLECTION_EXISTS,
            $lock
        )))
        .bind($collection)
        .fetch_optional($exec)
        .await?;
        if found.is_none() {
            return Err(StoreError::NotFound("collection"));
        }
    }};
}

/// Appends to the outbox, numbering from the single `feed_seq` row (locked until commit).
macro_rules! append_changes {
    ($tx:expr, $changes:expr, $now:expr) => {{
        let changes: &[ChangeRow] = $changes;
        if !changes.is_empty() {
            let last: i64 = sqlx::query_scalar(sql::NEXT_SEQ)
                .bind(changes.len() as i64)
                .fetch_one(&mut *$tx)
                .await?;
            let first = last - changes.len() as i64 + 1;
            for (i, c) in changes.iter().enumerate() {
                sqlx::query(sql::INSERT_CHANGE)
                    .bind(first + i as i64)
                    .bind(c.collection.clone())
                    .bind(c.id.clone())
                    .bind(c.op)
                    .bind(c.version)
                    .bind(c.data.clone().map(Json))
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self {
            inner: Arc::new(Inner { pool }),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.inner.pool.dialect()
    }

    /// The lock a write takes on its collection's row (see `require_collection!`).
    fn share_lock(&self) -> &'static str {
        sql::share_lock(self.dialect())
    }

    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        migrate(&self.inner.pool, TENANT_MIGRATIONS).await
    }

    pub async fn create_collection(
        &self,
        name: &str,
        schema: Option<Value>,
    ) -> Result<CollectionInfo, StoreError> {
        let now = now_ms();
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            let inserted = sqlx::query(
                "INSERT INTO collections (name, schema, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(schema.clone().map(Json))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("collection {name} already exists")));
            }
            append_changes!(tx, &[ChangeRow::collection("create_collection", name)], now);
            tx.commit().await?;
            Ok(CollectionInfo { name: name.to_owned(), schema, created_at: rfc3339(now) })
        })
    }

    pub async fn list_collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        on_pool!(&self.inner.pool, p => {
            let rows = sqlx::query("SELECT name, schema, created_at FROM collections ORDER BY name")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    let schema: Option<Json<Value>> = r.try_get("schema")?;
                    Ok(CollectionInfo {
                        name: r.try_get("name")?,
                        schema: schema.map(|j| j.0),
                        created_at: rfc3339(r.try_get("created_at")?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    pub async fn get_collection(&self, name: &str) -> Result<CollectionInfo, StoreError> {
        on_pool!(&self.inner.pool, p => {
            let row = sqlx::query(sql::GET_COLLECTION)
                .bind(name)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound("collection"))?;
            let schema: Option<Json<Value>> = row.try_get("schema")?;
            Ok(CollectionInfo {
                name: row.try_get("name")?,
                schema: schema.map(|j| j.0),
                created_at: rfc3339(row.try_get("created_at")?),
            })
        })
    }

    /// Deletes a collection with its documents and indexes.
    pub async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            // The collection row first: this waits for writes that hold it (FOR SHARE) and
            // stops new ones, so the deletes below see every committed document.
            let n = sqlx::query("DELETE FROM collections WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("collection"));
            }
            let indexes: Vec<String> =
                sqlx::query_scalar("SELECT sql_name FROM doc_indexes WHERE collection = $1")
                    .bind(name)
                    .fetch_all(&mut *tx)
                    .await?;
            for sql_name in indexes {
                // sql_name was generated by us (`ix_<uuid>`), never taken from a request.
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {sql_name}")))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM doc_indexes WHERE collection = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM documents WHERE collection = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            append_changes!(tx, &[ChangeRow::collection("delete_collection", name)], now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// The collection's JSON Schema, or 404 when the collection does not exist.
    pub async fn collection_schema(&self, name: &str) -> Result<Option<Value>, StoreError> {
        Ok(self.get_collection(name).await?.schema)
    }

    /// Inserts documents in one transaction: all or none. Ids already taken → 409.
    pub async fn insert(
        &self,
        collection: &str,
        docs: Vec<(String, Value)>,
    ) -> Result<Vec<Document>, StoreError> {
        let now = now_ms();
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            require_collection!(&mut *tx, collection, self.share_lock());
            let mut out = Vec::with_capacity(docs.len());
            let mut changes = Vec::with_capacity(docs.len());
            for (id, data) in docs {
                let n = sqlx::query(sql::INSERT_DOCUMENT)
                .bind(collection)
                .bind(&id)
                .bind(Json(&data))
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::Conflict(format!("document {id} already exists")));
                }
                changes.push(ChangeRow::doc("insert", collection, &id, 1, Some(data.clone())));
                out.push(Document {
                    id,
                    version: 1,
                    created_at: rfc3339(now),
                    updated_at: rfc3339(now),
                    data,
                });
            }
            append_changes!(tx, &changes, now);
            tx.commit().await?;
            Ok(out)
        })
    }

    pub async fn get(&self, collection: &str, id: &str) -> Result<Document, StoreError> {
        on_pool!(&self.inner.pool, p => {
            let row = sqlx::query(sql::GET_DOCUMENT)
            .bind(collection)
            .bind(id)
            .fetch_optional(p)
            .await?;
            match row {
                Some(r) => Ok(doc_from_row!(&r)?),
                None => {
                    require_collection!(p, collection);
                    Err(StoreError::NotFound("document"))
                }
            }
        })
    }

    /// Writes a document after `update` computed its new body from the current one (`None`
    /// when absent), honouring `pre`. Replace, upsert and merge patch are all this.
    pub async fn write<F>(
        &self,
        collection: &str,
        id: &str,
        pre: Precondition,
        update: F,
    ) -> Result<(Document, bool), StoreError>
    where
        F: FnOnce(Option<&Value>) -> Result<Value, StoreError> + Send,
    {
        let now = now_ms();
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            require_collection!(&mut *tx, collection, self.share_lock());
            let lock = if self.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
            let current = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {DOC_COLUMNS} FROM documents WHERE collection = $1 AND id = $2{lock}"
            )))
            .bind(collection)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| doc_from_row!(&r))
            .transpose()?;
            if !pre.allows(current.as_ref().map(|d| d.version)) {
                return Err(StoreError::PreconditionFailed);
            }
            let data = update(current.as_ref().map(|d| &d.data))?;
            let (doc, created) = match current {
                Some(cur) => {
                    let version = cur.version + 1;
                    sqlx::query(
                        "UPDATE documents SET body = $1, version = $2, updated_at = $3
                         WHERE collection = $4 AND id = $5 AND version = $6",
                    )
                    .bind(Json(&data))
                    .bind(version)
                    .bind(now)
                    .bind(collection)
                    .bind(id)
                    .bind(cur.version)
                    .execute(&mut *tx)
                    .await?;
                    (Document { id: id.to_owned(), version, created_at: cur.created_at, updated_at: rfc3339(now), data }, false)
                }
                None => {
                    sqlx::query(
                        "INSERT INTO documents (collection, id, body, version, created_at, updated_at)
                         VALUES ($1, $2, $3, 1, $4, $4)",
                    )
                    .bind(collection)
                    .bind(id)
                    .bind(Json(&data))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    (Document { id: id.to_owned(), version: 1, created_at: rfc3339(now), updated_at: rfc3339(now), data }, true)
                }
            };
            let op = if created { "insert" } else { "update" };
            append_changes!(tx, &[ChangeRow::doc(op, collection, id, doc.version, Some(doc.data.clone()))], now);
            tx.commit().await?;
            Ok((doc, created))
        })
    }

    pub async fn delete(
        &self,
        collection: &str,
        id: &str,
        pre: Precondition,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            require_collection!(&mut *tx, collection, self.share_lock());
            let version: Option<i64> = sqlx::query_scalar(
                "DELETE FROM documents WHERE collection = $1 AND id = $2 RETURNING version",
            )
            .bind(collection)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(version) = version else {
                return Err(match pre {
                    Precondition::None | Precondition::Absent => StoreError::NotFound("document"),
                    _ => StoreError::PreconditionFailed,
                });
            };
            if !pre.allows(Some(version)) {
                // Dropping the transaction rolls the delete back.
                return Err(StoreError::PreconditionFailed);
            }
            append_changes!(tx, &[ChangeRow::doc("delete", collection, id, version + 1, None)], now);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Runs a query; returns one page and whether more may follow.
    pub async fn query(
        &self,
        collection: &str,
        q: &DocQuery,
    ) -> Result<(Vec<Document>, bool), StoreError> {
        let (sql, args) = q.to_sql(self.dialect(), DOC_COLUMNS);
        let limit = q.limit as usize;
        on_pool!(&self.inner.pool, p => {
            require_collection!(p, collection);
            let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(collection);
            let rows = bind_args!(query, &args).fetch_all(p).await?;
            let mut docs = rows.iter().map(|r| doc_from_row!(r)).collect::<Result<Vec<_>, _>>()?;
            let more = docs.len() > limit;
            docs.truncate(limit);
            Ok((docs, more))
        })
    }

    pub async fn create_index(
        &self,
        collection: &str,
        name: &str,
        field: &FieldPath,
    ) -> Result<IndexInfo, StoreError> {
        let now = now_ms();
        let sql_name = format!("ix_{}", uuid::Uuid::now_v7().simple());
        // Every spliced part is ours or validated: sql_name from a UUID, the path by
        // `FieldPath` (letters, digits, `_`, `.` only).
        let ddl = match self.dialect() {
            Dialect::Sqlite => format!(
                "CREATE INDEX {sql_name} ON documents (collection, json_extract(body, '{}'))",
                field.sqlite_path()
            ),
            Dialect::Postgres => format!(
                "CREATE INDEX {sql_name} ON documents (collection, (body #> '{}'))",
                field.pg_path()
            ),
        };
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            require_collection!(&mut *tx, collection, self.share_lock());
            let n = sqlx::query(
                "INSERT INTO doc_indexes (collection, name, field, sql_name, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (collection, name) DO NOTHING",
            )
            .bind(collection)
            .bind(name)
            .bind(field.dotted())
            .bind(&sql_name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!("index {name} already exists")));
            }
            sqlx::query(sqlx::AssertSqlSafe(ddl)).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(IndexInfo { name: name.to_owned(), field: field.dotted(), created_at: rfc3339(now) })
        })
    }

    pub async fn list_indexes(&self, collection: &str) -> Result<Vec<IndexInfo>, StoreError> {
        on_pool!(&self.inner.pool, p => {
            require_collection!(p, collection);
            let rows = sqlx::query(
                "SELECT name, field, created_at FROM doc_indexes WHERE collection = $1 ORDER BY name",
            )
            .bind(collection)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok(IndexInfo {
                    name: r.try_get("name")?,
                    field: r.try_get("field")?,
                    created_at: rfc3339(r.try_get("created_at")?),
                }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    pub async fn drop_index(&self, collection: &str, name: &str) -> Result<(), StoreError> {
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            require_collection!(&mut *tx, collection, self.share_lock());
            let sql_name: Option<String> = sqlx::query_scalar(
                "DELETE FROM doc_indexes WHERE collection = $1 AND name = $2 RETURNING sql_name",
            )
            .bind(collection)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            let sql_name = sql_name.ok_or(StoreError::NotFound("index"))?;
            // Generated by us (`ix_<uuid>`).
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX IF EXISTS {sql_name}")))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes after `since`, in order; `Gone` when compaction removed some of them. The floor
    /// is read after the changes: a compaction that committed in between is noticed.
    pub async fn changes(&self, since: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        on_pool!(&self.inner.pool, p => {
            let rows = sqlx::query(
                "SELECT seq, op, collection, doc_id, version, body, at FROM changes
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(since)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let floor: i64 = sqlx::query_scalar("SELECT seq FROM changes_floor WHERE id = 1")
                .fetch_one(p)
                .await?;
            if since < floor {
                return Err(StoreError::Gone { floor });
            }
            rows.iter()
                .map(|r| {
                    let body: Option<Json<Value>> = r.try_get("body")?;
                    Ok(Change {
                        seq: r.try_get("seq")?,
                        op: r.try_get("op")?,
                        collection: r.try_get("collection")?,
                        id: r.try_get("doc_id")?,
                        version: r.try_get("version")?,
                        data: body.map(|b| b.0),
                        at: rfc3339(r.try_get("at")?),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Compaction: removes changes older than `before_ms` (when given) and all but the
    /// newest `keep` (when given), raising the floor to the highest removed number. Returns
    /// how many changes were removed. Numbers are assigned in commit order, so a change not
    /// yet committed is always above anything removed here.
    pub async fn compact_changes(
        &self,
        before_ms: Option<i64>,
        keep: Option<i64>,
    ) -> Result<u64, StoreError> {
        on_pool!(&self.inner.pool, p => {
            let mut tx = p.begin_write().await?;
            let mut upto: i64 = sqlx::query_scalar("SELECT seq FROM changes_floor WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            if let Some(before) = before_ms {
                let old: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE at < $1")
                        .bind(before)
                        .fetch_one(&mut *tx)
                        .await?;
                upto = upto.max(old.unwrap_or(0));
            }
            if let Some(keep) = keep {
                let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
                    .fetch_one(&mut *tx)
                    .await?;
                upto = upto.max(newest.unwrap_or(0).saturating_sub(keep.max(0)));
            }
            let removed = sqlx::query("DELETE FROM changes WHERE seq <= $1")
                .bind(upto)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("UPDATE changes_floor SET seq = $1 WHERE id = 1 AND seq < $1")
                .bind(upto)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(removed)
        })
    }

    /// A cheap round trip, for readiness and tests.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(&self.inner.pool, p => {
            sqlx::query("SELECT 1").execute(p).await.map(|_| ())
        })
    }
}

struct ChangeRow {
    op: &'static str,
    collection: String,
    id: Option<String>,
    version: Option<i64>,
    data: Option<Value>,
}

impl ChangeRow {
    fn collection(op: &'static str, collection: &str) -> Self {
        Self {
            op,
            collection: collection.to_owned(),
            id: None,
            version: None,
            data: None,
        }
    }

    fn doc(
        op: &'static str,
        collection: &str,
        id: &str,
        version: i64,
        data: Option<Value>,
    ) -> Self {
        Self {
            op,
            collection: collection.to_owned(),
            id: Some(id.to_owned()),
            version: Some(version),
            data,
        }
    }
}
