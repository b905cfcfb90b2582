//! Revoked access tokens (`revoked_tokens`), by `jti`.

use super::{Store, StoreResult, on_pool};

impl Store {
    /// Records a revoked token; revoking twice is not an error.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db revoke_token", otel.kind = "client", db.system = self.dialect(), db.operation.name = "revoke_token"))]
    pub async fn revoke_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(jti).bind(client_id).bind(expires_at).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db is_token_revoked", otel.kind = "client", db.system = self.dialect(), db.operation.name = "is_token_revoked"))]
    pub async fn is_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        const SQL: &str = "SELECT 1 FROM revoked_tokens WHERE jti = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(jti).fetch_optional(pool).await?.is_some())
        })
    }

    /// Forgets revocations of tokens that have expired anyway; returns how many.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_revoked_tokens", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_revoked_tokens"))]
    pub async fn purge_revoked_tokens(&self, now: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM revoked_tokens WHERE expires_at < $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(now).execute(pool).await?.rows_affected())
        })
    }
}
