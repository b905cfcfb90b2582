//! Measuring rounds and reporting them: per-round ratios against the reference, medians, the
//! machine and the date.

use super::*;
use crate::load::{self, LoadResult, LoadSpec};
use crate::procs::Measured;
use std::time::Duration;

/// One measured target.
#[derive(Debug, Clone)]
pub struct Row {
    pub target: String,
    pub proto: String,
    pub result: LoadResult,
    /// Requests/s of every round, for the spread.
    pub rounds_rps: Vec<f64>,
    pub peak_rss_mib: Option<f64>,
    /// CPU time of the process(es) under test during the measured window.
    pub server_cpu: Option<Duration>,
    /// Load average (1 min) just before the measurement.
    pub load_before: String,
    pub first_error: Option<String>,
}

impl Row {
    fn req_per_cpu_s(&self) -> Option<f64> {
        let cpu = self.server_cpu?.as_secs_f64();
        (cpu > 0.0).then(|| self.result.requests as f64 / cpu)
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Loads `spec` and reads the resources of `measured` around the measured window.
pub async fn measure(
    target: &str,
    proto: &str,
    spec: &LoadSpec,
    measured: &Measured,
) -> anyhow::Result<Row> {
    let load_before = loadavg();
    let warmup = spec.warmup;
    let m = measured.clone();
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        m.cpu_time()
    });
    let result = load::run(spec.clone()).await?;
    let cpu_end = measured.cpu_time();
    let cpu_start = cpu_at_start.await.ok().flatten();
    let server_cpu = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(Row {
        target: target.into(),
        proto: proto.into(),
        rounds_rps: vec![result.rps()],
        first_error: result.first_error.clone(),
        result,
        peak_rss_mib: measured.peak_rss_mib(),
        server_cpu,
        load_before,
    })
}

/// The results as a markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| target | proto | req/s | req/s per round | p50 ms | p90 ms | p99 ms | max ms | errors | peak RSS MiB | server CPU s | req per server CPU-s | load before |\n");
    s.push_str("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in rows {
        let q = |x: f64| format!("{x:.2}");
        let opt =
            |x: Option<f64>, digits: usize| x.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
        let rounds: Vec<String> = r.rounds_rps.iter().map(|v| format!("{v:.0}")).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            r.proto,
            r.result.rps(),
            rounds.join(" / "),
            q(r.result.quantile_ms(0.5)),
            q(r.result.quantile_ms(0.9)),
            q(r.result.quantile_ms(0.99)),
            q(r.result.max_ms()),
            r.result.errors,
            opt(r.peak_rss_mib, 1),
            opt(r.server_cpu.map(|d| d.as_secs_f64()), 2),
            opt(r.req_per_cpu_s(), 0),
            r.load_before,
        );
    }
    s
}

/// The median round of each target (by requests/s), with every round's figure beside it.
pub(crate) fn median_rounds(results: Vec<Vec<Row>>) -> Vec<Row> {
    results
        .into_iter()
        .filter(|rows| !rows.is_empty())
        .map(|mut rows| {
            let all: Vec<f64> = rows.iter().map(|r| r.result.rps()).collect();
            rows.sort_by(|a, b| a.result.rps().total_cmp(&b.result.rps()));
            let mut median = rows.swap_remove(rows.len() / 2);
            median.rounds_rps = all;
            median
        })
        .collect()
}

/// Gateway / nginx per round (the two measured back to back), and the median over rounds.
pub(crate) fn per_round_ratios(targets: &[Target], results: &[Vec<Row>]) -> String {
    let find = |name: &str, proto: &str| {
        targets
            .iter()
            .position(|t| t.name == name && t.proto == proto)
            .map(|i| &results[i])
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mut s = String::new();
    for proto in ["http", "https"] {
        let (Some(g), Some(n)) = (find("gateway", proto), find("nginx", proto)) else {
            continue;
        };
        let pairs = || g.iter().zip(n.iter());
        let rps: Vec<f64> = pairs()
            .map(|(g, n)| g.result.rps() / n.result.rps())
            .collect();
        let p99: Vec<f64> = pairs()
            .map(|(g, n)| g.result.quantile_ms(0.99) / n.result.quantile_ms(0.99))
            .collect();
        let cpu: Vec<f64> = pairs()
            .map(|(g, n)| {
                g.req_per_cpu_s().unwrap_or(f64::NAN) / n.req_per_cpu_s().unwrap_or(f64::NAN)
            })
            .collect();
        let _ = writeln!(
            s,
            "- {proto}, per round (gateway and nginx back to back): throughput {} (median **{:.2}×**), p99 {} (median **{:.2}×**), requests per server CPU-second {} (median **{:.2}×**)",
            list(&rps),
            median(rps.clone()),
            list(&p99),
            median(p99.clone()),
            list(&cpu),
            median(cpu.clone()),
        );
    }
    s
}

pub(crate) fn ratios(rows: &[Row]) -> String {
    let find = |t: &str, p: &str| rows.iter().find(|r| r.target == t && r.proto == p);
    let mut s = String::new();
    for proto in ["http", "https"] {
        if let (Some(g), Some(n)) = (find("gateway", proto), find("nginx", proto)) {
            let _ = writeln!(
                s,
                "- {proto}, median rounds: gateway / nginx throughput **{:.2}×** (target ≥ 1), p99 **{:.2}×** (target ≤ 1), requests per server CPU-second {:.2}×",
                g.result.rps() / n.result.rps(),
                g.result.quantile_ms(0.99) / n.result.quantile_ms(0.99),
                g.req_per_cpu_s().unwrap_or(f64::NAN) / n.req_per_cpu_s().unwrap_or(f64::NAN),
            );
        }
    }
    if let Some(d) = find("direct", "http") {
        for t in ["gateway", "nginx"] {
            if let Some(r) = find(t, "http") {
                let _ = writeln!(
                    s,
                    "- http: {t} / direct throughput {:.2}×",
                    r.result.rps() / d.result.rps()
                );
            }
        }
    }
    s
}

pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpus} CPUs ({model}), {mem} memory; load average (1 min) before each measurement in the table"
    )
}

pub(crate) fn date_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an unknown date".into())
}
