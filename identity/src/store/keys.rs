//! Rows of the signing key ring (`signing_keys`).

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// One stored signing key. `private_key_enc` is `nonce || AES-256-GCM(PKCS#8 DER)`.
#[derive(Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_key_enc: Vec<u8>,
    pub master_key_id: String,
    pub created_at: i64,
    pub activate_at: i64,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str =
    "kid, alg, public_jwk, private_key_enc, master_key_id, created_at, activate_at";

macro_rules! key_row {
    ($r:expr) => {
        SigningKeyRow {
            kid: $r.try_get("kid")?,
            alg: $r.try_get("alg")?,
            public_jwk: $r.try_get("public_jwk")?,
            private_key_enc: $r.try_get("private_key_enc")?,
            master_key_id: $r.try_get("master_key_id")?,
            created_at: $r.try_get("created_at")?,
            activate_at: $r.try_get("activate_at")?,
        }
    };
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_signing_key", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_signing_key"))]
    pub async fn insert_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO signing_keys \
            (kid, alg, public_jwk, private_key_enc, master_key_id, created_at, activate_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.public_jwk)
            .bind(&key.private_key_enc)
            .bind(&key.master_key_id)
            .bind(key.created_at)
            .bind(key.activate_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every stored key, oldest activation first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db list_signing_keys", otel.kind = "client", db.system = self.dialect(), db.operation.name = "list_signing_keys"))]
    pub async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        let sql = format!("SELECT {COLUMNS} FROM signing_keys ORDER BY activate_at, kid");
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(key_row!(r));
            }
            Ok(out)
        })
    }

    /// Moves a not-yet-active key's activation (rotate-now brings a scheduled key forward).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db set_signing_key_activation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "set_signing_key_activation"))]
    pub async fn set_signing_key_activation(&self, kid: &str, activate_at: i64) -> StoreResult<()> {
        const SQL: &str = "UPDATE signing_keys SET activate_at = $2 WHERE kid = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(kid).bind(activate_at).execute(pool).await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_signing_key", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_signing_key"))]
    pub async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        const SQL: &str = "DELETE FROM signing_keys WHERE kid = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(kid).execute(pool).await?;
        });
        Ok(())
    }
}
