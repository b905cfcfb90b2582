//! Tenants and the memberships of users in them.

use sqlx::Row;

use super::{Store, StoreError, StoreResult, on_pool};

#[derive(Debug, Clone)]
pub struct TenantRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    /// The tenant policy as JSON (see `crate::tenants::TenantPolicy`).
    pub policy: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct MembershipRow {
    pub user_id: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    pub created_at: i64,
}

pub(crate) const TENANT_COLUMNS: &str = "id, slug, name, status, policy, created_at, updated_at";

/// A [`TenantRow`] from a row with the tenant's columns, optionally named with a prefix
/// (`tenant_row!(r, "t_")` reads `t_id`, `t_slug`, …).
macro_rules! tenant_row {
    ($r:expr) => {
        tenant_row!($r, "")
    };
    ($r:expr, $prefix:literal) => {
        TenantRow {
            id: $r.try_get(concat!($prefix, "id"))?,
            slug: $r.try_get(concat!($prefix, "slug"))?,
            name: $r.try_get(concat!($prefix, "name"))?,
            status: $r.try_get(concat!($prefix, "status"))?,
            policy: $r.try_get(concat!($prefix, "policy"))?,
            created_at: $r.try_get(concat!($prefix, "created_at"))?,
            updated_at: $r.try_get(concat!($prefix, "updated_at"))?,
        }
    };
}
pub(super) use tenant_row;

