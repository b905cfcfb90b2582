//! External OIDC providers of a tenant (the sealed client secret stays opaque here).

use sqlx::Row;

use super::{Store, StoreError, StoreResult, on_pool};

pub use tansu_shared::admin_api::SignInSettings;

#[derive(Debug, Clone)]
pub struct ProviderRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Sealed under the tenant's data key (see `crate::providers`).
    pub client_secret: Option<Vec<u8>>,
    pub scopes: Vec<String>,
    pub enabled: bool,
    /// How its sign-ins land in the tenant (stored as JSON).
    pub sign_in: SignInSettings,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, tenant_id, name, issuer, client_id, client_secret, scopes, enabled, created_at, updated_at, settings";

macro_rules! provider_row {
    ($r:expr) => {
        ProviderRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            issuer: $r.try_get("issuer")?,
            client_id: $r.try_get("client_id")?,
            client_secret: $r.try_get("client_secret")?,
            scopes: serde_json::from_str(&$r.try_get::<String, _>("scopes")?)
                .map_err(|e| StoreError::Corrupt(format!("external_providers.scopes: {e}")))?,
            enabled: $r.try_get("enabled")?,
            sign_in: serde_json::from_str(&$r.try_get::<String, _>("settings")?)
                .map_err(|e| StoreError::Corrupt(format!("external_providers.settings: {e}")))?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

fn scopes_json(p: &ProviderRow) -> StoreResult<String> {
    serde_json::to_string(&p.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn settings_json(p: &ProviderRow) -> StoreResult<String> {
    serde_json::to_string(&p.sign_in).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// A unique violation means the tenant already has a provider with this issuer.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_provider", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_provider"))]
    pub async fn insert_provider(&self, p: &ProviderRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO external_providers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let scopes = scopes_json(p)?;
        let settings = settings_json(p)?;
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&p.id)
                .bind(&p.tenant_id)
                .bind(&p.name)
                .bind(&p.issuer)
                .bind(&p.client_id)
                .bind(p.client_secret.as_deref())
                .bind(&scopes)
                .bind(p.enabled)
                .bind(p.created_at)
                .bind(p.updated_at)
                .bind(&settings)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Saves every field but the ids and `created_at`; false when the row is gone.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db update_provider", otel.kind = "client", db.system = self.dialect(), db.operation.name = "update_provider"))]
    pub async fn update_provider(&self, p: &ProviderRow) -> StoreResult<bool> {
        const SQL: &str = "UPDATE external_providers SET name = $3, issuer = $4, client_id = $5, \
            client_secret = $6, scopes = $7, enabled = $8, updated_at = $9, settings = $10 \
            WHERE id = $1 AND tenant_id = $2";
        let scopes = scopes_json(p)?;
        let settings = settings_json(p)?;
        on_pool!(self, pool => {
            let n = sqlx::query(SQL)
                .bind(&p.id)
                .bind(&p.tenant_id)
                .bind(&p.name)
                .bind(&p.issuer)
                .bind(&p.client_id)
                .bind(p.client_secret.as_deref())
                .bind(&scopes)
                .bind(p.enabled)
                .bind(p.updated_at)
                .bind(&settings)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(n > 0)
        })
    }

    /// The provider `id` of tenant `tenant_id` (another tenant's id finds nothing).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db provider", otel.kind = "client", db.system = self.dialect(), db.operation.name = "provider"))]
    pub async fn provider(&self, tenant_id: &str, id: &str) -> StoreResult<Option<ProviderRow>> {
        let sql =
            format!("SELECT {COLUMNS} FROM external_providers WHERE tenant_id = $1 AND id = $2");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id).bind(id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(provider_row!(r)),
                None => None,
            })
        })
    }

    /// A page of a tenant's providers, by id (ids are UUIDv7: creation order).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db list_providers", otel.kind = "client", db.system = self.dialect(), db.operation.name = "list_providers"))]
    pub async fn list_providers(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ProviderRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM external_providers WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(provider_row!(r));
            }
            Ok(out)
        })
    }

    /// The enabled providers of a tenant, by id (for its login page).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db enabled_providers", otel.kind = "client", db.system = self.dialect(), db.operation.name = "enabled_providers"))]
    pub async fn enabled_providers(&self, tenant_id: &str) -> StoreResult<Vec<ProviderRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM external_providers WHERE tenant_id = $1 AND enabled = $2 ORDER BY id LIMIT 50"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id).bind(true).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(provider_row!(r));
            }
            Ok(out)
        })
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_provider", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_provider"))]
    pub async fn delete_provider(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM external_providers WHERE tenant_id = $1 AND id = $2";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL).bind(tenant_id).bind(id).execute(pool).await?.rows_affected();
            Ok(n > 0)
        })
    }
}
