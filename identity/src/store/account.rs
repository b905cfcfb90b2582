//! What the account's owner manages themselves: the single-use links sent by mail (stored as
//! SHA-256 only), the proof of the email address, their sessions and the clients they granted,
//! and the account's removal.

use sqlx::Row;

use super::users::SessionRow;
use super::{Store, StoreResult, on_pool};

macro_rules! account_token_row {
    ($r:expr) => {
        AccountTokenRow {
            token_hash: $r.try_get("token_hash")?,
            kind: $r.try_get("kind")?,
            user_id: $r.try_get("user_id")?,
            email: $r.try_get("email")?,
            tenant_id: $r.try_get("tenant_id")?,
            created_at: $r.try_get("created_at")?,
            expires_at: $r.try_get("expires_at")?,
        }
    };
}

/// A single-use link's record (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct AccountTokenRow {
    pub token_hash: Vec<u8>,
    /// `password_reset` or `email_verification`.
    pub kind: String,
    pub user_id: String,
    /// The address the link was sent to (a verification proves only this address).
    pub email: String,
    /// The tenant the request came through (its branding and templates).
    pub tenant_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A client the user granted access: consented scopes and live refresh-token families.
#[derive(Debug, Clone)]
pub struct GrantedClient {
    pub client_id: String,
    pub name: String,
    /// The consented scopes (empty for a first-party client, which needs no consent).
    pub scopes: String,
    /// Live refresh-token families (offline access) of the user at this client.
    pub live_grants: i64,
}

/// How an account's address was proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailProof {
    /// When (unix ms).
    pub at: i64,
    /// `None`: by mail, which counts for every tenant. Otherwise the tenant whose own
    /// external provider vouched for it, which counts for that tenant only: another tenant
    /// must not take one tenant's provider's word for who owns an address.
    pub vouched_by: Option<String>,
}

