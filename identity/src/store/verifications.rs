//! Chain-verification jobs (`verification_jobs`): one row per job, so every replica sharing the
//! database reads the same state and progress (see [`crate::verifications`]).

use sqlx::Row;

use super::{Store, StoreResult, on_pool};

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VerificationJobRow {
    pub id: String,
    /// `""`: the platform's chain.
    pub tenant_id: String,
    /// The replica walking the chain.
    pub holder: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub checked: i64,
    pub total: i64,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub finished_at: Option<i64>,
    /// The finished walk's answer (JSON), when `done`.
    pub result: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// Records a new running job. A unique violation when the chain already has a running job.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db insert_verification_job", otel.kind = "client", db.system = self.dialect(), db.operation.name = "insert_verification_job"))]
    pub async fn insert_verification_job(&self, job: &VerificationJobRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO verification_jobs (id, tenant_id, holder, state, checked, \
            total, started_at, heartbeat_at, finished_at, result, error) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        on_pool!(self, pool => {
            sqlx::query(SQL)
                .bind(&job.id)
                .bind(&job.tenant_id)
                .bind(&job.holder)
                .bind(&job.state)
                .bind(job.checked)
                .bind(job.total)
                .bind(job.started_at)
                .bind(job.heartbeat_at)
                .bind(job.finished_at)
                .bind(&job.result)
                .bind(&job.error)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The job `id`, if it exists.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db verification_job", otel.kind = "client", db.system = self.dialect(), db.operation.name = "verification_job"))]
    pub async fn verification_job(&self, id: &str) -> StoreResult<Option<VerificationJobRow>> {
        const SQL: &str = "SELECT id, tenant_id, holder, state, checked, total, started_at, \
            heartbeat_at, finished_at, result, error FROM verification_jobs WHERE id = $1";
        on_pool!(self, pool => {
            Ok(sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?)
        })
    }

    /// The chain's running job, if any.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db running_verification", otel.kind = "client", db.system = self.dialect(), db.operation.name = "running_verification"))]
    pub async fn running_verification(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Option<VerificationJobRow>> {
        const SQL: &str = "SELECT id, tenant_id, holder, state, checked, total, started_at, \
            heartbeat_at, finished_at, result, error FROM verification_jobs \
            WHERE tenant_id = $1 AND state = 'running'";
        on_pool!(self, pool => {
            Ok(sqlx::query_as(SQL).bind(tenant_id).fetch_optional(pool).await?)
        })
    }

    /// Jobs `holder` is running.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db running_verifications_of", otel.kind = "client", db.system = self.dialect(), db.operation.name = "running_verifications_of"))]
    pub async fn running_verifications_of(&self, holder: &str) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) AS n FROM verification_jobs \
            WHERE holder = $1 AND state = 'running'";
        on_pool!(self, pool => {
            let row = sqlx::query(SQL).bind(holder).fetch_one(pool).await?;
            Ok(row.try_get("n")?)
        })
    }

    /// Ends the running jobs whose heartbeat is older than `stale_before` (their replica stopped)
    /// as failed with `error`; how many.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db abandon_verifications", otel.kind = "client", db.system = self.dialect(), db.operation.name = "abandon_verifications"))]
    pub async fn abandon_verifications(
        &self,
        stale_before: i64,
        now: i64,
        error: &str,
    ) -> StoreResult<u64> {
        const SQL: &str = "UPDATE verification_jobs SET state = 'failed', finished_at = $2, \
            error = $3 WHERE state = 'running' AND heartbeat_at < $1";
        on_pool!(self, pool => Ok(sqlx::query(SQL)
            .bind(stale_before)
            .bind(now)
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Publishes the progress of `holder`'s running job; `false` when it is no longer running
    /// there (abandoned by another replica meanwhile).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db verification_progress", otel.kind = "client", db.system = self.dialect(), db.operation.name = "verification_progress"))]
    pub async fn verification_progress(
        &self,
        id: &str,
        holder: &str,
        checked: i64,
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE verification_jobs SET checked = $3, heartbeat_at = $4 \
            WHERE id = $1 AND holder = $2 AND state = 'running'";
        on_pool!(self, pool => Ok(sqlx::query(SQL)
            .bind(id)
            .bind(holder)
            .bind(checked)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
            == 1))
    }

    /// Ends `holder`'s running job as `state` (`done` with `result`, `failed` with `error`).
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db finish_verification", otel.kind = "client", db.system = self.dialect(), db.operation.name = "finish_verification"))]
    pub async fn finish_verification(
        &self,
        id: &str,
        holder: &str,
        (state, checked): (&str, i64),
        (result, error): (Option<&str>, Option<&str>),
        now: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE verification_jobs SET state = $3, checked = $4, result = $5, \
            error = $6, finished_at = $7, heartbeat_at = $7 \
            WHERE id = $1 AND holder = $2 AND state = 'running'";
        on_pool!(self, pool => Ok(sqlx::query(SQL)
            .bind(id)
            .bind(holder)
            .bind(state)
            .bind(checked)
            .bind(result)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
            == 1))
    }

    /// Deletes the chain's finished jobs beyond its newest `keep`.
    #[tracing::instrument(name = "db", skip_all, fields(otel.name = "db trim_verifications", otel.kind = "client", db.system = self.dialect(), db.operation.name = "trim_verifications"))]
    pub async fn trim_verifications(&self, tenant_id: &str, keep: i64) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM verification_jobs WHERE tenant_id = $1 \
            AND state <> 'running' AND id NOT IN (SELECT id FROM verification_jobs \
            WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2)";
        on_pool!(self, pool => Ok(sqlx::query(SQL)
            .bind(tenant_id)
            .bind(keep)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
