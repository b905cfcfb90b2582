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
pub use tansu_shared::db::{BeginWrite, Pool};
pub(crate) use tansu_shared::on_pool;

use crate::query::Dialect;

pub use migrate::{CATALOG_MIGRATIONS, TENANT_MIGRATIONS, migrate};

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

/// The workspace's one clock and RFC 3339 formatter.
pub use tansu_shared::clock::{now_ms, rfc3339};

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

mod changes;
mod collections;
mod documents;
mod indexes;
mod migrate;

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
        migrate(&self.inner.pool, &TENANT_MIGRATIONS).await
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
