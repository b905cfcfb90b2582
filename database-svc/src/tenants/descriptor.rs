//! What a tenant's database looks like to the platform: its descriptor and credential.

use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Backend, TenantError, Tenants};
use crate::store::{on_pool, rfc3339};

/// What a provisioning call returns: how the tenant's database is reached, and (see
/// [`Credential`]) with what.
#[derive(Debug, Clone, Serialize)]
pub struct Descriptor {
    pub tenant: Uuid,
    pub backend: &'static str,
    pub status: String,
    /// SQLite: the file name under the data dir; PostgreSQL: the database name.
    pub database: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<String>,
    /// The tenant's scoped credential. PostgreSQL: present only in the answer that created
    /// (or restored) the database and in a rotation's answer — the password is not stored
    /// anywhere but in PostgreSQL's own SCRAM verifier. SQLite: always (it holds no secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Credential>,
}

/// A credential that reaches the tenant's own database and nothing else.
#[derive(Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Credential {
    /// Log in as the tenant's own role; it may connect to its database only.
    Postgres {
        user: String,
        password: String,
        database: String,
        host: String,
        port: u16,
        /// `postgres://user:password@host:port/database`
        url: String,
    },
    /// Embedded SQLite has no database-level login: the tenant's app reaches its data only
    /// through the document API, with an access token from identity of `audience` and
    /// `scopes`, whose `tid` is `tenant`, sent with `X-Tansu-Tenant: tenant`. No secret here.
    DocumentApi {
        base_path: &'static str,
        audience: String,
        scopes: [&'static str; 2],
        tenant_header: &'static str,
        tenant: Uuid,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Postgres { user, .. } => f
                .debug_struct("Postgres")
                .field("user", user)
                .finish_non_exhaustive(),
            Credential::DocumentApi { tenant, .. } => f
                .debug_struct("DocumentApi")
                .field("tenant", tenant)
                .finish_non_exhaustive(),
        }
    }
}

/// 32 bytes from the operating system's CSPRNG, base64url: 43 characters of `[A-Za-z0-9_-]`,
/// safe inside a SQL string literal and a URL's userinfo as they are.
pub(super) fn generate_password() -> Result<String, TenantError> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use base64::Engine;
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| TenantError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Tenants {
    pub(super) fn pg_credential(&self, d: &Descriptor, password: String) -> Option<Credential> {
        let (Some(user), Some(host), Some(port)) = (d.role.clone(), d.host.clone(), d.port) else {
            return None;
        };
        // `user` and `database` are `<validated prefix><uuid hex>`, the password base64url:
        // nothing in the URL needs escaping. An IPv6 host goes in brackets.
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let url = format!(
            "postgres://{user}:{password}@{host_part}:{port}/{}",
            d.database
        );
        Some(Credential::Postgres {
            user,
            password,
            database: d.database.clone(),
            host,
            port,
            url,
        })
    }

    /// Which of `tenants` the catalog holds as active, in one round trip.
    pub(super) async fn active_among(
        &self,
        tenants: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, TenantError> {
        const SQLITE: &str = "SELECT id FROM tenants WHERE status = 'active' \
             AND id IN (SELECT value FROM json_each($1))";
        const PG: &str = "SELECT id FROM tenants WHERE status = 'active' \
             AND id = ANY(SELECT jsonb_array_elements_text($1::jsonb))";
        if tenants.is_empty() {
            return Ok(Default::default());
        }
        let ids: Vec<String> = tenants.iter().map(Uuid::to_string).collect();
        let list = serde_json::Value::from(ids).to_string();
        let active: Vec<String> = match &self.catalog {
            tansu_shared::db::Pool::Sqlite(p) => {
                sqlx::query_scalar(SQLITE).bind(list).fetch_all(p).await?
            }
            tansu_shared::db::Pool::Postgres(p) => {
                sqlx::query_scalar(PG).bind(list).fetch_all(p).await?
            }
        };
        Ok(active.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// The tenant's catalog entry.
    pub async fn record(&self, tenant: Uuid) -> Result<Option<Descriptor>, TenantError> {
        let row = on_pool!(&self.catalog, p => {
            sqlx::query(
                "SELECT backend, location, status, created_at, purge_after FROM tenants WHERE id = $1",
            )
            .bind(tenant.to_string())
            .fetch_optional(p)
            .await?
            .map(|r| -> Result<_, sqlx::Error> {
                Ok((
                    r.try_get::<String, _>("backend")?,
                    r.try_get::<String, _>("location")?,
                    r.try_get::<String, _>("status")?,
                    r.try_get::<i64, _>("created_at")?,
                    r.try_get::<Option<i64>, _>("purge_after")?,
                ))
            })
            .transpose()?
        });
        Ok(row.map(|(backend, location, status, created, purge)| {
            let pg = backend == "postgres";
            let (host, port) = match (&self.backend, pg) {
                (Backend::Postgres { options, .. }, true) => (
                    Some(options.get_host().to_owned()),
                    Some(options.get_port()),
                ),
                _ => (None, None),
            };
            let credential = (!pg).then(|| Credential::DocumentApi {
                base_path: "/db/api",
                audience: self.config.audience.clone(),
                scopes: ["db.read", "db.write"],
                tenant_header: "X-Tansu-Tenant",
                tenant,
            });
            Descriptor {
                credential,
                tenant,
                backend: if pg { "postgres" } else { "sqlite" },
                status,
                role: pg.then(|| location.clone()),
                database: location,
                host,
                port,
                created_at: rfc3339(created),
                purge_after: purge.map(rfc3339),
            }
        }))
    }
}
