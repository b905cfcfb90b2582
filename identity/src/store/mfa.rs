//! TOTP secrets, recovery codes, and the pending steps of a sign-in.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

#[derive(Clone)]
pub struct TotpRow {
    pub user_id: String,
    /// `nonce || ciphertext || tag` under the master key, AAD `tansu-totp:<user id>`.
    pub secret_sealed: Vec<u8>,
    pub master_key_id: String,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A sign-in between the password and the session.
#[derive(Debug, Clone)]
pub struct LoginStepRow {
    pub token_hash: Vec<u8>,
    pub csrf_hash: Vec<u8>,
    pub user_id: String,
    /// The lockout key of what was typed (`a:<email>|<ip>`), so wrong codes count there too.
    pub account_key: String,
    /// Whether the tenant is settled (`tenant_id: None` then means the platform identity).
    pub tenant_resolved: bool,
    pub tenant_id: Option<String>,
    /// Space-separated RFC 8176 methods passed so far (`pwd`, then `otp`/`mfa`).
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Whether the account key may have counted failures for the finished sign-in to clear.
    /// Not stored: a step read back from the store assumes it has.
    pub failures_pending: bool,
}

const CLEAR_CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
const INSERT_CODE: &str = "INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)";

/// Replaces a user's recovery codes inside transaction `$tx` (either dialect).
macro_rules! put_recovery_codes {
    ($tx:expr, $user_id:expr, $hashes:expr) => {{
        sqlx::query(CLEAR_CODES)
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
        for h in $hashes {
            sqlx::query(INSERT_CODE)
                .bind($user_id)
                .bind(h)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

impl Store {
    /// The user's TOTP row (confirmed or pending enrolment).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db totp", otel.kind = "client", db.system = self.dialect(), db.operation.name = "totp"))]
    pub async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRow>> {
        const SQL: &str = "SELECT user_id, secret_sealed, master_key_id, confirmed_at, last_step, created_at \
            FROM mfa_totp WHERE user_id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(user_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(TotpRow {
                    user_id: r.try_get("user_id")?,
                    secret_sealed: r.try_get("secret_sealed")?,
                    master_key_id: r.try_get("master_key_id")?,
                    confirmed_at: r.try_get("confirmed_at")?,
                    last_step: r.try_get("last_step")?,
                    created_at: r.try_get("created_at")?,
                }),
                None => None,
            })
        })
    }

    /// Stores a new, unconfirmed secret, replacing an earlier unconfirmed one. Returns false
    /// (and changes nothing) when the user has a confirmed secret.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db put_pending_totp", otel.kind = "client", db.system = self.dialect(), db.operation.name = "put_pending_totp"))]
    pub async fn put_pending_totp(&self, t: &TotpRow) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO mfa_totp (user_id, secret_sealed, master_key_id, confirmed_at, last_step, created_at) \
            VALUES ($1, $2, $3, NULL, $4, $5) \
            ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
            master_key_id = excluded.master_key_id, last_step = excluded.last_step, \
            created_at = excluded.created_at WHERE mfa_totp.confirmed_at IS NULL";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(&t.user_id)
                .bind(&t.secret_sealed)
                .bind(&t.master_key_id)
                .bind(t.last_step)
                .bind(t.created_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    /// Confirms a pending enrolment at `step` and stores the recovery codes (replacing any),
    /// in one transaction. False when there was no pending enrolment.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db confirm_totp", otel.kind = "client", db.system = self.dialect(), db.operation.name = "confirm_totp"))]
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<bool> {
        const CONFIRM: &str = "UPDATE mfa_totp SET confirmed_at = $2, last_step = $3 \
            WHERE user_id = $1 AND confirmed_at IS NULL";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n = sqlx::query(CONFIRM).bind(user_id).bind(now).bind(step).execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Ok(false);
            }
            put_recovery_codes!(tx, user_id, recovery_hashes);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Replaces the recovery codes of a user with confirmed MFA, in one transaction (the old
    /// set is gone when the new one exists). False when the user has no confirmed MFA.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db replace_recovery_codes", otel.kind = "client", db.system = self.dialect(), db.operation.name = "replace_recovery_codes"))]
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        const ENROLLED: &str =
            "SELECT COUNT(*) AS n FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n: i64 = sqlx::query(ENROLLED).bind(user_id).fetch_one(&mut *tx).await?.try_get("n")?;
            if n != 1 {
                return Ok(false);
            }
            put_recovery_codes!(tx, user_id, recovery_hashes);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Stores recovery codes for a user without unused ones (replacing used ones), in one
    /// transaction; false (nothing changed) when unused ones exist.
    pub async fn put_recovery_codes_if_none(
        &self,
        user_id: &str,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        const LEFT: &str =
            "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n: i64 = sqlx::query(LEFT).bind(user_id).fetch_one(&mut *tx).await?.try_get("n")?;
            if n != 0 {
                return Ok(false);
            }
            put_recovery_codes!(tx, user_id, recovery_hashes);
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Accepts a code's time step once: true when `step` is later than the last accepted one
    /// (a compare-and-set, so two concurrent uses of one code cannot both pass).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db accept_totp_step", otel.kind = "client", db.system = self.dialect(), db.operation.name = "accept_totp_step"))]
    pub async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        const SQL: &str = "UPDATE mfa_totp SET last_step = $2 \
            WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(step).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Uses a recovery code: true the first time only.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db use_recovery_code", otel.kind = "client", db.system = self.dialect(), db.operation.name = "use_recovery_code"))]
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE mfa_recovery_codes SET used_at = $3 \
            WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(code_hash).bind(now).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// How many unused recovery codes the user has.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db recovery_codes_left", otel.kind = "client", db.system = self.dialect(), db.operation.name = "recovery_codes_left"))]
    pub async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<i64> {
        const SQL: &str =
            "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(user_id).fetch_one(pool).await?;
            Ok(row.try_get("n")?)
        })
    }

    /// Removes the user's TOTP secret and recovery codes and, in the same transaction, ends the
    /// user's sessions and revokes their refresh token families. True when there was a secret.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db reset_mfa", otel.kind = "client", db.system = self.dialect(), db.operation.name = "reset_mfa"))]
    pub async fn reset_mfa(&self, user_id: &str, now: i64) -> StoreResult<bool> {
        use super::tenants::{END_FAMILIES, END_SESSIONS};
        const TOTP: &str = "DELETE FROM mfa_totp WHERE user_id = $1";
        const CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n = sqlx::query(TOTP).bind(user_id).execute(&mut *tx).await?.rows_affected();
            sqlx::query(CODES).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(END_SESSIONS).bind(user_id).bind(now).execute(&mut *tx).await?;
            sqlx::query(END_FAMILIES).bind(user_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_login_step", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_login_step"))]
    pub async fn insert_login_step(&self, s: &LoginStepRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO login_steps (token_hash, csrf_hash, user_id, account_key, \
            tenant_resolved, tenant_id, amr, created_at, expires_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&s.token_hash)
                .bind(&s.csrf_hash)
                .bind(&s.user_id)
                .bind(&s.account_key)
                .bind(s.tenant_resolved)
                .bind(&s.tenant_id)
                .bind(&s.amr)
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A live pending sign-in by its token's hash.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db login_step", otel.kind = "client", db.system = self.dialect(), db.operation.name = "login_step"))]
    pub async fn login_step(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<LoginStepRow>> {
        const SQL: &str = "SELECT token_hash, csrf_hash, user_id, account_key, tenant_resolved, \
            tenant_id, amr, created_at, expires_at FROM login_steps \
            WHERE token_hash = $1 AND expires_at > $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(token_hash).bind(now).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(LoginStepRow {
                    token_hash: r.try_get("token_hash")?,
                    csrf_hash: r.try_get("csrf_hash")?,
                    user_id: r.try_get("user_id")?,
                    account_key: r.try_get("account_key")?,
                    tenant_resolved: r.try_get("tenant_resolved")?,
                    tenant_id: r.try_get("tenant_id")?,
                    amr: r.try_get("amr")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    failures_pending: true,
                }),
                None => None,
            })
        })
    }

    /// Ends a pending sign-in; true for the one caller that removed it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db take_login_step", otel.kind = "client", db.system = self.dialect(), db.operation.name = "take_login_step"))]
    pub async fn take_login_step(&self, token_hash: &[u8]) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM login_steps WHERE token_hash = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(token_hash).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Deletes pending sign-ins that expired before `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_login_steps", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_login_steps"))]
    pub async fn purge_login_steps(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM login_steps WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }

    /// The methods a session signed in with (space-separated).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db session_amr", otel.kind = "client", db.system = self.dialect(), db.operation.name = "session_amr"))]
    pub async fn session_amr(&self, session_id: &str) -> StoreResult<Option<String>> {
        const SQL: &str = "SELECT amr FROM sessions WHERE id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(session_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(r.try_get("amr")?),
                None => None,
            })
        })
    }
}
