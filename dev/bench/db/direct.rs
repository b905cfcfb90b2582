//! The document benchmark's reference: the same reads and writes straight through sqlx.

use super::*;
use crate::load::LoadResult;
use serde_json::Value;
use sqlx::types::Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tansu_database::store::{Pool, sql};
use tokio::time::Instant;

/// Runs the same code on whichever engine's pool it is (each arm type-checked for its own).
macro_rules! with_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::Postgres($p) => $body,
        }
    };
}

/// A get as database-svc runs it: the document by id, its body decoded.
pub(crate) async fn direct_get(pool: &Pool, id: &str) -> anyhow::Result<()> {
    with_pool!(pool, p => {
        let row = sqlx::query(sql::GET_DOCUMENT)
            .bind(COLLECTION)
            .bind(id)
            .fetch_optional(p)
            .await?
            .context("no such document")?;
        let _: Json<Value> = row.try_get("body")?;
        let _: i64 = row.try_get("version")?;
        Ok(())
    })
}

/// An insert as database-svc runs it: the collection's schema lookup, then one write
/// transaction (collection check with its lock, the document, one change-feed number and
/// row), committed.
pub(crate) async fn direct_insert(pool: &Pool, data: &Value) -> anyhow::Result<()> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = tansu_database::store::now_ms();
    let exists = format!(
        "{}{}",
        sql::COLLECTION_EXISTS,
        sql::share_lock(pool.dialect())
    );
    with_pool!(pool, p => {
        sqlx::query(sql::GET_COLLECTION)
            .bind(COLLECTION)
            .fetch_optional(p)
            .await?
            .context("no such collection")?;
        let mut tx = p.begin_write().await?;
        let found: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(exists))
            .bind(COLLECTION)
            .fetch_optional(&mut *tx)
            .await?;
        found.context("no such collection")?;
        let inserted = sqlx::query(sql::INSERT_DOCUMENT)
            .bind(COLLECTION)
            .bind(&id)
            .bind(Json(data))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        anyhow::ensure!(inserted == 1, "document {id} exists");
        let seq: i64 = sqlx::query_scalar(sql::NEXT_SEQ)
            .bind(1i64)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(sql::INSERT_CHANGE)
            .bind(seq)
            .bind(COLLECTION)
            .bind(&id)
            .bind("insert")
            .bind(1i64)
            .bind(Json(data))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The direct side: `connections` tasks, each running `op` one after the other, with the
/// load generator's warm-up, window and accounting (every operation started in the window
/// counts; latency from start to end).
pub(crate) async fn direct_load(
    pool: Pool,
    op: Op,
    connections: usize,
    documents: u64,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let (from, until) = (start + warmup, start + warmup + duration);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (pool, next) = (pool.clone(), next.clone());
        tasks.spawn(async move {
            let mut picks = Picks::new(c as u64 + 1);
            let mut r = LoadResult::default();
            loop {
                let started = Instant::now();
                if started >= until {
                    break;
                }
                let work = async {
                    match op {
                        Op::Get => direct_get(&pool, &doc_id(picks.below(documents))).await,
                        Op::Insert => {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            direct_insert(&pool, &document(n)).await
                        }
                    }
                };
                let outcome = tokio::time::timeout(Duration::from_secs(5), work).await;
                if started < from {
                    continue;
                }
                match outcome {
                    Ok(Ok(())) => {
                        r.requests += 1;
                        let us = started.elapsed().as_micros();
                        r.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Ok(Err(e)) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    Err(_) => {
                        r.errors += 1;
                        r.first_error.get_or_insert_with(|| "timed out".into());
                    }
                }
            }
            r
        });
    }
    let mut total = LoadResult {
        window: duration,
        ..LoadResult::default()
    };
    while let Some(r) = tasks.join_next().await {
        let r = r.context("a direct worker failed")?;
        total.requests += r.requests;
        total.errors += r.errors;
        total.latencies_us.extend(r.latencies_us);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.latencies_us.sort_unstable();
    Ok(total)
}
