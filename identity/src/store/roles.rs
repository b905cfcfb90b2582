//! Custom per-tenant roles and the scopes they allow.

use sqlx::Row;

use super::{Store, StoreError, StoreResult, on_pool};

#[derive(Debug, Clone)]
pub struct RoleRow {
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

macro_rules! role_row {
    ($r:expr) => {
        RoleRow {
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            description: $r.try_get("description")?,
            scopes: serde_json::from_str(&$r.try_get::<String, _>("scopes")?)
                .map_err(|e| StoreError::Corrupt(format!("tenant_roles.scopes: {e}")))?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_roles", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_roles"))]
    pub async fn tenant_roles(&self, tenant_id: &str) -> StoreResult<Vec<RoleRow>> {
        const SQL: &str = "SELECT tenant_id, name, description, scopes, created_at, updated_at \
            FROM tenant_roles WHERE tenant_id = $1 ORDER BY name";
        on_pool!(self, pool => {
            let rows = sqlx::query(SQL).bind(tenant_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(role_row!(r));
            }
            Ok(out)
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_role", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_role"))]
    pub async fn tenant_role(&self, tenant_id: &str, name: &str) -> StoreResult<Option<RoleRow>> {
        const SQL: &str = "SELECT tenant_id, name, description, scopes, created_at, updated_at \
            FROM tenant_roles WHERE tenant_id = $1 AND name = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(tenant_id).bind(name).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(role_row!(r)),
                None => None,
            })
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_tenant_role", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_tenant_role"))]
    pub async fn insert_tenant_role(&self, r: &RoleRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO tenant_roles (tenant_id, name, description, scopes, created_at, updated_at) \
            VALUES ($1, $2, $3, $4, $5, $6)";
        let scopes = serde_json::to_string(&r.scopes).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&r.tenant_id)
                .bind(&r.name)
                .bind(&r.description)
                .bind(&scopes)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db update_tenant_role", otel.kind = "client", db.system = self.dialect(), db.operation.name = "update_tenant_role"))]
    pub async fn update_tenant_role(&self, r: &RoleRow) -> StoreResult<bool> {
        const SQL: &str = "UPDATE tenant_roles SET description = $3, scopes = $4, updated_at = $5 \
            WHERE tenant_id = $1 AND name = $2";
        let scopes = serde_json::to_string(&r.scopes).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL)
                .bind(&r.tenant_id)
                .bind(&r.name)
                .bind(&r.description)
                .bind(&scopes)
                .bind(r.updated_at)
                .execute(pool)
                .await?
                .rows_affected() == 1)
        })
    }

    /// Deletes a role unless a member of the tenant still has it: `Ok(None)` when it does not
    /// exist, `Ok(Some(false))` when it is in use.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_tenant_role", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_tenant_role"))]
    pub async fn delete_tenant_role(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> StoreResult<Option<bool>> {
        const USERS: &str = "SELECT roles FROM memberships WHERE tenant_id = $1";
        const DELETE: &str = "DELETE FROM tenant_roles WHERE tenant_id = $1 AND name = $2";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(USERS).bind(tenant_id).fetch_all(&mut *tx).await?;
            for r in rows {
                let roles: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("roles")?)
                    .map_err(|e| StoreError::Corrupt(format!("memberships.roles: {e}")))?;
                if roles.iter().any(|x| x == name) {
                    return Ok(Some(false));
                }
            }
            let n = sqlx::query(DELETE).bind(tenant_id).bind(name).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok((n == 1).then_some(true))
        })
    }
}