impl EmailProof {
    /// Whether the proof counts for `tenant_id` (`None`: the platform).
    pub fn counts_for(&self, tenant_id: Option<&str>) -> bool {
        match &self.vouched_by {
            None => true,
            Some(t) => Some(t.as_str()) == tenant_id,
        }
    }
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_account_token", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_account_token"))]
    pub async fn insert_account_token(&self, t: &AccountTokenRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO account_tokens (token_hash, kind, user_id, email, tenant_id, \
            created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&t.token_hash)
                .bind(&t.kind)
                .bind(&t.user_id)
                .bind(&t.email)
                .bind(&t.tenant_id)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Links of `kind` issued to `user_id` since `since` (the per-account rate limit).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db account_tokens_since", otel.kind = "client", db.system = self.dialect(), db.operation.name = "account_tokens_since"))]
    pub async fn account_tokens_since(
        &self,
        user_id: &str,
        kind: &str,
        since: i64,
    ) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM account_tokens \
            WHERE user_id = $1 AND kind = $2 AND created_at >= $3";
        on_pool!(self, pool => Ok(sqlx::query_scalar(SQL).bind(user_id).bind(kind).bind(since).fetch_one(pool).await?))
    }

    /// A live (unused, unexpired) link of `kind`, without using it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db live_account_token", otel.kind = "client", db.system = self.dialect(), db.operation.name = "live_account_token"))]
    pub async fn live_account_token(
        &self,
        token_hash: &[u8],
        kind: &str,
        now: i64,
    ) -> StoreResult<Option<AccountTokenRow>> {
        const SQL: &str = "SELECT token_hash, kind, user_id, email, tenant_id, created_at, expires_at \
            FROM account_tokens WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(token_hash).bind(kind).bind(now).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(account_token_row!(r)),
                None => None,
            })
        })
    }

    /// Uses a live link of `kind` (once: of concurrent uses one wins); the link's record, or
    /// `None` when it is unknown, used or expired.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db use_account_token", otel.kind = "client", db.system = self.dialect(), db.operation.name = "use_account_token"))]
    pub async fn use_account_token(
        &self,
        token_hash: &[u8],
        kind: &str,
        now: i64,
    ) -> StoreResult<Option<AccountTokenRow>> {
        const SQL: &str = "UPDATE account_tokens SET used_at = $3 \
            WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 \
            RETURNING token_hash, kind, user_id, email, tenant_id, created_at, expires_at";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(token_hash).bind(kind).bind(now).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(account_token_row!(r)),
                None => None,
            })
        })
    }

    /// Deletes links that expired before `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_account_tokens", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_account_tokens"))]
    pub async fn purge_account_tokens(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM account_tokens WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }

    /// Records that `email` is proven by mail for `user_id` (which counts for every tenant) —
    /// only while it is still the account's address (a link sent to an earlier address proves
    /// nothing about the current one).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db mark_email_verified", otel.kind = "client", db.system = self.dialect(), db.operation.name = "mark_email_verified"))]
    pub async fn mark_email_verified(
        &self,
        user_id: &str,
        email: &str,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE users SET email_verified_at = $3, email_vouched_by = NULL \
            WHERE id = $1 AND email = $2";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(email).bind(now).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Records that `tenant_id`'s own external provider vouched for `email` of `user_id`
    /// (which counts for that tenant only), while it is the account's address and not proven
    /// by mail already (a proof by mail is never narrowed).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db mark_email_vouched", otel.kind = "client", db.system = self.dialect(), db.operation.name = "mark_email_vouched"))]
    pub async fn mark_email_vouched(
        &self,
        user_id: &str,
        email: &str,
        tenant_id: &str,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE users SET email_verified_at = $4, email_vouched_by = $3 \
            WHERE id = $1 AND email = $2 \
            AND (email_verified_at IS NULL OR email_vouched_by IS NOT NULL)";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(email).bind(tenant_id).bind(now).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Moves the account to `email`, proven by mail now (a unique violation when another
    /// account has it). Whether the account exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db change_email", otel.kind = "client", db.system = self.dialect(), db.operation.name = "change_email"))]
    pub async fn change_email(&self, user_id: &str, email: &str, now: i64) -> StoreResult<bool> {
        const SQL: &str = "UPDATE users SET email = $2, email_verified_at = $3, \
            email_vouched_by = NULL, updated_at = $3 WHERE id = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(email).bind(now).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// How the account's current address was proven (`None`: not yet, or no such user).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db email_proof", otel.kind = "client", db.system = self.dialect(), db.operation.name = "email_proof"))]
    pub async fn email_proof(&self, user_id: &str) -> StoreResult<Option<EmailProof>> {
        const SQL: &str = "SELECT email_verified_at, email_vouched_by FROM users WHERE id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(user_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => {
                    let at: Option<i64> = r.try_get("email_verified_at")?;
                    let vouched_by: Option<String> = r.try_get("email_vouched_by")?;
                    at.map(|at| EmailProof { at, vouched_by })
                }
                None => None,
            })
        })
    }

    /// The user's live browser sessions, newest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db sessions_of_user", otel.kind = "client", db.system = self.dialect(), db.operation.name = "sessions_of_user"))]
    pub async fn sessions_of_user(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionRow>> {
        const SQL: &str = "SELECT id, token_hash, user_id, auth_time, amr, created_at, expires_at, \
            revoked_at, tenant_id FROM sessions \
            WHERE user_id = $1 AND expires_at > $2 AND revoked_at IS NULL ORDER BY created_at DESC, id";
        on_pool!(self, pool => {
            Ok(sqlx::query_as::<_, SessionRow>(SQL)
                .bind(user_id)
                .bind(now)
                .fetch_all(pool)
                .await?)
        })
    }

    /// The clients the user consented to or holds live refresh tokens at, by client id.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db granted_clients", otel.kind = "client", db.system = self.dialect(), db.operation.name = "granted_clients"))]
    pub async fn granted_clients(
        &self,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Vec<GrantedClient>> {
        const SQL: &str = "SELECT g.client_id, COALESCE(c.name, g.client_id) AS name, \
                COALESCE(MAX(g.scopes), '') AS scopes, SUM(g.live) AS live \
             FROM (SELECT client_id, scopes, 0 AS live FROM consents WHERE user_id = $1 \
                   UNION ALL \
                   SELECT client_id, NULL AS scopes, 1 AS live FROM refresh_families \
                   WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2) g \
             LEFT JOIN clients c ON c.client_id = g.client_id \
             GROUP BY g.client_id, c.name ORDER BY g.client_id";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(user_id).bind(now).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(GrantedClient {
                    client_id: r.try_get("client_id")?,
                    name: r.try_get("name")?,
                    scopes: r.try_get("scopes")?,
                    live_grants: r.try_get("live")?,
                });
            }
            Ok(out)
        })
    }

    /// Takes back what the user granted `client_id`: the consent, and every refresh-token
    /// family of the user at it, in one transaction.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db revoke_client_grant", otel.kind = "client", db.system = self.dialect(), db.operation.name = "revoke_client_grant"))]
    pub async fn revoke_client_grant(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        const CONSENT: &str = "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
        const FAMILIES: &str = "UPDATE refresh_families SET revoked_at = $3 \
            WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            sqlx::query(CONSENT).bind(user_id).bind(client_id).execute(&mut *tx).await?;
            sqlx::query(FAMILIES).bind(user_id).bind(client_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Removes an account: its sessions end and its refresh-token families are revoked, and
    /// its memberships, consents, second factors, links, known browsers and the user row go, in one
    /// transaction. The security events about it stay (the log is append-only).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_account", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_account"))]
    pub async fn delete_account(&self, user_id: &str, now: i64) -> StoreResult<bool> {
        const END: [&str; 2] = [super::tenants::END_SESSIONS, super::tenants::END_FAMILIES];
        const DELETE: [&str; 11] = [
            "DELETE FROM known_devices WHERE user_id = $1",
            "DELETE FROM federated_identities WHERE user_id = $1",
            "DELETE FROM memberships WHERE user_id = $1",
            "DELETE FROM login_steps WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM mfa_totp WHERE user_id = $1",
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            "DELETE FROM passkeys WHERE user_id = $1",
            "DELETE FROM passkey_ceremonies WHERE user_id = $1",
            "DELETE FROM account_tokens WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ];
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            for sql in END {
                sqlx::query(sql).bind(user_id).bind(now).execute(&mut *tx).await?;
            }
            let mut deleted = 0;
            for sql in DELETE {
                deleted = sqlx::query(sql).bind(user_id).execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }
}
