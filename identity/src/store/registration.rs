//! A registration's rows, written in one transaction: all of them or none.

use super::events::EventRow;
use super::tenants::{MembershipRow, TenantRow};
use super::users::UserRow;
use super::{Store, StoreResult, on_pool};

/// Everything a registration stores in identity's database.
pub struct RegistrationRows {
    pub tenant: TenantRow,
    /// (wrapped data key, master key id)
    pub data_key: (Vec<u8>, String),
    /// (name, version, ciphertext)
    pub secrets: Vec<(String, i64, Vec<u8>)>,
    pub user: UserRow,
    pub membership: MembershipRow,
    /// The new tenant's first security events, already chained (seq 1…).
    pub events: Vec<EventRow>,
}

impl Store {
    /// Inserts the tenant, its vault, the owner, the membership and the events in one
    /// transaction, in that order. A unique violation (email or slug taken meanwhile) or any
    /// other failure rolls everything back.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_registration", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_registration"))]
    pub async fn insert_registration(&self, r: &RegistrationRows) -> StoreResult<()> {
        let tenant_sql = format!(
            "INSERT INTO tenants ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            super::tenants::TENANT_COLUMNS
        );
        const DATA_KEY: &str = "INSERT INTO tenant_data_keys (tenant_id, wrapped_key, master_key_id, created_at) \
            VALUES ($1, $2, $3, $4)";
        const SECRET: &str = "INSERT INTO tenant_secrets (tenant_id, name, version, ciphertext, created_at) \
            VALUES ($1, $2, $3, $4, $5)";
        let user_sql = format!(
            "INSERT INTO users ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            super::users::USER_COLUMNS
        );
        const MEMBERSHIP: &str = "INSERT INTO memberships (user_id, tenant_id, roles, created_at) VALUES ($1, $2, $3, $4)";
        let event_sql = format!(
            "INSERT INTO security_events ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            super::events::COLUMNS
        );
        let t = &r.tenant;
        let u = &r.user;
        let m = &r.membership;
        let user_roles = serde_json::to_string(&u.roles).unwrap_or_else(|_| "[]".into());
        let member_roles = serde_json::to_string(&m.roles).unwrap_or_else(|_| "[]".into());
        on_pool!(self, pool => {
            let _turn = self.serial_write().await;
            let mut tx = pool.begin().await?;
            sqlx::query(sqlx::AssertSqlSafe(tenant_sql.clone()))
                .bind(&t.id)
                .bind(&t.slug)
                .bind(&t.name)
                .bind(&t.status)
                .bind(&t.policy)
                .bind(t.created_at)
                .bind(t.updated_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(DATA_KEY)
                .bind(&t.id)
                .bind(&r.data_key.0)
                .bind(&r.data_key.1)
                .bind(t.created_at)
                .execute(&mut *tx)
                .await?;
            for (name, version, ciphertext) in &r.secrets {
                sqlx::query(SECRET)
                    .bind(&t.id)
                    .bind(name)
                    .bind(*version)
                    .bind(ciphertext)
                    .bind(t.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(sqlx::AssertSqlSafe(user_sql.clone()))
                .bind(&u.id)
                .bind(&u.email)
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(&u.tenant_id)
                .bind(&user_roles)
                .bind(u.disabled)
                .bind(u.created_at)
                .bind(u.updated_at)
                .bind(u.platform_admin)
                .bind(&u.home_tenant_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(MEMBERSHIP)
                .bind(&m.user_id)
                .bind(&m.tenant_id)
                .bind(&member_roles)
                .bind(m.created_at)
                .execute(&mut *tx)
                .await?;
            for e in &r.events {
                sqlx::query(sqlx::AssertSqlSafe(event_sql.clone()))
                    .bind(&e.id)
                    .bind(&e.tenant_id)
                    .bind(e.seq)
                    .bind(e.at)
                    .bind(&e.kind)
                    .bind(&e.actor)
                    .bind(&e.ip)
                    .bind(&e.user_agent)
                    .bind(&e.outcome)
                    .bind(&e.details)
                    .bind(&e.trace_id)
                    .bind(&e.prev_hash)
                    .bind(&e.hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
