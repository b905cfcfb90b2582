//! The change feed: reading after a sequence number, and compaction.

use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;

use super::{BeginWrite as _, Change, Store, StoreError, on_pool, rfc3339};

impl Store {
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
}
