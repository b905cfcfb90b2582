//! The metadata store: buckets, objects, usage and presigning keys, on SQLite or PostgreSQL.
//!
//! The same SQL serves both dialects (`$n` placeholders work in SQLite too); where they differ —
//! how a writing transaction serialises — the difference sits in [`Store::begin_write`]-style
//! branches next to each other. Every writing transaction that reads before it writes is
//! serialised per tenant: SQLite with `BEGIN IMMEDIATE` (one writer), PostgreSQL with a row lock
//! on the tenant's usage row. That is what makes the quota checks and the conditional writes
//! (`If-Match`, `If-None-Match` on PUT) atomic.

use std::collections::BTreeMap;

use sqlx::FromRow;
use tansu_shared::db::{
    Durability, Migrations, Pool, PoolSettings, PostgresSettings, SqliteSettings,
};
use uuid::Uuid;

use crate::conditional::{Precondition, Validators};

/// The metadata database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// The schema, both dialects (`migrations/{sqlite,postgres}`).
static MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/sqlite"),
    postgres: sqlx::migrate!("migrations/postgres"),
};

/// Runs the same code against whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        tansu_shared::on_pool!(&$store.pool, $pool => $body)
    };
}

/// Runs `$body` (a block giving the value; `return Err(..)` rolls back) in a writing
/// transaction serialised per tenant `$t`, and commits: SQLite with `BEGIN IMMEDIATE`,
/// PostgreSQL with a row lock on the tenant's usage row (created first when missing).
macro_rules! write_tx {
    ($store:expr, $t:expr, |$tx:ident| $body:block) => {
        match &$store.pool {
            tansu_shared::db::Pool::Sqlite(pool) => write_tx!(@run pool, $t, None, |$tx| $body),
            tansu_shared::db::Pool::Postgres(pool) => write_tx!(
                @run pool,
                $t,
                Some("SELECT 1 FROM tenant_usage WHERE tenant_id = $1 FOR UPDATE"),
                |$tx| $body
            ),
        }
    };
    (@run $pool:expr, $t:expr, $lock:expr, |$tx:ident| $body:block) => {{
        let mut $tx = tansu_shared::db::BeginWrite::begin_write($pool).await?;
        sqlx::query($crate::store::ENSURE_USAGE_ROW).bind($t).execute(&mut *$tx).await?;
        let lock: Option<&'static str> = $lock;
        if let Some(lock) = lock {
            sqlx::query(lock).bind($t).execute(&mut *$tx).await?;
        }
        let value = $body;
        $tx.commit().await?;
        Ok(value)
    }};
}

