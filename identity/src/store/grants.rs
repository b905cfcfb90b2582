//! Authorization codes and refresh token families.
//!
//! Rotation of a refresh token is a compare-and-swap on the family's durable `generation`:
//! `UPDATE … SET generation = generation + 1 WHERE id = ? AND generation = ? AND revoked_at IS
//! NULL`. Of concurrent refreshes with the same token exactly one changes the row (PostgreSQL
//! re-checks the condition after the winner commits; SQLite serialises writers), so a family
//! never has two heads and no request needs a retry loop or fails with a serialisation error.

use sqlx::Row;

use super::users::SessionRow;
use super::{Store, StoreResult, on_pool};

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub issued_family_id: Option<String>,
    pub issued_access_jti: Option<String>,
    pub issued_access_exp: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct FamilyRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub generation: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The DPoP key (RFC 7638 thumbprint) a public client's family is bound to: every refresh
    /// must prove possession of it (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
}

/// A presented refresh token and its family.
#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub generation: i64,
    pub superseded_at: Option<i64>,
    pub family: FamilyRow,
}

pub(super) const CODE_COLUMNS: &str = "code_hash, client_id, user_id, session_id, redirect_uri, scope, nonce, \
    code_challenge, code_challenge_method, auth_time, created_at, expires_at, used_at, \
    issued_family_id, issued_access_jti, issued_access_exp";

/// Parameters per code in [`CODE_COLUMNS`].
pub(super) const CODE_WIDTH: usize = 16;

/// Binds a [`CodeRow`] in [`CODE_COLUMNS`] order.
macro_rules! bind_code {
    ($q:expr, $c:expr) => {
        $q.bind(&$c.code_hash)
            .bind(&$c.client_id)
            .bind(&$c.user_id)
            .bind(&$c.session_id)
            .bind(&$c.redirect_uri)
            .bind(&$c.scope)
            .bind(&$c.nonce)
            .bind(&$c.code_challenge)
            .bind(&$c.code_challenge_method)
            .bind($c.auth_time)
            .bind($c.created_at)
            .bind($c.expires_at)
            .bind($c.used_at)
            .bind(&$c.issued_family_id)
            .bind(&$c.issued_access_jti)
            .bind($c.issued_access_exp)
    };
}
pub(super) use bind_code;

