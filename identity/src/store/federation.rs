//! Sign-in through external providers: the upstream identities linked to users (`iss` + `sub`,
//! unique per tenant) and the sign-ins under way.

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// An upstream identity (`issuer` + `subject`) linked to a user, in one tenant.
#[derive(Debug, Clone)]
pub struct FederatedIdentityRow {
    pub id: String,
    pub tenant_id: String,
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    /// The upstream address when it was linked (for display only; never a key).
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// A sign-in through a provider under way. The browser holds the token (the upstream `state`,
/// or a link form's field) and a binding cookie; the row keeps the SHA-256 of both.
#[derive(Debug, Clone)]
pub struct FederationPendingRow {
    pub token_hash: Vec<u8>,
    pub binding_hash: Vec<u8>,
    /// [`KIND_AUTHORIZE`], [`KIND_LINK`] or [`KIND_VERIFY`].
    pub kind: String,
    pub tenant_id: String,
    pub provider_id: String,
    /// The pending authorization request (its raw parameters).
    pub request: String,
    pub nonce: Option<String>,
    pub pkce_verifier: Option<String>,
    /// The account a link waits for.
    pub user_id: Option<String>,
    /// The verified upstream identity a link or an address proof waits to store (JSON).
    pub identity: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// On the way to the provider.
pub const KIND_AUTHORIZE: &str = "authorize";
/// Back from the provider, waiting for the existing account's password.
pub const KIND_LINK: &str = "link";
/// Back from the provider with an address that is not trusted, waiting for the mailed link
/// that proves it (no account exists yet).
pub const KIND_VERIFY: &str = "verify";

const IDENTITY_COLUMNS: &str =
    "id, tenant_id, provider_id, issuer, subject, user_id, email, created_at, last_used_at";
const PENDING_COLUMNS: &str = "token_hash, binding_hash, kind, tenant_id, provider_id, request, \
    nonce, pkce_verifier, user_id, identity, created_at, expires_at";

macro_rules! identity_row {
    ($r:expr) => {
        FederatedIdentityRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            provider_id: $r.try_get("provider_id")?,
            issuer: $r.try_get("issuer")?,
            subject: $r.try_get("subject")?,
            user_id: $r.try_get("user_id")?,
            email: $r.try_get("email")?,
            created_at: $r.try_get("created_at")?,
            last_used_at: $r.try_get("last_used_at")?,
        }
    };
}

impl Store {
    /// Links an upstream identity; a unique violation when (tenant, issuer, subject) is linked.
    pub async fn insert_federated_identity(&self, f: &FederatedIdentityRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO federated_identities ({IDENTITY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&f.id)
                .bind(&f.tenant_id)
                .bind(&f.provider_id)
                .bind(&f.issuer)
                .bind(&f.subject)
                .bind(&f.user_id)
                .bind(&f.email)
                .bind(f.created_at)
                .bind(f.last_used_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The link of `issuer` + `subject` in `tenant_id` (another tenant's link finds nothing).
    pub async fn federated_identity(
        &self,
        tenant_id: &str,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<FederatedIdentityRow>> {
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM federated_identities \
             WHERE tenant_id = $1 AND issuer = $2 AND subject = $3"
        );
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant_id).bind(issuer).bind(subject)
                .fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(identity_row!(r)),
                None => None,
            })
        })
    }

    /// Records a sign-in through the link.
    pub async fn touch_federated_identity(&self, id: &str, now: i64) -> StoreResult<()> {
        const SQL: &str = "UPDATE federated_identities SET last_used_at = $2 WHERE id = $1";
        on_pool!(self, pool => {
            sqlx::query(SQL).bind(id).bind(now).execute(pool).await?;
        });
        Ok(())
    }

    /// The identities linked to `user_id` in `tenant_id` (`None`: in every tenant), oldest first.
    pub async fn federated_identities_of_user(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<FederatedIdentityRow>> {
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM federated_identities \
             WHERE user_id = $1 AND ($2 = '' OR tenant_id = $2) ORDER BY created_at, id"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user_id).bind(tenant_id.unwrap_or(""))
                .fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(identity_row!(r));
            }
            Ok(out)
        })
    }

    /// Removes the link `id` of `user_id` in `tenant_id` (`None`: in any tenant); whether it was.
    pub async fn delete_federated_identity(
        &self,
        user_id: &str,
        tenant_id: Option<&str>,
        id: &str,
    ) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM federated_identities \
            WHERE id = $1 AND user_id = $2 AND ($3 = '' OR tenant_id = $3)";
        on_pool!(self, pool => {
            let n = sqlx::query(SQL).bind(id).bind(user_id).bind(tenant_id.unwrap_or(""))
                .execute(pool).await?.rows_affected();
            Ok(n > 0)
        })
    }

    /// Stores a sign-in under way (expired ones go with the housekeeping, [`Store::purge_expired`]).
    pub async fn insert_federation_pending(&self, p: &FederationPendingRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO federation_pending ({PENDING_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&p.token_hash)
                .bind(&p.binding_hash)
                .bind(&p.kind)
                .bind(&p.tenant_id)
                .bind(&p.provider_id)
                .bind(&p.request)
                .bind(&p.nonce)
                .bind(&p.pkce_verifier)
                .bind(&p.user_id)
                .bind(&p.identity)
                .bind(p.created_at)
                .bind(p.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Drops the sign-ins under way that expired before `before`.
    pub async fn purge_federation_pending(&self, before: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM federation_pending WHERE expires_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL).bind(before).execute(pool).await?.rows_affected()))
    }

    /// Takes (deletes and returns) the unexpired sign-in of `token_hash`: single use, of two
    /// callers one gets it.
    pub async fn take_federation_pending(
        &self,
        token_hash: &[u8],
        now: i64,
    ) -> StoreResult<Option<FederationPendingRow>> {
        let sql = format!(
            "DELETE FROM federation_pending WHERE token_hash = $1 RETURNING {PENDING_COLUMNS}"
        );
        on_pool!(self, pool => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(token_hash).fetch_optional(pool).await?;
            let Some(r) = row else { return Ok(None) };
            let p = FederationPendingRow {
                token_hash: r.try_get("token_hash")?,
                binding_hash: r.try_get("binding_hash")?,
                kind: r.try_get("kind")?,
                tenant_id: r.try_get("tenant_id")?,
                provider_id: r.try_get("provider_id")?,
                request: r.try_get("request")?,
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                user_id: r.try_get("user_id")?,
                identity: r.try_get("identity")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            };
            Ok((p.expires_at > now).then_some(p))
        })
    }
}