/// In transaction `$tx` of tenant `$t`: blob `$new` is referenced now (its intent goes) and
/// the blob it replaces, `$old` (an `Option`), is garbage to delete (it gets an intent).
macro_rules! replace_blob {
    ($tx:ident, $t:expr, $new:expr, $old:expr) => {
        sqlx::query($crate::store::DELETE_INTENT)
            .bind($t)
            .bind($new)
            .execute(&mut *$tx)
            .await?;
        if let Some(old) = $old {
            sqlx::query($crate::store::INSERT_INTENT)
                .bind($t)
                .bind(old)
                .bind($crate::store::now_ms())
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// In transaction `$tx` of tenant `$t`: makes `$version` (a [`NewObject`] with its content
/// type and metadata) the object `$bucket/$key` in place of `$old`. The usage grows by
/// `$d_bytes` (and one object where there was none) and `$reserved` is released, provided
/// the result fits `$quota` or shrinks.
macro_rules! put_version {
    ($tx:ident, $t:expr, $bucket:expr, $key:expr, $version:expr, $old:expr, $d_bytes:expr,
     $reserved:expr, $quota:expr) => {
        let (new, content_type, metadata): (&$crate::store::NewObject, &str, &str) = $version;
        let reserved: $crate::store::Reserved = $reserved;
        let d_objects: i64 = if $old.is_some() { 0 } else { 1 };
        let n = sqlx::query($crate::store::CHARGE_OBJECT)
            .bind($t)
            .bind($d_bytes)
            .bind(d_objects)
            .bind(reserved.bytes)
            .bind(reserved.objects)
            .bind($quota.bytes)
            .bind($quota.objects)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err($crate::store::StoreError::QuotaExceeded);
        }
        sqlx::query($crate::store::UPSERT_OBJECT)
            .bind($t)
            .bind($bucket)
            .bind($key)
            .bind(new.blob_id.to_string())
            .bind(new.size)
            .bind(&new.etag)
            .bind(content_type)
            .bind(metadata)
            .bind($crate::store::now_ms())
            .execute(&mut *$tx)
            .await?;
    };
}

/// In transaction `$tx` of tenant `$t`: the object `$bucket/$key` as it is (`None`: absent),
/// provided the request's `$precondition` holds for it.
macro_rules! current_object {
    ($tx:ident, $t:expr, $bucket:expr, $key:expr, $precondition:expr) => {{
        let current: Option<$crate::store::ObjectRow> =
            sqlx::query_as::<_, $crate::store::ObjectRow>($crate::store::SELECT_OBJECT)
                .bind($t)
                .bind($bucket)
                .bind($key)
                .fetch_optional(&mut *$tx)
                .await?;
        $crate::store::check_precondition($precondition, current.as_ref())?;
        current
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("bucket not found")]
    NoSuchBucket,
    #[error("already exists")]
    AlreadyExists,
    #[error("bucket not empty")]
    NotEmpty,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("quota exceeded")]
    QuotaExceeded,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Milliseconds since the Unix epoch, now (the workspace's one clock).
pub use tansu_shared::clock::now_ms;

#[derive(Debug, Clone, FromRow)]
pub struct BucketRow {
    pub name: String,
    pub settings: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ObjectRow {
    pub object_key: String,
    pub blob_id: String,
    pub size: i64,
    pub etag: String,
    pub content_type: String,
    pub metadata: String,
    pub last_modified: i64,
}

impl ObjectRow {
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified_ms: self.last_modified,
        }
    }

    pub fn user_metadata(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.metadata).unwrap_or_default()
    }
}

/// A multipart upload in progress: where it goes and what the object will carry.
#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub bucket: String,
    pub object_key: String,
    pub content_type: String,
    pub metadata: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct PartRow {
    pub part_number: i64,
    pub blob_id: String,
    pub size: i64,
    pub etag: String,
}

/// A new version of an object, ready to be made visible.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub blob_id: Uuid,
    pub size: i64,
    pub etag: String,
    pub content_type: String,
    pub metadata: String,
}

/// Bytes and objects set aside for an upload in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved {
    pub bytes: i64,
    pub objects: i64,
}

#[derive(Debug, Clone, Copy, Default, FromRow, serde::Serialize)]
pub struct Usage {
    pub bytes: i64,
    pub objects: i64,
    pub reserved_bytes: i64,
    pub reserved_objects: i64,
    /// The tenant's own limits, where an administrator set them (else the default applies).
    pub quota_bytes: Option<i64>,
    pub quota_objects: Option<i64>,
}

impl Usage {
    /// The limits in force: the tenant's overrides, else `default`.
    pub fn quota(&self, default: Quota) -> Quota {
        Quota {
            bytes: self.quota_bytes.unwrap_or(default.bytes),
            objects: self.quota_objects.unwrap_or(default.objects),
        }
    }
}

/// A tenant's limits. The store's quota checks take the configured default and apply a
/// tenant's override (`tenant_usage.quota_*`) inside the same statement.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub bytes: i64,
    pub objects: i64,
}

/// An administrator's per-tenant limits; `None` falls back to the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuotaOverride {
    pub bytes: Option<i64>,
    pub objects: Option<i64>,
}

/// What a listing page returned.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectRow>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts (exclusive), when there is one.
    pub next_after: Option<String>,
}

