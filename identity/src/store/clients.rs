//! Rows of the OAuth client registry (`clients`).

use sqlx::Row;

use super::{Store, StoreError, StoreResult, on_pool};

/// One registered client as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub client_id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    pub confidential: bool,
    /// SHA-256 of the secret; `None` for public clients.
    pub secret_hash: Option<Vec<u8>>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// private_key_jwt clients: their public keys (a JWK Set as JSON); no secret then.
    pub jwks: Option<String>,
    /// First-party (platform) clients skip the consent page.
    pub first_party: bool,
    pub access_token_lifetime_secs: Option<i64>,
    pub signing_alg: String,
    /// Browser origins allowed at the token endpoint (public clients; serialized origins).
    pub allowed_origins: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("confidential", &self.confidential)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, client_id, tenant_id, name, confidential, secret_hash, grant_types, \
    scopes, redirect_uris, access_token_lifetime_secs, signing_alg, created_at, updated_at, \
    post_logout_redirect_uris, jwks, first_party, allowed_origins";

fn list(json: String, column: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("clients.{column}: {e}")))
}

fn json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

macro_rules! client_row {
    ($r:expr) => {
        ClientRow {
            id: $r.try_get("id")?,
            client_id: $r.try_get("client_id")?,
            tenant_id: $r.try_get("tenant_id")?,
            name: $r.try_get("name")?,
            confidential: $r.try_get("confidential")?,
            secret_hash: $r.try_get("secret_hash")?,
            grant_types: list($r.try_get("grant_types")?, "grant_types")?,
            scopes: list($r.try_get("scopes")?, "scopes")?,
            redirect_uris: list($r.try_get("redirect_uris")?, "redirect_uris")?,
            post_logout_redirect_uris: list(
                $r.try_get("post_logout_redirect_uris")?,
                "post_logout_redirect_uris",
            )?,
            jwks: $r.try_get("jwks")?,
            first_party: $r.try_get("first_party")?,
            access_token_lifetime_secs: $r.try_get("access_token_lifetime_secs")?,
            signing_alg: $r.try_get("signing_alg")?,
            allowed_origins: list($r.try_get("allowed_origins")?, "allowed_origins")?,
            created_at: $r.try_get("created_at")?,
            updated_at: $r.try_get("updated_at")?,
        }
    };
}

impl Store {
    /// Inserts a client; a duplicate `client_id` is a unique violation.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_client", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_client"))]
    pub async fn insert_client(&self, c: &ClientRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO clients ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&c.id)
            .bind(&c.client_id)
            .bind(&c.tenant_id)
            .bind(&c.name)
            .bind(c.confidential)
            .bind(&c.secret_hash)
            .bind(json(&c.grant_types))
            .bind(json(&c.scopes))
            .bind(json(&c.redirect_uris))
            .bind(c.access_token_lifetime_secs)
            .bind(&c.signing_alg)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(json(&c.post_logout_redirect_uris))
            .bind(&c.jwks)
            .bind(c.first_party)
            .bind(json(&c.allowed_origins))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db client_by_client_id", otel.kind = "client", db.system = self.dialect(), db.operation.name = "client_by_client_id"))]
    pub async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        let sql = format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(client_id)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(r) => Some(client_row!(r)),
                None => None,
            })
        })
    }

    /// Clients ordered by `client_id`, at most `limit`, after `after` (cursor paging).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db list_clients", otel.kind = "client", db.system = self.dialect(), db.operation.name = "list_clients"))]
    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ClientRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(client_row!(r));
            }
            Ok(out)
        })
    }

    /// Replaces the mutable fields of a client. `false` when it does not exist.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db update_client", otel.kind = "client", db.system = self.dialect(), db.operation.name = "update_client"))]
    pub async fn update_client(&self, c: &ClientRow) -> StoreResult<bool> {
        const SQL: &str = "UPDATE clients SET name = $2, grant_types = $3, scopes = $4, \
            redirect_uris = $5, access_token_lifetime_secs = $6, signing_alg = $7, \
            secret_hash = $8, updated_at = $9, post_logout_redirect_uris = $10, jwks = $11, first_party = $12, \
            allowed_origins = $13 WHERE client_id = $1";
        let affected = on_pool!(self, pool => sqlx::query(SQL)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(json(&c.grant_types))
            .bind(json(&c.scopes))
            .bind(json(&c.redirect_uris))
            .bind(c.access_token_lifetime_secs)
            .bind(&c.signing_alg)
            .bind(&c.secret_hash)
            .bind(c.updated_at)
            .bind(json(&c.post_logout_redirect_uris))
            .bind(&c.jwks)
            .bind(c.first_party)
            .bind(json(&c.allowed_origins))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(affected == 1)
    }

    /// The scopes `user_id` granted to `client_id`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db consent", otel.kind = "client", db.system = self.dialect(), db.operation.name = "consent"))]
    pub async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Vec<String>> {
        const SQL: &str = "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(user_id).bind(client_id).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => r
                    .try_get::<String, _>("scopes")?
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            })
        })
    }

    /// Stores the scopes a user granted to a client (replacing the earlier set).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db save_consent", otel.kind = "client", db.system = self.dialect(), db.operation.name = "save_consent"))]
    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
            ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(user_id).bind(client_id).bind(scopes.join(" ")).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// Records a used client assertion id; `false` when it was used before (a replay).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db use_client_assertion", otel.kind = "client", db.system = self.dialect(), db.operation.name = "use_client_assertion"))]
    pub async fn use_client_assertion(&self, id: &str, expires_at: i64) -> StoreResult<bool> {
        const SQL: &str = "INSERT INTO client_assertions (id, expires_at) VALUES ($1, $2) \
            ON CONFLICT (id) DO NOTHING";
        let n = on_pool!(self, pool => sqlx::query(SQL).bind(id).bind(expires_at).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_client_assertions", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_client_assertions"))]
    pub async fn purge_client_assertions(&self, now: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM client_assertions WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(now).execute(pool).await?.rows_affected()))
    }

    /// `false` when it did not exist.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_client", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_client"))]
    pub async fn delete_client(&self, client_id: &str) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM clients WHERE client_id = $1";
        let affected = on_pool!(self, pool => sqlx::query(SQL)
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(affected == 1)
    }
}