/// A sign-in's new session and, unless consent is asked first, the authorization code issued
/// in it: stored with the sign-in's security event, both or neither
/// ([`Store::insert_events`](super::Store::insert_events)).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: SessionRow,
    pub code: Option<CodeRow>,
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_code", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_code"))]
    pub async fn insert_code(&self, c: &CodeRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO authorization_codes ({CODE_COLUMNS}) VALUES {}",
            super::placeholders(1, CODE_WIDTH, 1)
        );
        on_pool!(self, pool => {
            bind_code!(sqlx::query(sqlx::AssertSqlSafe(sql)), c).execute(pool).await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db code_by_hash", otel.kind = "client", db.system = self.dialect(), db.operation.name = "code_by_hash"))]
    pub async fn code_by_hash(&self, code_hash: &[u8]) -> StoreResult<Option<CodeRow>> {
        let sql = format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(code_hash).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(CodeRow {
                    code_hash: r.try_get("code_hash")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    scope: r.try_get("scope")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    code_challenge_method: r.try_get("code_challenge_method")?,
                    auth_time: r.try_get("auth_time")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    used_at: r.try_get("used_at")?,
                    issued_family_id: r.try_get("issued_family_id")?,
                    issued_access_jti: r.try_get("issued_access_jti")?,
                    issued_access_exp: r.try_get("issued_access_exp")?,
                }),
                None => None,
            })
        })
    }

    /// Marks a code used. `false` when it was used already (a replay).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db consume_code", otel.kind = "client", db.system = self.dialect(), db.operation.name = "consume_code"))]
    pub async fn consume_code(&self, code_hash: &[u8], now: i64) -> StoreResult<bool> {
        const SQL: &str =
            "UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL";
        let n = on_pool!(self, pool => sqlx::query(SQL).bind(code_hash).bind(now).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Remembers what a code issued, so a replay can revoke it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db record_code_issue", otel.kind = "client", db.system = self.dialect(), db.operation.name = "record_code_issue"))]
    pub async fn record_code_issue(
        &self,
        code_hash: &[u8],
        family_id: Option<&str>,
        access_jti: &str,
        access_exp: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE authorization_codes SET issued_family_id = $2, \
            issued_access_jti = $3, issued_access_exp = $4 WHERE code_hash = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(code_hash).bind(family_id).bind(access_jti).bind(access_exp).execute(pool).await?;
        });
        Ok(())
    }

    /// Deletes codes expired before `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_codes", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_codes"))]
    pub async fn purge_codes(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM authorization_codes WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }

    /// A new family with its first token (generation 0), atomically.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db create_family", otel.kind = "client", db.system = self.dialect(), db.operation.name = "create_family"))]
    pub async fn create_family(&self, f: &FamilyRow, token_hash: &[u8]) -> StoreResult<()> {
        const FAMILY: &str = "INSERT INTO refresh_families (id, client_id, user_id, session_id, scope, \
            auth_time, generation, created_at, expires_at, dpop_jkt) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        const TOKEN: &str = "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) \
            VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            sqlx::query(FAMILY)
                .bind(&f.id)
                .bind(&f.client_id)
                .bind(&f.user_id)
                .bind(&f.session_id)
                .bind(&f.scope)
                .bind(f.auth_time)
                .bind(f.generation)
                .bind(f.created_at)
                .bind(f.expires_at)
                .bind(&f.dpop_jkt)
                .execute(&mut *tx)
                .await?;
            sqlx::query(TOKEN)
                .bind(token_hash)
                .bind(&f.id)
                .bind(f.generation)
                .bind(f.created_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db refresh_token", otel.kind = "client", db.system = self.dialect(), db.operation.name = "refresh_token"))]
    pub async fn refresh_token(&self, token_hash: &[u8]) -> StoreResult<Option<RefreshTokenRow>> {
        const SQL: &str = "SELECT t.generation AS token_generation, t.superseded_at, f.id, f.client_id, \
            f.user_id, f.session_id, f.scope, f.auth_time, f.generation, f.created_at, f.expires_at, \
            f.revoked_at, f.dpop_jkt FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
            WHERE t.token_hash = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(token_hash).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(RefreshTokenRow {
                    generation: r.try_get("token_generation")?,
                    superseded_at: r.try_get("superseded_at")?,
                    family: FamilyRow {
                        id: r.try_get("id")?,
                        client_id: r.try_get("client_id")?,
                        user_id: r.try_get("user_id")?,
                        session_id: r.try_get("session_id")?,
                        scope: r.try_get("scope")?,
                        auth_time: r.try_get("auth_time")?,
                        generation: r.try_get("generation")?,
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                        revoked_at: r.try_get("revoked_at")?,
                        dpop_jkt: r.try_get("dpop_jkt")?,
                    },
                }),
                None => None,
            })
        })
    }

    /// Rotates the family from `generation` to `generation + 1` with `new_token_hash` as the
    /// new head. `false` when the family moved on (a concurrent refresh won) or was revoked.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db rotate_family", otel.kind = "client", db.system = self.dialect(), db.operation.name = "rotate_family"))]
    pub async fn rotate_family(
        &self,
        family_id: &str,
        generation: i64,
        new_token_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        const ADVANCE: &str = "UPDATE refresh_families SET generation = generation + 1 \
            WHERE id = $1 AND generation = $2 AND revoked_at IS NULL AND expires_at > $3";
        const SUPERSEDE: &str = "UPDATE refresh_tokens SET superseded_at = $3 \
            WHERE family_id = $1 AND generation = $2";
        const INSERT: &str = "INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) \
            VALUES ($1, $2, $3, $4)";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let advanced = sqlx::query(ADVANCE)
                .bind(family_id)
                .bind(generation)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if advanced != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(SUPERSEDE).bind(family_id).bind(generation).bind(now).execute(&mut *tx).await?;
            sqlx::query(INSERT)
                .bind(new_token_hash)
                .bind(family_id)
                .bind(generation + 1)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Deletes families (and their tokens) that expired or were revoked before `before`.
    /// Superseded tokens of live families stay: reuse detection needs them as long as the
    /// family lives. Returns how many rows went.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_refresh_state", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_refresh_state"))]
    pub async fn purge_refresh_state(&self, before: i64) -> StoreResult<u64> {
        const TOKENS_OF_DEAD: &str = "DELETE FROM refresh_tokens WHERE family_id IN \
            (SELECT id FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1)";
        const DEAD: &str = "DELETE FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1";
        on_pool!(self, pool => {
            let mut n = 0;
            for sql in [TOKENS_OF_DEAD, DEAD] {
                n += sqlx::query(sql).bind(before).execute(pool).await?.rows_affected();
            }
            Ok(n)
        })
    }

    /// Revokes a family (every token in it). Idempotent.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db revoke_family", otel.kind = "client", db.system = self.dialect(), db.operation.name = "revoke_family"))]
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> StoreResult<()> {
        const SQL: &str =
            "UPDATE refresh_families SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(family_id).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Whether a family is revoked (or does not exist).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db family_revoked", otel.kind = "client", db.system = self.dialect(), db.operation.name = "family_revoked"))]
    pub async fn family_revoked(&self, family_id: &str) -> StoreResult<bool> {
        const SQL: &str = "SELECT revoked_at FROM refresh_families WHERE id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(family_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                None => true,
            })
        })
    }

    /// How many tokens a family has had (its head's generation + 1), for tests and metrics.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db family_generation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "family_generation"))]
    pub async fn family_generation(&self, family_id: &str) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT generation FROM refresh_families WHERE id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(family_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(r.try_get("generation")?),
                None => None,
            })
        })
    }
}