macro_rules! object_columns {
    () => {
        "object_key, blob_id, size, etag, content_type, metadata, last_modified"
    };
}

const OBJECT_COLUMNS: &str = object_columns!();

const SELECT_OBJECT: &str = concat!(
    "SELECT ",
    object_columns!(),
    " FROM objects WHERE tenant_id = $1 AND bucket = $2 AND object_key = $3"
);

const UPSERT_OBJECT: &str = "INSERT INTO objects (tenant_id, bucket, object_key, blob_id, size, \
     etag, content_type, metadata, last_modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (tenant_id, bucket, object_key) DO UPDATE SET blob_id = excluded.blob_id, \
     size = excluded.size, etag = excluded.etag, content_type = excluded.content_type, \
     metadata = excluded.metadata, last_modified = excluded.last_modified";

const SELECT_UPLOAD: &str = "SELECT bucket, object_key, content_type, metadata \
     FROM multipart_uploads WHERE tenant_id = $1 AND upload_id = $2";

const SELECT_PARTS: &str = "SELECT part_number, blob_id, size, etag FROM multipart_parts \
     WHERE tenant_id = $1 AND upload_id = $2 ORDER BY part_number";

const ENSURE_USAGE_ROW: &str =
    "INSERT INTO tenant_usage (tenant_id) VALUES ($1) ON CONFLICT (tenant_id) DO NOTHING";

/// Counts an object's change in size (`$2`) and number (`$3`) and releases its reservation
/// (`$4` bytes, `$5` objects), if the result fits the quota (`$6` bytes, `$7` objects, unless
/// the tenant's own limits apply) or shrinks.
const CHARGE_OBJECT: &str = "UPDATE tenant_usage SET bytes = bytes + $2, objects = objects + $3, \
     reserved_bytes = reserved_bytes - $4, reserved_objects = reserved_objects - $5 \
     WHERE tenant_id = $1 AND ((bytes + $2 + reserved_bytes - $4 <= COALESCE(quota_bytes, $6) \
     AND objects + $3 + reserved_objects - $5 <= COALESCE(quota_objects, $7)) \
     OR ($2 <= 0 AND $3 <= 0))";

const DELETE_INTENT: &str = "DELETE FROM blob_intents WHERE tenant_id = $1 AND blob_id = $2";

const INSERT_INTENT: &str = "INSERT INTO blob_intents (tenant_id, blob_id, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (tenant_id, blob_id) DO NOTHING";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// A request's preconditions, judged against the current object's validators (`None`: absent).
pub type PreconditionFn<'a> = dyn Fn(Option<&Validators>) -> Precondition + Send + Sync + 'a;

/// Fails unless the preconditions hold for `current`.
fn check_precondition(
    precondition: &PreconditionFn<'_>,
    current: Option<&ObjectRow>,
) -> StoreResult<()> {
    if precondition(current.map(ObjectRow::validators).as_ref()) == Precondition::Proceed {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed)
    }
}

mod buckets;
mod intents;
mod multipart;
mod objects;
mod presign_keys;
mod usage;

impl Store {
    /// Connects and migrates. `sqlite://…` or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let settings = PoolSettings {
            sqlite: SqliteSettings {
                // FULL: a committed object row survives a power cut, like its fsynced blob.
                durability: Durability::Full,
                busy_timeout: std::time::Duration::from_secs(30),
                acquire_timeout: std::time::Duration::from_secs(30),
                ..SqliteSettings::default()
            },
            postgres: PostgresSettings::default(),
        };
        let pool = tansu_shared::db::connect_and_migrate(url, &settings, &MIGRATIONS).await?;
        Ok(Store { pool })
    }

    /// The pool (tests and tools).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Drops every reservation: after a restart, no upload is in flight (single writer per
    /// data dir; a multi-replica deployment would scope reservations by replica instead).
    pub async fn clear_reservations(&self) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query("UPDATE tenant_usage SET reserved_bytes = 0, reserved_objects = 0")
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
