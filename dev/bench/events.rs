//! `tansu-bench events` — the security-event benchmark: ingest rate through
//! `POST /admin/security-events/ingest` (batches of 1,000, several connections, one tenant chain
//! per connection) up to a million events, then the latency of the query API's filters and of
//! chain verification over that log. On SQLite and PostgreSQL, identity in its own process.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::procs::{self, Measured};
use crate::seed::{
    StoreArgs, admin_token, create_tenant, quantile, report_on_each_store, reporter_token,
};
use crate::token::{enc, json_ok};

#[derive(clap::Args)]
pub struct Args {
    /// Events to ingest.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Events per ingest request (identity takes at most 1,000).
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Concurrent ingest connections (each writes its own tenant's chain).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Repetitions of each query.
    #[arg(long, default_value_t = 30)]
    queries: usize,
    /// Stop ingesting after this many seconds even if fewer events went in.
    #[arg(long, default_value_t = 600.0)]
    max_seconds: f64,
    #[command(flatten)]
    on: StoreArgs,
}

fn batch_body(n: u64, tenant: &str, i: u64) -> serde_json::Value {
    let kinds = [
        "access.denied",
        "access.denied",
        "access.denied",
        "rate.limited",
    ];
    let events: Vec<serde_json::Value> = (0..n)
        .map(|k| {
            let seq = i * n + k;
            serde_json::json!({
                "id": uuid::Uuid::now_v7().to_string(),
                "type": kinds[usize::try_from(seq % 4).unwrap_or(0)],
                "tenant": tenant,
                "actor": format!("user:{}", seq % 1000),
                "outcome": if seq.is_multiple_of(10) { "failure" } else { "denied" },
                "ip": format!("10.0.{}.{}", seq % 250, seq % 200),
                "user_agent": "tansu-bench",
                "details": {"method": "GET", "path": "/db/api/collections/orders", "status": 403},
            })
        })
        .collect();
    serde_json::json!({ "events": events })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!((1..=1000).contains(&args.batch), "--batch: 1 to 1000");
    anyhow::ensure!(args.connections > 0, "--connections: at least 1");
    let command = format!(
        "tansu-bench events --events {} --batch {} --connections {} --queries {}",
        args.events, args.batch, args.connections, args.queries
    );
    let args = &args;
    report_on_each_store(&command, &args.on, |url, dir| async move {
        run_store(args, &url, &dir).await
    })
    .await
}

async fn run_store(args: &Args, url: &str, dir: &Path) -> anyhow::Result<String> {
    let (mut child, words) = procs::spawn_identity(&[
        "--database-url".into(),
        url.into(),
        "--data-dir".into(),
        dir.display().to_string(),
    ])
    .await?;
    let outcome = measure_store(args, &words, child.id()).await;
    procs::stop(&mut child, Duration::from_secs(5)).await;
    outcome
}

async fn measure_store(args: &Args, words: &[String], pid: Option<u32>) -> anyhow::Result<String> {
    let addr: SocketAddr = words.first().context("address")?.parse()?;
    crate::load::check_loopback(addr)?;
    let measured = Measured {
        pids: pid.into_iter().collect(),
    };
    let base = format!("http://{addr}/");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let admin = admin_token(&http, &base).await?;
    let token = reporter_token(&http, &base, &admin).await?;
    let mut tenants = Vec::new();
    for i in 0..args.connections {
        let (slug, name) = (format!("bench-{i}"), format!("Bench {i}"));
        tenants.push(create_tenant(&http, &base, &admin, &slug, &name).await?);
    }

    // Ingest.
    let requests = args.events.div_ceil(args.batch);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + crate::seconds(args.max_seconds, "--max-seconds")?;
    let cpu_before = measured.cpu_time();
    let mut tasks = tokio::task::JoinSet::new();
    for tenant in tenants.clone() {
        let (http, next, token, url) = (
            http.clone(),
            next.clone(),
            token.clone(),
            format!("{base}admin/security-events/ingest"),
        );
        let batch = args.batch;
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut sent = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || Instant::now() >= deadline {
                    break;
                }
                let body = serde_json::to_vec(&batch_body(batch, &tenant, i))?;
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let status = resp.status();
                let text = resp.text().await?;
                anyhow::ensure!(status.as_u16() == 202, "ingest: {status}: {text}");
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                sent += batch;
            }
            anyhow::Ok((sent, latencies))
        });
    }
    let mut ingested = 0;
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (sent, l) = r??;
        ingested += sent;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, measured.cpu_time()) {
        (Some(a), Some(b)) => format!("{:.1}", b.saturating_sub(a).as_secs_f64()),
        _ => "–".into(),
    };
    latencies.sort_by(f64::total_cmp);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| ingest | events | seconds | events/s | batch p50 ms | batch p99 ms | identity CPU s | identity peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n| {} connections × batches of {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {} | {} |\n",
        args.connections,
        args.batch,
        ingested,
        elapsed,
        ingested as f64 / elapsed,
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        cpu,
        measured
            .peak_rss_mib()
            .map_or("–".into(), |m| format!("{m:.0}")),
    );

    // Queries over the whole log.
    let tenant = &tenants[0];
    let middle = {
        let v = json_ok(
            http.get(format!(
                "{base}admin/security-events?tenant={tenant}&limit=1000"
            ))
            .bearer_auth(&admin)
            .send()
            .await?,
            "query",
        )
        .await?;
        v["items"][500]["id"].as_str().unwrap_or("").to_owned()
    };
    let from = {
        let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
        t.format(&time::format_description::well_known::Rfc3339)?
    };
    let queries: Vec<(&str, String)> = vec![
        (
            "first page (100), no filter",
            "admin/security-events?limit=100".into(),
        ),
        (
            "one tenant, 100",
            format!("admin/security-events?tenant={tenant}&limit=100"),
        ),
        (
            "tenant + type + outcome, 100",
            format!(
                "admin/security-events?tenant={tenant}&type=rate.limited&outcome=failure&limit=100"
            ),
        ),
        (
            "one actor, 100",
            "admin/security-events?actor=user:7&limit=100".into(),
        ),
        (
            "last minute, 100",
            format!("admin/security-events?from={}&limit=100", enc(&from)),
        ),
        (
            "next page after a cursor, 100",
            format!("admin/security-events?tenant={tenant}&after={middle}&limit=100"),
        ),
        (
            "NDJSON export, 10,000",
            format!("admin/security-events/export?tenant={tenant}&limit=10000"),
        ),
    ];
    let _ = writeln!(
        out,
        "| query ({} runs each) | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|",
        args.queries
    );
    for (name, path) in &queries {
        let mut times = Vec::new();
        for _ in 0..args.queries {
            let t = Instant::now();
            let resp = http
                .get(format!("{base}{path}"))
                .bearer_auth(&admin)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "{name}: {}", resp.status());
            resp.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {:.1} | {:.1} |",
            quantile(&times, 0.5),
            quantile(&times, 0.99),
            times.last().copied().unwrap_or(f64::NAN)
        );
    }
    let t = Instant::now();
    let v = json_ok(
        http.get(format!(
            "{base}admin/security-events/verify?tenant={tenant}"
        ))
        .bearer_auth(&admin)
        .send()
        .await?,
        "verify",
    )
    .await?;
    let _ = writeln!(
        out,
        "\nChain verification of one tenant ({} events): {:.2} s, ok = {}.\n",
        v["checked"],
        t.elapsed().as_secs_f64(),
        v["ok"]
    );
    eprintln!("{out}");
    Ok(out)
}
