//! The schemas of database-svc's two kinds of database, as numbered files
//! (`migrations/{catalog,tenant}/{sqlite,postgres}/NNNN_<what>.sql`, the workspace's layout), and
//! the ledger they are applied with.
//!
//! The ledger is `tansu_migrations` rather than sqlx's own: every tenant database and catalog
//! deployed so far records its versions there, and each migration runs in a write transaction of
//! its own with its record (on PostgreSQL under an advisory lock, so replicas take turns).

use tansu_shared::db::{BeginWrite as _, Migrations, Pool};

use super::{now_ms, on_pool};
use crate::query::Dialect;

/// The tenant database's schema. Append only: applied versions are never run twice.
pub static TENANT_MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/tenant/sqlite"),
    postgres: sqlx::migrate!("migrations/tenant/postgres"),
};

/// The catalog's schema (the service's own database: which tenant lives where).
pub static CATALOG_MIGRATIONS: Migrations = Migrations {
    sqlite: sqlx::migrate!("migrations/catalog/sqlite"),
    postgres: sqlx::migrate!("migrations/catalog/postgres"),
};

/// Applies the migrations not yet recorded, each in its own transaction with its record.
pub async fn migrate(pool: &Pool, migrations: &Migrations) -> Result<(), sqlx::Error> {
    let dialect = pool.dialect();
    let pending = migrations.of(pool);
    on_pool!(pool, p => {
        let mut tx = p.begin_write().await?;
        if dialect == Dialect::Postgres {
            // The ledger too: two replicas' concurrent `CREATE TABLE IF NOT EXISTS` race on
            // PostgreSQL's catalog (a duplicate key in `pg_type`) without the lock.
            sqlx::query("SELECT pg_advisory_xact_lock(727368)").execute(&mut *tx).await?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tansu_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        for m in pending.iter() {
            let mut tx = p.begin_write().await?;
            if dialect == Dialect::Postgres {
                // Replicas starting together migrate one at a time.
                sqlx::query("SELECT pg_advisory_xact_lock(727368)").execute(&mut *tx).await?;
            }
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM tansu_migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            // The name as recorded before the files: `documents_and_outbox`.
            let name = m.description.replace(' ', "_");
            sqlx::raw_sql(m.sql.clone()).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO tansu_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(&name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::debug!(version = m.version, name, "migration applied");
        }
        Ok(())
    })
}
