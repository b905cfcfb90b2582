//! Pending invitations of existing accounts to a tenant.

use sqlx::Row;

use super::tenants::MembershipRow;
use super::{Store, StoreError, StoreResult, on_pool};

#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: String,
    pub tenant_id: String,
    /// Lower-cased, as stored on users.
    pub email: String,
    pub roles: Vec<String>,
    /// The inviter's actor string (`user:<id>`, `client:<id>`).
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str = "id, tenant_id, email, roles, invited_by, created_at, expires_at";

macro_rules! invitation_row {
    ($r:expr) => {
        InvitationRow {
            id: $r.try_get("id")?,
            tenant_id: $r.try_get("tenant_id")?,
            email: $r.try_get("email")?,
            roles: serde_json::from_str(&$r.try_get::<String, _>("roles")?)
                .map_err(|e| StoreError::Corrupt(format!("invitations.roles: {e}")))?,
            invited_by: $r.try_get("invited_by")?,
            created_at: $r.try_get("created_at")?,
            expires_at: $r.try_get("expires_at")?,
        }
    };
}

impl Store {
    /// Stores an invitation, replacing an earlier one of the same tenant and email (a renewed
    /// invitation keeps one row).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db upsert_invitation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "upsert_invitation"))]
    pub async fn upsert_invitation(&self, i: &InvitationRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO invitations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, email) DO UPDATE SET id = excluded.id, roles = excluded.roles, \
             invited_by = excluded.invited_by, created_at = excluded.created_at, \
             expires_at = excluded.expires_at"
        );
        let roles = serde_json::to_string(&i.roles).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&i.id)
                .bind(&i.tenant_id)
                .bind(&i.email)
                .bind(&roles)
                .bind(&i.invited_by)
                .bind(i.created_at)
                .bind(i.expires_at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// A tenant's unexpired invitations, newest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db tenant_invitations", otel.kind = "client", db.system = self.dialect(), db.operation.name = "tenant_invitations"))]
    pub async fn tenant_invitations(
        &self,
        tenant_id: &str,
        now: i64,
    ) -> StoreResult<Vec<InvitationRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM invitations WHERE tenant_id = $1 AND expires_at > $2 \
             ORDER BY created_at DESC LIMIT 500"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id).bind(now).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(invitation_row!(r));
            }
            Ok(out)
        })
    }

    /// The unexpired invitations addressed to `email`, oldest first.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db invitations_for", otel.kind = "client", db.system = self.dialect(), db.operation.name = "invitations_for"))]
    pub async fn invitations_for(&self, email: &str, now: i64) -> StoreResult<Vec<InvitationRow>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM invitations WHERE email = $1 AND expires_at > $2 \
             ORDER BY created_at LIMIT 100"
        );
        on_pool!(self, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).bind(now).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(invitation_row!(r));
            }
            Ok(out)
        })
    }

    /// Deletes a tenant's invitation; true when there was one.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db delete_invitation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "delete_invitation"))]
    pub async fn delete_invitation(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM invitations WHERE tenant_id = $1 AND id = $2";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(tenant_id).bind(id).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Accepts the invitation `id` addressed to `email`: deletes it, adds the membership
    /// (keeping the roles of an existing one) and, when the account's home tenant is another
    /// one, ends that tenant's hold on its credentials (`home_tenant_id` cleared), in one
    /// transaction. `None` when no such unexpired invitation exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db accept_invitation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "accept_invitation"))]
    pub async fn accept_invitation(
        &self,
        id: &str,
        email: &str,
        user_id: &str,
        now: i64,
    ) -> StoreResult<Option<MembershipRow>> {
        let select = format!(
            "SELECT {COLUMNS} FROM invitations WHERE id = $1 AND email = $2 AND expires_at > $3"
        );
        const DELETE: &str = "DELETE FROM invitations WHERE id = $1";
        const MEMBERSHIP: &str = "INSERT INTO memberships (user_id, tenant_id, roles, created_at) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, tenant_id) DO NOTHING";
        const DETACH: &str = "UPDATE users SET home_tenant_id = NULL \
            WHERE id = $1 AND home_tenant_id <> $2";
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
                .bind(id).bind(email).bind(now)
                .fetch_optional(&mut *tx).await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let invitation = invitation_row!(row);
            let gone = sqlx::query(DELETE).bind(id).execute(&mut *tx).await?.rows_affected();
            if gone != 1 {
                return Ok(None);
            }
            let roles = serde_json::to_string(&invitation.roles).unwrap_or_else(|_| "[]".into());
            sqlx::query(MEMBERSHIP)
                .bind(user_id)
                .bind(&invitation.tenant_id)
                .bind(&roles)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(DETACH)
                .bind(user_id)
                .bind(&invitation.tenant_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(MembershipRow {
                user_id: user_id.to_owned(),
                tenant_id: invitation.tenant_id,
                roles: invitation.roles,
                created_at: now,
            }))
        })
    }

    /// Deletes expired invitations; how many went.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db purge_invitations", otel.kind = "client", db.system = self.dialect(), db.operation.name = "purge_invitations"))]
    pub async fn purge_invitations(&self, now: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM invitations WHERE expires_at <= $1";
        on_pool!(self, pool => {
            Ok(sqlx::query(SQL).bind(now).execute(pool).await?.rows_affected())
        })
    }

    /// Declines (deletes) the invitation `id` addressed to `email`: the tenant it was for, or
    /// `None` when there was none.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db decline_invitation", otel.kind = "client", db.system = self.dialect(), db.operation.name = "decline_invitation"))]
    pub async fn decline_invitation(&self, id: &str, email: &str) -> StoreResult<Option<String>> {
        const SQL: &str =
            "DELETE FROM invitations WHERE id = $1 AND email = $2 RETURNING tenant_id";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(id).bind(email).fetch_optional(pool).await?;
            Ok(match row {
                Some(r) => Some(r.try_get("tenant_id")?),
                None => None,
            })
        })
    }
}
