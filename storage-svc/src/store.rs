//! The metadata store: buckets, objects, usage and presigning keys, on SQLite or PostgreSQL.
//!
//! The same SQL serves both dialects (`$n` placeholders work in SQLite too); where they differ —
//! how a writing transaction serialises — the difference sits in [`Store::begin_write`]-style
//! branches next to each other. Every writing transaction that reads before it writes is
//! serialised per tenant: SQLite with `BEGIN IMMEDIATE` (one writer), PostgreSQL with a row lock
//! on the tenant's usage row. That is what makes the quota checks and the conditional writes
//! (`If-Match`, `If-None-Match` on PUT) atomic.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use crate::conditional::{Precondition, Validators};

/// The metadata database.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store has.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` (a block giving the value; `return Err(..)` rolls back) in a writing
/// transaction serialised per tenant `$t`, and commits: SQLite with `BEGIN IMMEDIATE`,
/// PostgreSQL with a row lock on the tenant's usage row (created first when missing).
macro_rules! write_tx {
    ($store:expr, $t:expr, |$tx:ident| $body:block) => {
        match $store {
            Store::Sqlite(pool) => {
                write_tx!(@run pool.begin_with("BEGIN IMMEDIATE"), $t, None, |$tx| $body)
            }
            Store::Postgres(pool) => write_tx!(
                @run pool.begin(),
                $t,
                Some("SELECT 1 FROM tenant_usage WHERE tenant_id = $1 FOR UPDATE"),
                |$tx| $body
            ),
        }
    };
    (@run $begin:expr, $t:expr, $lock:expr, |$tx:ident| $body:block) => {{
        let mut $tx = $begin.await?;
        sqlx::query(ENSURE_USAGE_ROW).bind($t).execute(&mut *$tx).await?;
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
        sqlx::query(DELETE_INTENT)
            .bind($t)
            .bind($new)
            .execute(&mut *$tx)
            .await?;
        if let Some(old) = $old {
            sqlx::query(INSERT_INTENT)
                .bind($t)
                .bind(old)
                .bind(now_ms())
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
        let (new, content_type, metadata): (&NewObject, &str, &str) = $version;
        let reserved: Reserved = $reserved;
        let d_objects: i64 = if $old.is_some() { 0 } else { 1 };
        let n = sqlx::query(CHARGE_OBJECT)
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
            return Err(StoreError::QuotaExceeded);
        }
        sqlx::query(UPSERT_OBJECT)
            .bind($t)
            .bind($bucket)
            .bind($key)
            .bind(new.blob_id.to_string())
            .bind(new.size)
            .bind(&new.etag)
            .bind(content_type)
            .bind(metadata)
            .bind(now_ms())
            .execute(&mut *$tx)
            .await?;
    };
}

/// In transaction `$tx` of tenant `$t`: the object `$bucket/$key` as it is (`None`: absent),
/// provided the request's `$precondition` holds for it.
macro_rules! current_object {
    ($tx:ident, $t:expr, $bucket:expr, $key:expr, $precondition:expr) => {{
        let current: Option<ObjectRow> = sqlx::query_as::<_, ObjectRow>(SELECT_OBJECT)
            .bind($t)
            .bind($bucket)
            .bind($key)
            .fetch_optional(&mut *$tx)
            .await?;
        check_precondition($precondition, current.as_ref())?;
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

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

impl Store {
    /// Connects and migrates. `sqlite://…` or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(Store::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed object row survives a power cut, like its fsynced blob.
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Ok(Store::Sqlite(pool))
        } else {
            anyhow::bail!("database_url must start with sqlite: or postgres://")
        }
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

    // ---- buckets ----

    pub async fn create_bucket(&self, tenant: Uuid, name: &str, settings: &str) -> StoreResult<()> {
        let res = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO buckets (tenant_id, name, settings, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant.to_string())
            .bind(name)
            .bind(settings)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        });
        match res {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
            other => Ok(other?),
        }
    }

    pub async fn list_buckets(&self, tenant: Uuid) -> StoreResult<Vec<BucketRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, BucketRow>(
                "SELECT name, settings, created_at FROM buckets WHERE tenant_id = $1 ORDER BY name",
            )
            .bind(tenant.to_string())
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn get_bucket(&self, tenant: Uuid, name: &str) -> StoreResult<BucketRow> {
        on_pool!(self, |pool| {
            sqlx::query_as::<_, BucketRow>(
                "SELECT name, settings, created_at FROM buckets WHERE tenant_id = $1 AND name = $2",
            )
            .bind(tenant.to_string())
            .bind(name)
            .fetch_optional(pool)
            .await?
        })
        .ok_or(StoreError::NoSuchBucket)
    }

    pub async fn update_bucket(&self, tenant: Uuid, name: &str, settings: &str) -> StoreResult<()> {
        let n = on_pool!(self, |pool| {
            sqlx::query("UPDATE buckets SET settings = $3 WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.to_string())
                .bind(name)
                .bind(settings)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            Err(StoreError::NoSuchBucket)
        } else {
            Ok(())
        }
    }

    /// Deletes the bucket if it holds no object. A concurrent upload either commits first (and
    /// the delete fails as not empty, by the check or by the foreign key) or finds no bucket.
    pub async fn delete_bucket(&self, tenant: Uuid, name: &str) -> StoreResult<()> {
        let res = on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM buckets WHERE tenant_id = $1 AND name = $2 AND NOT EXISTS \
                 (SELECT 1 FROM objects WHERE tenant_id = $1 AND bucket = $2)",
            )
            .bind(tenant.to_string())
            .bind(name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        match res {
            Ok(1) => Ok(()),
            Ok(_) => {
                // Either absent or not empty: tell which.
                self.get_bucket(tenant, name).await?;
                Err(StoreError::NotEmpty)
            }
            Err(e) if is_fk_violation(&e) => Err(StoreError::NotEmpty),
            Err(e) => Err(e.into()),
        }
    }

    // ---- objects ----

    pub async fn get_object(
        &self,
        tenant: Uuid,
        bucket: &str,
        key: &str,
    ) -> StoreResult<ObjectRow> {
        on_pool!(self, |pool| {
            sqlx::query_as::<_, ObjectRow>(SELECT_OBJECT)
                .bind(tenant.to_string())
                .bind(bucket)
                .bind(key)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    /// One page of a listing: keys after `after` (exclusive) starting with `prefix`, with keys
    /// that contain `delimiter` after the prefix rolled up into common prefixes.
    pub async fn list_objects(
        &self,
        tenant: Uuid,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> StoreResult<Listing> {
        const BATCH: i64 = 1000;
        let mut out = Listing::default();
        // Start at the prefix itself (inclusive) or after the token, whichever is later.
        let mut cursor: Option<String> = after.map(str::to_owned);
        let mut inclusive_start = match &cursor {
            Some(c) if c.as_str() >= prefix => None,
            _ => {
                cursor = None;
                Some(prefix.to_owned())
            }
        };
        let prefix_chars = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        // Every key with the prefix sorts below it (keys never contain U+10FFFF): the index
        // range ends there instead of running to the end of the bucket.
        let upper = rollup_end(prefix);
        loop {
            let (op, start) = match (&inclusive_start, &cursor) {
                (Some(s), _) => (">=", s.clone()),
                (None, Some(c)) => (">", c.clone()),
                (None, None) => (">=", String::new()),
            };
            let sql = format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND bucket = $2 \
                 AND object_key {op} $3 AND object_key < $7 AND substr(object_key, 1, $4) = $5 \
                 ORDER BY object_key LIMIT $6"
            );
            let rows: Vec<ObjectRow> = on_pool!(self, |pool| {
                sqlx::query_as::<_, ObjectRow>(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(tenant.to_string())
                    .bind(bucket)
                    .bind(&start)
                    .bind(prefix_chars)
                    .bind(prefix)
                    .bind(BATCH)
                    .bind(&upper)
                    .fetch_all(pool)
                    .await?
            });
            let exhausted = (rows.len() as i64) < BATCH;
            inclusive_start = None;
            let mut skip_to: Option<String> = None;
            for row in rows {
                if let Some(s) = &skip_to
                    && row.object_key.starts_with(s.as_str())
                {
                    continue;
                }
                skip_to = None;
                if out.objects.len() + out.common_prefixes.len() >= max {
                    out.next_after = Some(last_position(&out));
                    return Ok(out);
                }
                let rest = &row.object_key[prefix.len()..];
                match delimiter.and_then(|d| rest.find(d).map(|i| i + d.len())) {
                    Some(end) => {
                        let cp = row.object_key[..prefix.len() + end].to_owned();
                        skip_to = Some(cp.clone());
                        out.common_prefixes.push(cp);
                    }
                    None => out.objects.push(row),
                }
            }
            if exhausted {
                return Ok(out);
            }
            cursor = Some(match skip_to {
                Some(cp) => rollup_end(&cp),
                None => last_position(&out),
            });
        }
    }

    /// Makes a new object version visible, atomically with its quota accounting and the
    /// request's preconditions. Returns the blob the object pointed at before, to delete.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_object(
        &self,
        tenant: Uuid,
        bucket: &str,
        key: &str,
        new: &NewObject,
        reserved: Reserved,
        quota: Quota,
        precondition: &PreconditionFn<'_>,
    ) -> StoreResult<Option<String>> {
        let t = tenant.to_string();
        write_tx!(self, &t, |tx| {
            let bucket_exists =
                sqlx::query("SELECT 1 FROM buckets WHERE tenant_id = $1 AND name = $2")
                    .bind(&t)
                    .bind(bucket)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
            if !bucket_exists {
                return Err(StoreError::NoSuchBucket);
            }
            let old = current_object!(tx, &t, bucket, key, precondition);
            let d_bytes = new.size - old.as_ref().map_or(0, |o| o.size);
            let version = (new, new.content_type.as_str(), new.metadata.as_str());
            put_version!(tx, &t, bucket, key, version, &old, d_bytes, reserved, quota);
            replace_blob!(
                tx,
                &t,
                new.blob_id.to_string(),
                old.as_ref().map(|o| &o.blob_id)
            );
            old.map(|o| o.blob_id)
        })
    }

    /// Deletes an object if the preconditions hold; returns its blob.
    pub async fn delete_object(
        &self,
        tenant: Uuid,
        bucket: &str,
        key: &str,
        precondition: &PreconditionFn<'_>,
    ) -> StoreResult<String> {
        let t = tenant.to_string();
        write_tx!(self, &t, |tx| {
            let old = current_object!(tx, &t, bucket, key, precondition);
            let Some(old) = old else {
                return Err(StoreError::NotFound);
            };
            sqlx::query(
                "DELETE FROM objects WHERE tenant_id = $1 AND bucket = $2 AND object_key = $3",
            )
            .bind(&t)
            .bind(bucket)
            .bind(key)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE tenant_usage SET bytes = bytes - $2, objects = objects - 1 WHERE tenant_id = $1",
            )
            .bind(&t)
            .bind(old.size)
            .execute(&mut *tx)
            .await?;
            sqlx::query(INSERT_INTENT)
                .bind(&t)
                .bind(&old.blob_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            old.blob_id
        })
    }

    // ---- usage and quotas ----

    /// Sets aside room for an upload, or fails when the quota (counting every other upload in
    /// flight) has no room left. One conditional UPDATE: atomic in both databases.
    pub async fn reserve(&self, tenant: Uuid, want: Reserved, quota: Quota) -> StoreResult<()> {
        let t = tenant.to_string();
        let n = on_pool!(self, |pool| {
            sqlx::query(ENSURE_USAGE_ROW).bind(&t).execute(pool).await?;
            sqlx::query(
                "UPDATE tenant_usage SET reserved_bytes = reserved_bytes + $2, \
                 reserved_objects = reserved_objects + $3 WHERE tenant_id = $1 \
                 AND bytes + reserved_bytes + $2 <= COALESCE(quota_bytes, $4) \
                 AND objects + reserved_objects + $3 <= COALESCE(quota_objects, $5)",
            )
            .bind(&t)
            .bind(want.bytes)
            .bind(want.objects)
            .bind(quota.bytes)
            .bind(quota.objects)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            Err(StoreError::QuotaExceeded)
        } else {
            Ok(())
        }
    }

    pub async fn release(&self, tenant: Uuid, r: Reserved) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tenant_usage SET reserved_bytes = reserved_bytes - $2, \
                 reserved_objects = reserved_objects - $3 WHERE tenant_id = $1",
            )
            .bind(tenant.to_string())
            .bind(r.bytes)
            .bind(r.objects)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn usage(&self, tenant: Uuid) -> StoreResult<Usage> {
        let row = on_pool!(self, |pool| {
            sqlx::query_as::<_, Usage>(
                "SELECT bytes, objects, reserved_bytes, reserved_objects, quota_bytes, \
                 quota_objects FROM tenant_usage WHERE tenant_id = $1",
            )
            .bind(tenant.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.unwrap_or_default())
    }

    /// Sets (or, with both limits `None`, clears) a tenant's quota override. Takes effect for
    /// the next reservation or commit: uploads already reserved may still commit only if they
    /// fit, because the commit re-checks against the limit in force then.
    pub async fn set_quota(&self, tenant: Uuid, q: QuotaOverride) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO tenant_usage (tenant_id, quota_bytes, quota_objects) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET quota_bytes = excluded.quota_bytes, \
                 quota_objects = excluded.quota_objects",
            )
            .bind(tenant.to_string())
            .bind(q.bytes)
            .bind(q.objects)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    // ---- blob intents ----

    /// Records that blob `blob` of `tenant` is about to exist unreferenced.
    pub async fn add_intent(&self, tenant: Uuid, blob: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(INSERT_INTENT)
                .bind(tenant.to_string())
                .bind(blob)
                .bind(now_ms())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn remove_intent(&self, tenant: &str, blob: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(DELETE_INTENT)
                .bind(tenant)
                .bind(blob)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Blobs recorded as possibly unreferenced that no object points at: garbage to delete.
    /// Intents for blobs an object does point at are dropped here.
    pub async fn orphaned_blobs(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM blob_intents WHERE EXISTS (SELECT 1 FROM objects o \
                 WHERE o.tenant_id = blob_intents.tenant_id AND o.blob_id = blob_intents.blob_id) \
                 OR EXISTS (SELECT 1 FROM multipart_parts p \
                 WHERE p.tenant_id = blob_intents.tenant_id AND p.blob_id = blob_intents.blob_id)",
            )
            .execute(pool)
            .await?;
            sqlx::query("SELECT tenant_id, blob_id FROM blob_intents")
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect()
        }))
    }

    // ---- multipart uploads ----

    pub async fn create_upload(
        &self,
        tenant: Uuid,
        upload: &UploadRow,
        upload_id: Uuid,
    ) -> StoreResult<()> {
        let res = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO multipart_uploads (tenant_id, upload_id, bucket, object_key, \
                 content_type, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant.to_string())
            .bind(upload_id.to_string())
            .bind(&upload.bucket)
            .bind(&upload.object_key)
            .bind(&upload.content_type)
            .bind(&upload.metadata)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|_| ())
        });
        match res {
            Err(e) if is_fk_violation(&e) => Err(StoreError::NoSuchBucket),
            other => Ok(other?),
        }
    }

    pub async fn get_upload(&self, tenant: Uuid, upload_id: Uuid) -> StoreResult<UploadRow> {
        on_pool!(self, |pool| {
            sqlx::query_as::<_, UploadRow>(SELECT_UPLOAD)
                .bind(tenant.to_string())
                .bind(upload_id.to_string())
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)
    }

    pub async fn list_parts(&self, tenant: Uuid, upload_id: Uuid) -> StoreResult<Vec<PartRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, PartRow>(SELECT_PARTS)
                .bind(tenant.to_string())
                .bind(upload_id.to_string())
                .fetch_all(pool)
                .await?
        }))
    }

    /// Multipart uploads started before `cutoff_ms` (abandoned: to abort).
    pub async fn uploads_started_before(&self, cutoff_ms: i64) -> StoreResult<Vec<(Uuid, Uuid)>> {
        let rows: Vec<(String, String)> = on_pool!(self, |pool| {
            sqlx::query("SELECT tenant_id, upload_id FROM multipart_uploads WHERE created_at < $1")
                .bind(cutoff_ms)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect()
        });
        Ok(rows
            .into_iter()
            .filter_map(|(t, u)| Some((Uuid::parse_str(&t).ok()?, Uuid::parse_str(&u).ok()?)))
            .collect())
    }

    /// Stores a part (replacing one of the same number), counting its bytes in the tenant's
    /// usage under the quota. Returns the replaced part's blob.
    pub async fn commit_part(
        &self,
        tenant: Uuid,
        upload_id: Uuid,
        part: &PartRow,
        reserved: Reserved,
        quota: Quota,
    ) -> StoreResult<Option<String>> {
        let t = tenant.to_string();
        let u = upload_id.to_string();
        write_tx!(self, &t, |tx| {
            let exists = sqlx::query(
                "SELECT 1 FROM multipart_uploads WHERE tenant_id = $1 AND upload_id = $2",
            )
            .bind(&t)
            .bind(&u)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !exists {
                return Err(StoreError::NotFound);
            }
            let old: Option<PartRow> = sqlx::query_as::<_, PartRow>(
                "SELECT part_number, blob_id, size, etag FROM multipart_parts \
                 WHERE tenant_id = $1 AND upload_id = $2 AND part_number = $3",
            )
            .bind(&t)
            .bind(&u)
            .bind(part.part_number)
            .fetch_optional(&mut *tx)
            .await?;
            let d_bytes = part.size - old.as_ref().map_or(0, |o| o.size);
            let n = sqlx::query(
                "UPDATE tenant_usage SET bytes = bytes + $2, \
                 reserved_bytes = reserved_bytes - $3, reserved_objects = reserved_objects - $4 \
                 WHERE tenant_id = $1 AND (bytes + $2 + reserved_bytes - $3 <= COALESCE(quota_bytes, $5) \
                 OR $2 <= 0)",
            )
            .bind(&t)
            .bind(d_bytes)
            .bind(reserved.bytes)
            .bind(reserved.objects)
            .bind(quota.bytes)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::QuotaExceeded);
            }
            sqlx::query(
                "INSERT INTO multipart_parts (tenant_id, upload_id, part_number, blob_id, size, etag) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, upload_id, part_number) \
                 DO UPDATE SET blob_id = excluded.blob_id, size = excluded.size, etag = excluded.etag",
            )
            .bind(&t)
            .bind(&u)
            .bind(part.part_number)
            .bind(&part.blob_id)
            .bind(part.size)
            .bind(&part.etag)
            .execute(&mut *tx)
            .await?;
            replace_blob!(tx, &t, &part.blob_id, old.as_ref().map(|o| &o.blob_id));
            old.map(|o| o.blob_id)
        })
    }

    /// Ends a multipart upload. With `complete`, the concatenated blob `new` becomes the object
    /// (the parts' bytes already counted: the usage changes by what the object replaces),
    /// provided the parts are still exactly `expected` and the preconditions hold. Without, the
    /// upload is aborted. Returns the blobs that are now garbage (parts, replaced object).
    pub async fn finish_upload(
        &self,
        tenant: Uuid,
        upload_id: Uuid,
        complete: Option<(&[PartRow], &NewObject)>,
        quota: Quota,
        precondition: &PreconditionFn<'_>,
    ) -> StoreResult<(Vec<String>, bool)> {
        let t = tenant.to_string();
        let u = upload_id.to_string();
        write_tx!(self, &t, |tx| {
            let upload: UploadRow = sqlx::query_as::<_, UploadRow>(SELECT_UPLOAD)
                .bind(&t)
                .bind(&u)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let parts: Vec<PartRow> = sqlx::query_as::<_, PartRow>(SELECT_PARTS)
                .bind(&t)
                .bind(&u)
                .fetch_all(&mut *tx)
                .await?;
            let parts_bytes: i64 = parts.iter().map(|p| p.size).sum();
            let mut garbage: Vec<String> = parts.iter().map(|p| p.blob_id.clone()).collect();
            let mut created = false;
            if let Some((expected, new)) = complete {
                // Every listed part must still be the one the concatenation read.
                let unchanged = expected.iter().all(|e| {
                    parts
                        .iter()
                        .any(|p| p.part_number == e.part_number && p.blob_id == e.blob_id)
                });
                if !unchanged {
                    return Err(StoreError::PreconditionFailed);
                }
                let old = current_object!(tx, &t, &upload.bucket, &upload.object_key, precondition);
                let d_bytes = new.size - parts_bytes - old.as_ref().map_or(0, |o| o.size);
                let version = (new, upload.content_type.as_str(), upload.metadata.as_str());
                // Nothing was reserved for the completion: its parts are counted already.
                let (bucket, key) = (&upload.bucket, &upload.object_key);
                put_version!(
                    tx,
                    &t,
                    bucket,
                    key,
                    version,
                    &old,
                    d_bytes,
                    Reserved::default(),
                    quota
                );
                sqlx::query(DELETE_INTENT)
                    .bind(&t)
                    .bind(new.blob_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                created = old.is_none();
                garbage.extend(old.map(|o| o.blob_id));
            } else {
                sqlx::query("UPDATE tenant_usage SET bytes = bytes - $2 WHERE tenant_id = $1")
                    .bind(&t)
                    .bind(parts_bytes)
                    .execute(&mut *tx)
                    .await?;
            }
            for sql in [
                "DELETE FROM multipart_parts WHERE tenant_id = $1 AND upload_id = $2",
                "DELETE FROM multipart_uploads WHERE tenant_id = $1 AND upload_id = $2",
            ] {
                sqlx::query(sql).bind(&t).bind(&u).execute(&mut *tx).await?;
            }
            for blob in &garbage {
                sqlx::query(INSERT_INTENT)
                    .bind(&t)
                    .bind(blob)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await?;
            }
            (garbage, created)
        })
    }

    // ---- presigning keys ----

    pub async fn presign_key(&self, tenant: Uuid) -> StoreResult<Option<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query("SELECT sealed FROM presign_keys WHERE tenant_id = $1")
                .bind(tenant.to_string())
                .fetch_optional(pool)
                .await?
                .map(|r| r.get::<String, _>(0))
        }))
    }

    /// Stores a sealed key unless the tenant already has one (first writer wins).
    pub async fn insert_presign_key(&self, tenant: Uuid, sealed: &str) -> StoreResult<()> {
        on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO presign_keys (tenant_id, sealed, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant.to_string())
            .bind(sealed)
            .bind(now_ms())
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}

/// The position after the last entry of a page: a key, or the end of a rolled-up prefix.
fn last_position(out: &Listing) -> String {
    let last_key = out.objects.last().map(|o| o.object_key.as_str());
    let last_cp = out.common_prefixes.last().map(String::as_str);
    match (last_key, last_cp) {
        (Some(k), Some(cp)) if k > cp => k.to_owned(),
        (_, Some(cp)) => rollup_end(cp),
        (Some(k), None) => k.to_owned(),
        (None, None) => String::new(),
    }
}

/// A position after every key that starts with `cp` (keys sort bytewise; U+10FFFF is the
/// greatest scalar value).
fn rollup_end(cp: &str) -> String {
    format!("{cp}\u{10FFFF}")
}
