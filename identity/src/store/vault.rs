//! The secrets vault's rows: wrapped tenant data keys and sealed secret versions.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

#[derive(Debug, Clone)]
pub struct SecretRow {
    pub name: String,
    pub version: i64,
    pub ciphertext: Vec<u8>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// (wrapped key, master key id) of a tenant's data key.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db data_key", otel.kind = "client", db.system = self.dialect(), db.operation.name = "data_key"))]
    pub async fn data_key(&self, tenant_id: &str) -> StoreResult<Option<(Vec<u8>, String)>> {
        const SQL: &str =
            "SELECT wrapped_key, master_key_id FROM tenant_data_keys WHERE tenant_id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some((r.try_get("wrapped_key")?, r.try_get("master_key_id")?)),
                None => None,
            })
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_data_key", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_data_key"))]
    pub async fn insert_data_key(
        &self,
        tenant_id: &str,
        wrapped: &[u8],
        master_key_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO tenant_data_keys (tenant_id, wrapped_key, master_key_id, created_at) \
            VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(tenant_id).bind(wrapped).bind(master_key_id).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db latest_secret_version", otel.kind = "client", db.system = self.dialect(), db.operation.name = "latest_secret_version"))]
    pub async fn latest_secret_version(&self, tenant_id: &str, name: &str) -> StoreResult<i64> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) AS v FROM tenant_secrets \
            WHERE tenant_id = $1 AND name = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).bind(name).fetch_one(pool).await?;
            Ok(row.try_get::<i64, _>("v")?)
        })
    }

    /// A unique violation means a concurrent writer took `version`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_secret", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_secret"))]
    pub async fn insert_secret(
        &self,
        tenant_id: &str,
        name: &str,
        version: i64,
        ciphertext: &[u8],
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO tenant_secrets (tenant_id, name, version, ciphertext, created_at) \
            VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(tenant_id).bind(name).bind(version).bind(ciphertext).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// One version, or the latest when `version` is `None`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db secret", otel.kind = "client", db.system = self.dialect(), db.operation.name = "secret"))]
    pub async fn secret(
        &self,
        tenant_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<SecretRow>> {
        const SQL: &str = "SELECT name, version, ciphertext, created_at, revoked_at FROM tenant_secrets \
            WHERE tenant_id = $1 AND name = $2 AND ($3 = 0 OR version = $3) \
            ORDER BY version DESC LIMIT 1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).bind(name).bind(version.unwrap_or(0)).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(SecretRow {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    ciphertext: r.try_get("ciphertext")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                }),
                None => None,
            })
        })
    }

    /// Every version of every secret of a tenant, without ciphertexts.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db list_secrets", otel.kind = "client", db.system = self.dialect(), db.operation.name = "list_secrets"))]
    pub async fn list_secrets(&self, tenant_id: &str) -> StoreResult<Vec<SecretRow>> {
        const SQL: &str = "SELECT name, version, created_at, revoked_at FROM tenant_secrets \
            WHERE tenant_id = $1 ORDER BY name, version";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(tenant_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(SecretRow {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    ciphertext: Vec::new(),
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                });
            }
            Ok(out)
        })
    }

    /// Revokes every version of a secret; the number of versions revoked now.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db revoke_secret", otel.kind = "client", db.system = self.dialect(), db.operation.name = "revoke_secret"))]
    pub async fn revoke_secret(&self, tenant_id: &str, name: &str, now: i64) -> StoreResult<u64> {
        const SQL: &str = "UPDATE tenant_secrets SET revoked_at = $3 \
            WHERE tenant_id = $1 AND name = $2 AND revoked_at IS NULL";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(tenant_id).bind(name).bind(now).execute(pool).await?.rows_affected()))
    }
}
