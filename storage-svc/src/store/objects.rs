//! Objects: read, list (with delimiter roll-up), commit a new version, delete.

use uuid::Uuid;

use super::{
    INSERT_INTENT, Listing, NewObject, OBJECT_COLUMNS, ObjectRow, PreconditionFn, Quota, Reserved,
    SELECT_OBJECT, Store, StoreError, StoreResult, now_ms,
};

impl Store {
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