macro_rules! membership_row {
    ($r:expr) => {
        MembershipRow {
            user_id: $r.try_get("user_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            roles: serde_json::from_str(&$r.try_get::<String, _>("roles")?)
                .map_err(|e| StoreError::Corrupt(format!("memberships.roles: {e}")))?,
            created_at: $r.try_get("created_at")?,
        }
    };
}

/// Ends a user's sessions (`$1` user, `$2` now).
pub(super) const END_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
/// Revokes a user's refresh token families (`$1` user, `$2` now).
pub(super) const END_FAMILIES: &str =
    "UPDATE refresh_families SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_tenant", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_tenant"))]
    pub async fn insert_tenant(&self, t: &TenantRow) -> StoreResult<()> {
        let sql =
            format!("INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&t.id)
                .bind(&t.slug)
                .bind(&t.name)
                .bind(&t.status)
                .bind(&t.policy)
                .bind(t.created_at)
                .bind(t.updated_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db update_tenant", otel.kind = "client", db.system = self.dialect(), db.operation.name = "update_tenant"))]
    pub async fn update_tenant(&self, t: &TenantRow) -> StoreResult<bool> {
        const SQL: &str = "UPDATE tenants SET slug = $2, name = $3, status = $4, policy = $5, \
            updated_at = $6 WHERE id = $1";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(&t.id)
                .bind(&t.slug)
                .bind(&t.name)
                .bind(&t.status)
                .bind(&t.policy)
                .bind(t.updated_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n == 1)
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_by_id", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_by_id"))]
    pub async fn tenant_by_id(&self, id: &str) -> StoreResult<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(tenant_row!(r)),
                None => None,
            })
        })
    }

    /// By id or by slug.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_by_ref", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_by_ref"))]
    pub async fn tenant_by_ref(&self, id_or_slug: &str) -> StoreResult<Option<TenantRow>> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 OR slug = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id_or_slug).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(tenant_row!(r)),
                None => None,
            })
        })
    }

    /// One page of tenants in the order of `sort` (by id, i.e. creation order, by default),
    /// after its cursor.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db list_tenants", otel.kind = "client", db.system = self.dialect(), db.operation.name = "list_tenants"))]
    pub async fn list_tenants(
        &self,
        sort: &crate::paging::Sort,
        limit: i64,
    ) -> StoreResult<Vec<TenantRow>> {
        let (clause, order, binds) = sort.sql("id", 1);
        let sql = format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE {clause} ORDER BY {order} LIMIT ${}",
            binds.len() + 1
        );
        on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in &binds {
                q = q.bind(b);
            }
            let rows = q.bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(tenant_row!(r));
            }
            Ok(out)
        })
    }

    /// Inserts or replaces the roles of a membership.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db upsert_membership", otel.kind = "client", db.system = self.dialect(), db.operation.name = "upsert_membership"))]
    pub async fn upsert_membership(&self, m: &MembershipRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO memberships (user_id, tenant_id, roles, created_at) \
            VALUES ($1, $2, $3, $4) \
            ON CONFLICT (user_id, tenant_id) DO UPDATE SET roles = excluded.roles";
        let roles = serde_json::to_string(&m.roles).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&m.user_id)
                .bind(&m.tenant_id)
                .bind(&roles)
                .bind(m.created_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db membership", otel.kind = "client", db.system = self.dialect(), db.operation.name = "membership"))]
    pub async fn membership(
        &self,
        user_id: &str,
        tenant_id: &str,
    ) -> StoreResult<Option<MembershipRow>> {
        const SQL: &str = "SELECT user_id, tenant_id, roles, created_at FROM memberships \
            WHERE user_id = $1 AND tenant_id = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(user_id).bind(tenant_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(membership_row!(r)),
                None => None,
            })
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db memberships_of_user", otel.kind = "client", db.system = self.dialect(), db.operation.name = "memberships_of_user"))]
    pub async fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<MembershipRow>> {
        const SQL: &str = "SELECT user_id, tenant_id, roles, created_at FROM memberships \
            WHERE user_id = $1 ORDER BY tenant_id";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(user_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(membership_row!(r));
            }
            Ok(out)
        })
    }

    /// The tenants `user_id` is a member of, ordered by id, in one read (a sign-in resolves its
    /// tenant and policy from them).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenants_of_user", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenants_of_user"))]
    pub async fn tenants_of_user(&self, user_id: &str) -> StoreResult<Vec<TenantRow>> {
        const SQL: &str = "SELECT t.id, t.slug, t.name, t.status, t.policy, t.created_at, t.updated_at \
            FROM memberships m JOIN tenants t ON t.id = m.tenant_id \
            WHERE m.user_id = $1 ORDER BY t.id";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(user_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(tenant_row!(r));
            }
            Ok(out)
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_membership", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_membership"))]
    pub async fn delete_membership(&self, user_id: &str, tenant_id: &str) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM memberships WHERE user_id = $1 AND tenant_id = $2";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(user_id).bind(tenant_id).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Members of a tenant in the order of `sort` (by user id by default) after its cursor;
    /// `search` matches a substring of the email or name (case-insensitive).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_members", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_members"))]
    pub async fn tenant_members(
        &self,
        tenant_id: &str,
        search: Option<&str>,
        sort: &crate::paging::Sort,
        limit: i64,
    ) -> StoreResult<Vec<(super::users::UserRow, MembershipRow)>> {
        let (clause, order, binds) = sort.sql("u.id", 3);
        let sql = format!(
            "SELECT u.id, u.email, u.name, u.password_hash, u.tenant_id, u.roles, \
            u.disabled, u.platform_admin, u.home_tenant_id, u.created_at, u.updated_at, m.user_id, m.tenant_id AS m_tenant, m.roles AS m_roles, \
            m.created_at AS m_created FROM memberships m JOIN users u ON u.id = m.user_id \
            WHERE m.tenant_id = $1 AND {clause} \
            AND ($2 = '' OR LOWER(u.email) LIKE $2 OR LOWER(u.name) LIKE $2) \
            ORDER BY {order} LIMIT ${}",
            binds.len() + 3
        );
        let pattern = match search.map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => {
                let escaped: String = s
                    .to_lowercase()
                    .chars()
                    .filter(|c| !matches!(c, '%' | '_' | '\\'))
                    .collect();
                format!("%{escaped}%")
            }
            None => String::new(),
        };
        on_pool!(self, pool => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(tenant_id)
                .bind(&pattern);
            for b in &binds {
                q = q.bind(b);
            }
            let rows = q.bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let user = super::users::UserRow {
                    id: r.try_get("id")?,
                    email: r.try_get("email")?,
                    name: r.try_get("name")?,
                    password_hash: r.try_get("password_hash")?,
                    tenant_id: r.try_get("tenant_id")?,
                    roles: serde_json::from_str(&r.try_get::<String, _>("roles")?)
                        .map_err(|e| StoreError::Corrupt(format!("users.roles: {e}")))?,
                    disabled: r.try_get("disabled")?,
                    platform_admin: r.try_get("platform_admin")?,
                    home_tenant_id: r.try_get("home_tenant_id")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                };
                let m = MembershipRow {
                    user_id: r.try_get("user_id")?,
                    tenant_id: r.try_get("m_tenant")?,
                    roles: serde_json::from_str(&r.try_get::<String, _>("m_roles")?)
                        .map_err(|e| StoreError::Corrupt(format!("memberships.roles: {e}")))?,
                    created_at: r.try_get("m_created")?,
                };
                out.push((user, m));
            }
            Ok(out)
        })
    }

    /// The tenant a session signed in for.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db session_tenant", otel.kind = "client", db.system = self.dialect(), db.operation.name = "session_tenant"))]
    pub async fn session_tenant(&self, session_id: &str) -> StoreResult<Option<String>> {
        const SQL: &str = "SELECT tenant_id FROM sessions WHERE id = $1";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(session_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => r.try_get("tenant_id")?,
                None => None,
            })
        })
    }

    /// Sets a user's password hash and ends their sessions (but `keep_session`: the browser
    /// of a self-service change stays signed in) and revokes all their refresh token families,
    /// in one transaction: a new credential ends what the old one opened.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db set_password", otel.kind = "client", db.system = self.dialect(), db.operation.name = "set_password"))]
    pub async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        const USER: &str = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
        const OTHER_SESSIONS: &str = "UPDATE sessions SET revoked_at = $2 \
            WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n = sqlx::query(USER).bind(user_id).bind(password_hash).bind(now).execute(&mut *tx).await?.rows_affected();
            match keep_session {
                Some(keep) => sqlx::query(OTHER_SESSIONS).bind(user_id).bind(now).bind(keep).execute(&mut *tx).await?,
                None => sqlx::query(END_SESSIONS).bind(user_id).bind(now).execute(&mut *tx).await?,
            };
            sqlx::query(END_FAMILIES).bind(user_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Disables a user (or re-enables), and on disabling ends their sessions and revokes their
    /// refresh token families, in one transaction.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db set_user_disabled", otel.kind = "client", db.system = self.dialect(), db.operation.name = "set_user_disabled"))]
    pub async fn set_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        const USER: &str = "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let n = sqlx::query(USER).bind(user_id).bind(disabled).bind(now).execute(&mut *tx).await?.rows_affected();
            if disabled {
                sqlx::query(END_SESSIONS).bind(user_id).bind(now).execute(&mut *tx).await?;
                sqlx::query(END_FAMILIES).bind(user_id).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Updates a user's name, email and password hash; a new email is not verified yet.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db update_user_profile", otel.kind = "client", db.system = self.dialect(), db.operation.name = "update_user_profile"))]
    pub async fn update_user_profile(&self, u: &super::users::UserRow) -> StoreResult<bool> {
        const SQL: &str = "UPDATE users SET email = $2, name = $3, password_hash = $4, updated_at = $5, \
            email_verified_at = CASE WHEN email = $2 THEN email_verified_at ELSE NULL END, \
            email_vouched_by = CASE WHEN email = $2 THEN email_vouched_by ELSE NULL END WHERE id = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .bind(&u.id)
                .bind(&u.email)
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.updated_at)
                .execute(pool)
                .await?
                .rows_affected() == 1)
        })
    }
}
