//! The columns sealed under the master key, for the master-key re-wrap
//! ([`crate::master_keys`]): every such row stores the id of the key it was sealed under.
//!
//! Vault secret values and providers' client secrets are not here: they are sealed under the
//! tenant's data key (envelope encryption), so re-wrapping the data key covers them.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// A table with a column sealed under the master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedColumn {
    pub table: &'static str,
    /// The primary key column.
    key: &'static str,
    /// A column the AAD needs besides the key (the key again when none).
    extra: &'static str,
    sealed: &'static str,
}

pub const SIGNING_KEYS: SealedColumn = SealedColumn {
    table: "signing_keys",
    key: "kid",
    extra: "alg",
    sealed: "private_key_enc",
};
pub const TENANT_DATA_KEYS: SealedColumn = SealedColumn {
    table: "tenant_data_keys",
    key: "tenant_id",
    extra: "tenant_id",
    sealed: "wrapped_key",
};
pub const MFA_TOTP: SealedColumn = SealedColumn {
    table: "mfa_totp",
    key: "user_id",
    extra: "user_id",
    sealed: "secret_sealed",
};
pub const MAIL_OUTBOX: SealedColumn = SealedColumn {
    table: "mail_outbox",
    key: "id",
    extra: "id",
    sealed: "content_sealed",
};
/// Every column sealed under the master key.
pub const SEALED_COLUMNS: [SealedColumn; 4] =
    [SIGNING_KEYS, TENANT_DATA_KEYS, MFA_TOTP, MAIL_OUTBOX];

/// One sealed value and what identifies it.
#[derive(Clone)]
pub struct SealedRow {
    pub key: String,
    pub extra: String,
    pub sealed: Vec<u8>,
    pub master_key_id: String,
}

impl std::fmt::Debug for SealedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRow")
            .field("key", &self.key)
            .field("master_key_id", &self.master_key_id)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// How many rows of `col` are sealed under each master key id.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db sealed_counts", otel.kind = "client", db.system = self.dialect(), db.operation.name = "sealed_counts"))]
    pub async fn sealed_counts(&self, col: SealedColumn) -> StoreResult<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT master_key_id, COUNT(*) AS n FROM {} GROUP BY master_key_id ORDER BY master_key_id",
            col.table
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push((r.try_get("master_key_id")?, r.try_get("n")?));
            }
            Ok(out)
        })
    }

    /// Up to `limit` rows of `col` not sealed under `current`, with a key after `after`, in key
    /// order (keyset paging, so a row that cannot be re-wrapped is passed over, not retried).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db sealed_batch", otel.kind = "client", db.system = self.dialect(), db.operation.name = "sealed_batch"))]
    pub async fn sealed_batch(
        &self,
        col: SealedColumn,
        current: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<SealedRow>> {
        let sql = format!(
            "SELECT {key} AS k, {extra} AS x, {sealed} AS s, master_key_id FROM {table} \
             WHERE master_key_id <> $1 AND {key} > $2 ORDER BY {key} LIMIT $3",
            key = col.key,
            extra = col.extra,
            sealed = col.sealed,
            table = col.table
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(current)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(SealedRow {
                    key: r.try_get("k")?,
                    extra: r.try_get("x")?,
                    sealed: r.try_get("s")?,
                    master_key_id: r.try_get("master_key_id")?,
                });
            }
            Ok(out)
        })
    }

    /// Replaces sealed values in one transaction, each only if the row still holds what was
    /// read (a compare-and-set: a concurrent change or another re-wrapper wins). `resealed`
    /// pairs a row as read with its value sealed under `new_key_id`. Returns the rows changed.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db reseal", otel.kind = "client", db.system = self.dialect(), db.operation.name = "reseal"))]
    pub async fn reseal(
        &self,
        col: SealedColumn,
        resealed: &[(SealedRow, Vec<u8>)],
        new_key_id: &str,
    ) -> StoreResult<u64> {
        let sql = format!(
            "UPDATE {table} SET {sealed} = $1, master_key_id = $2 \
             WHERE {key} = $3 AND master_key_id = $4 AND {sealed} = $5",
            table = col.table,
            sealed = col.sealed,
            key = col.key
        );
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let mut changed = 0;
            for (row, value) in resealed {
                changed += sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(value)
                    .bind(new_key_id)
                    .bind(&row.key)
                    .bind(&row.master_key_id)
                    .bind(&row.sealed)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok(changed)
        })
    }
}
