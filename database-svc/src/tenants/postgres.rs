//! A tenant's PostgreSQL database and role: created, given (or denied) a login, dropped.
//!
//! Names are `<validated prefix><uuid hex>` and passwords base64url: safe to quote and splice,
//! because roles, databases and passwords cannot be bound parameters.

use sqlx::Executor;

/// `CREATE ROLE`, `CREATE DATABASE … OWNER`, `REVOKE CONNECT … FROM PUBLIC`; each step
/// skipped when already done, so a provisioning interrupted half-way completes on retry.
/// `name` is `<validated prefix><uuid hex>`: safe to quote as an identifier.
pub(super) async fn create_pg_database(
    admin: &sqlx::PgPool,
    name: &str,
) -> Result<(), sqlx::Error> {
    let role: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await?;
    if role.is_none() {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE ROLE \"{name}\" NOLOGIN"
            )))
            .await?;
    }
    // The service works as the tenant's role (SET ROLE): it must be a member.
    if let Err(e) = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "GRANT \"{name}\" TO CURRENT_USER"
        )))
        .await
    {
        tracing::debug!(error = %e, "granting the tenant role to the service user");
    }
    let db: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await?;
    if db.is_none() {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{name}\" OWNER \"{name}\""
            )))
            .await?;
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC"
        )))
        .await?;
    // The owner has these already; granted explicitly so the intent reads in `\l`.
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "GRANT CONNECT, TEMPORARY ON DATABASE \"{name}\" TO \"{name}\""
        )))
        .await?;
    Ok(())
}

/// `Some(password)`: the role may log in with it (`LOGIN PASSWORD`); `None`: it may not
/// (`NOLOGIN PASSWORD NULL`) and its open sessions are terminated. `name` is
/// `<validated prefix><uuid hex>`, the password base64url: both safe to splice (a role's
/// password cannot be a bound parameter).
pub(super) async fn set_pg_password(
    admin: &sqlx::PgPool,
    name: &str,
    password: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = match password {
        Some(p) => format!("ALTER ROLE \"{name}\" LOGIN PASSWORD '{p}'"),
        None => format!("ALTER ROLE \"{name}\" NOLOGIN PASSWORD NULL"),
    };
    admin.execute(sqlx::AssertSqlSafe(sql)).await?;
    if password.is_none() {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(name)
            .execute(admin)
            .await?;
    }
    Ok(())
}

pub(super) async fn drop_pg_database(admin: &sqlx::PgPool, name: &str) -> Result<(), sqlx::Error> {
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS \"{name}\""
        )))
        .await?;
    Ok(())
}
