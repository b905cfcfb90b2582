//! Documents: insert, read, conditional write (replace, upsert, merge patch), delete, query.

use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;

use super::{BeginWrite as _, ChangeRow, Store, StoreError, now_ms, on_pool, rfc3339, sql};
use super::{DOC_COLUMNS, Document, Precondition};
use crate::query::{Arg, Dialect, DocQuery};

impl Store {
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
}
