//! Users and browser sessions.

use sqlx::Row;

use super::lockout::{GATE_SQL, LoginGate, login_gate};
use super::tenants::{TenantRow, tenant_row};
use super::{Store, StoreError, StoreResult, on_pool};

#[derive(Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    /// A platform administrator: the only users who may receive `admin.full`.
    pub platform_admin: bool,
    /// The tenant that created the identity (`None`: the platform): besides the identity
    /// itself and platform administrators, the only one who may change its credentials.
    pub home_tenant_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The tenant this session signed in for (`None`: the user's platform identity).
    pub tenant_id: Option<String>,
}

/// The account a password sign-in names, with what the sign-in needs of it
/// ([`Store::sign_in_lookup`]).
#[derive(Debug)]
pub struct SignInAccount {
    pub user: UserRow,
    /// A confirmed second factor.
    pub mfa_enrolled: bool,
    /// The tenants the user is a member of, ordered by id.
    pub tenants: Vec<TenantRow>,
}

/// The columns a new [`SessionRow`] is inserted into (bound by `bind_session!`).
pub(super) const SESSION_COLUMNS: &str =
    "id, token_hash, user_id, auth_time, amr, created_at, expires_at, tenant_id";
/// Parameters per session in [`SESSION_COLUMNS`].
pub(super) const SESSION_WIDTH: usize = 8;

/// Binds a [`SessionRow`] in [`SESSION_COLUMNS`] order.
macro_rules! bind_session {
    ($q:expr, $s:expr) => {
        $q.bind(&$s.id)
            .bind(&$s.token_hash)
            .bind(&$s.user_id)
            .bind($s.auth_time)
            .bind(&$s.amr)
            .bind($s.created_at)
            .bind($s.expires_at)
            .bind(&$s.tenant_id)
    };
}
pub(super) use bind_session;

pub(crate) const USER_COLUMNS: &str = "id, email, name, password_hash, tenant_id, roles, disabled, \
    created_at, updated_at, platform_admin, home_tenant_id";

macro_rules! user_row {
    ($r:expr) => {
        UserRow {
            id: $r.try_get("id")?,
            email: $r.try_get("email")?,
            name: $r.try_get("name")?,
            password_hash: $r.try_get("password_hash")?,
            tenant_id: $r.try_get("tenant_id")?,
            roles: serde_json::from_str(&$r.try_get::<String, _>("roles")?)
                .map_err(|e| StoreError::Corrupt(format!("users.roles: {e}")))?,
            disabled: $r.try_get("disabled")?,
            platform_admin: $r.try_get("platform_admin")?,
            home_tenant_id: $r.try_get("home_tenant_id")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_user", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_user"))]
    pub async fn insert_user(&self, u: &UserRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let roles = serde_json::to_string(&u.roles).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&u.id)
                .bind(&u.email)
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(&u.tenant_id)
                .bind(&roles)
                .bind(u.disabled)
                .bind(u.created_at)
                .bind(u.updated_at)
                .bind(u.platform_admin)
                .bind(&u.home_tenant_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Marks a user as platform administrator (or not).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db set_platform_admin", otel.kind = "client", db.system = self.dialect(), db.operation.name = "set_platform_admin"))]
    pub async fn set_platform_admin(
        &self,
        user_id: &str,
        platform_admin: bool,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE users SET platform_admin = $2 WHERE id = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(platform_admin).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// By email, compared case-insensitively (emails are stored lower-cased).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db user_by_email", otel.kind = "client", db.system = self.dialect(), db.operation.name = "user_by_email"))]
    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let email = email.trim().to_lowercase();
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&email).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(user_row!(r)),
                None => None,
            })
        })
    }

    /// Everything a password sign-in reads before hashing, in one statement: the lock state
    /// of the account and IP keys (see [`Store::login_gate`]), the account with this email,
    /// whether it has a confirmed second factor and its tenants (as
    /// [`Store::tenants_of_user`]: ordered by id) — one row per membership.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db sign_in_lookup", otel.kind = "client", db.system = self.dialect(), db.operation.name = "sign_in_lookup"))]
    pub async fn sign_in_lookup(
        &self,
        account_key: &str,
        ip_key: &str,
        now: i64,
        email: &str,
    ) -> StoreResult<(LoginGate, Option<SignInAccount>)> {
        let sql = format!(
            "SELECT g.until, g.pending, u.*, EXISTS (SELECT 1 FROM mfa_totp f \
                WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) AS mfa_enrolled, \
                t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.status AS t_status, \
                t.policy AS t_policy, t.created_at AS t_created_at, t.updated_at AS t_updated_at \
             FROM ({GATE_SQL}) g LEFT JOIN users u ON u.email = $4 \
             LEFT JOIN memberships m ON m.user_id = u.id \
             LEFT JOIN tenants t ON t.id = m.tenant_id \
             ORDER BY t.id"
        );
        let email = email.trim().to_lowercase();
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(account_key)
                .bind(ip_key)
                .bind(now)
                .bind(&email)
                .fetch_all(pool)
                .await?;
            let Some(first) = rows.first() else {
                return Err(StoreError::Corrupt("the sign-in lookup returned no row".into()));
            };
            let gate = login_gate!(first);
            if first.try_get::<Option<String>, _>("id")?.is_none() {
                return Ok((gate, None));
            }
            let mut tenants = Vec::with_capacity(rows.len());
            for r in &rows {
                if r.try_get::<Option<String>, _>("t_id")?.is_some() {
                    tenants.push(tenant_row!(r, "t_"));
                }
            }
            let account = SignInAccount {
                user: user_row!(first),
                mfa_enrolled: first.try_get::<bool, _>("mfa_enrolled")?,
                tenants,
            };
            Ok((gate, Some(account)))
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db user_by_id", otel.kind = "client", db.system = self.dialect(), db.operation.name = "user_by_id"))]
    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(user_row!(r)),
                None => None,
            })
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_session", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_session"))]
    pub async fn insert_session(&self, s: &SessionRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES {}",
            super::placeholders(1, SESSION_WIDTH, 1)
        );
        on_pool!(self, pool => {
            bind_session!(sqlx::query(sqlx::AssertSqlSafe(sql)), s).execute(pool).await?;
        });
        Ok(())
    }

    /// Ends a session and revokes the refresh token families issued in it.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db revoke_session", otel.kind = "client", db.system = self.dialect(), db.operation.name = "revoke_session"))]
    pub async fn revoke_session(&self, session_id: &str, now: i64) -> StoreResult<()> {
        const SESSION: &str =
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        const FAMILIES: &str = "UPDATE refresh_families SET revoked_at = $2 \
            WHERE session_id = $1 AND revoked_at IS NULL";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            sqlx::query(SESSION).bind(session_id).bind(now).execute(&mut *tx).await?;
            sqlx::query(FAMILIES).bind(session_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deletes sessions that expired or were revoked before `before`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_sessions", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_sessions"))]
    pub async fn purge_sessions(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }

    /// A live (unexpired, unrevoked) session by its cookie token's hash.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db live_session", otel.kind = "client", db.system = self.dialect(), db.operation.name = "live_session"))]
    pub async fn live_session(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<SessionRow>> {
        const SQL: &str = "SELECT id, token_hash, user_id, auth_time, amr, created_at, expires_at, revoked_at, tenant_id \
            FROM sessions WHERE token_hash = $1 AND expires_at > $2 AND revoked_at IS NULL";
        on_pool!(self, pool => {
            Ok(sqlx::query_as::<_, SessionRow>(SQL)
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?)
        })
    }
}
