//! Passkeys (WebAuthn credentials) and their pending ceremonies.
//!
//! A passkey belongs to a user in one tenant (`tenant_id`; `None`: the platform identity). The
//! tenant is matched as `COALESCE(tenant_id, '')` against the id or `''`, the same text on
//! both dialects.

use super::{Store, StoreResult, on_pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub user_id: String,
    pub credential_id: Vec<u8>,
    pub user_handle: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON (public key, counter, backup flags).
    pub passkey: String,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A ceremony between its options and the browser's answer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    pub token_hash: Vec<u8>,
    /// `register`, `sign_in` or `factor`.
    pub kind: String,
    /// SHA-256 of what started it (the session, the CSRF cookie, the sign-in step).
    pub binding: Vec<u8>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    /// webauthn-rs's ceremony state as JSON.
    pub state: String,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, tenant_id, user_id, credential_id, user_handle, name, passkey, \
    counter, backup_eligible, backup_state, created_at, last_used_at";

fn scope(tenant_id: Option<&str>) -> &str {
    tenant_id.unwrap_or("")
}

impl Store {
    /// Stores a new passkey; false when its credential id is registered already.
    pub async fn insert_passkey(&self, p: &PasskeyRow) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO passkeys (id, tenant_id, user_id, credential_id, \
            user_handle, name, passkey, counter, backup_eligible, backup_state, created_at, \
            last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
            ON CONFLICT (credential_id) DO NOTHING";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(&p.id)
                .bind(&p.tenant_id)
                .bind(&p.user_id)
                .bind(&p.credential_id)
                .bind(&p.user_handle)
                .bind(&p.name)
                .bind(&p.passkey)
                .bind(p.counter)
                .bind(p.backup_eligible)
                .bind(p.backup_state)
                .bind(p.created_at)
                .bind(p.last_used_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// A user's passkeys in a tenant (`None`: the platform identity's), oldest first.
    pub async fn passkeys_of(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<PasskeyRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 AND COALESCE(tenant_id, '') = $2 \
             ORDER BY created_at, id"
        );
        let sql = sqlx::AssertSqlSafe(sql);
        on_pool!(self, pool => Ok(sqlx::query_as::<_, PasskeyRow>(sql)
            .bind(user_id)
            .bind(scope(tenant_id))
            .fetch_all(pool)
            .await?))
    }

    /// A user's passkeys in every tenant, oldest first.
    pub async fn all_passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
        let sql = sqlx::AssertSqlSafe(sql);
        on_pool!(self, pool => Ok(sqlx::query_as::<_, PasskeyRow>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?))
    }

    /// The passkey with a credential id, registered in `tenant_id` (`None`: the platform's).
    /// A credential of another tenant is not found.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
        tenant_id: Option<&str>,
    ) -> StoreResult<Option<PasskeyRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1 \
             AND COALESCE(tenant_id, '') = $2"
        );
        let sql = sqlx::AssertSqlSafe(sql);
        on_pool!(self, pool => Ok(sqlx::query_as::<_, PasskeyRow>(sql)
            .bind(credential_id)
            .bind(scope(tenant_id))
            .fetch_optional(pool)
            .await?))
    }

    /// Records a use: the new credential state, if the stored counter is still `seen_counter`
    /// (a compare-and-set: of two uses of one counter value, one is recorded). False when it
    /// was not.
    pub async fn record_passkey_use(
        &self,
        p: &PasskeyRow,
        seen_counter: i64,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE passkeys SET passkey = $2, counter = $3, backup_eligible = $4, \
            backup_state = $5, last_used_at = $6 WHERE id = $1 AND counter = $7";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(&p.id)
                .bind(&p.passkey)
                .bind(p.counter)
                .bind(p.backup_eligible)
                .bind(p.backup_state)
                .bind(now)
                .bind(seen_counter)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Renames a user's passkey in a tenant; false when there is no such passkey.
    pub async fn rename_passkey(
        &self,
        id: &str,
        user_id: &str,
        tenant_id: Option<&str>,
        name: &str,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE passkeys SET name = $4 WHERE id = $1 AND user_id = $2 \
            AND COALESCE(tenant_id, '') = $3";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(id)
                .bind(user_id)
                .bind(scope(tenant_id))
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Removes a user's passkey in a tenant; false when there is no such passkey.
    pub async fn delete_passkey(
        &self,
        id: &str,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> StoreResult<bool> {
        const SQL: &str =
            "DELETE FROM passkeys WHERE id = $1 AND user_id = $2 AND COALESCE(tenant_id, '') = $3";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(id)
                .bind(user_id)
                .bind(scope(tenant_id))
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    pub async fn insert_passkey_ceremony(&self, c: &CeremonyRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO passkey_ceremonies (token_hash, kind, binding, user_id, \
            tenant_id, state, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&c.token_hash)
                .bind(&c.kind)
                .bind(&c.binding)
                .bind(&c.user_id)
                .bind(&c.tenant_id)
                .bind(&c.state)
                .bind(c.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Takes a live ceremony by its token's hash: it is gone once read (single use), whether
    /// or not the caller accepts it.
    pub async fn take_passkey_ceremony(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<CeremonyRow>> {
        const SQL: &str = "DELETE FROM passkey_ceremonies WHERE token_hash = $1 \
            RETURNING token_hash, kind, binding, user_id, tenant_id, state, expires_at";
        let row = on_pool!(self, pool => sqlx::query_as::<_, CeremonyRow>(SQL)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?);
        Ok(row.filter(|c| c.expires_at > now))
    }

    /// Deletes ceremonies that expired before `before`.
    pub async fn purge_passkey_ceremonies(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM passkey_ceremonies WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }
}
