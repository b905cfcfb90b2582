//! Multipart uploads: the upload, its parts (counted in usage as they arrive), completion and
//! abort.

use sqlx::Row;
use uuid::Uuid;

use super::{
    DELETE_INTENT, INSERT_INTENT, NewObject, PartRow, PreconditionFn, Quota, Reserved,
    SELECT_PARTS, SELECT_UPLOAD, Store, StoreError, StoreResult, UploadRow, is_fk_violation,
    now_ms,
};

impl Store {
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
}
