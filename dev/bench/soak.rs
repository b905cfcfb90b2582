//! `tansu-bench soak` — the platform as separate processes under mixed traffic for a long time,
//! watching every process's resident memory and open file descriptors for a growth trend.
//!
//! The service binaries next to this executable (`tansu-identity`, `tansu-database`,
//! `tansu-storage`, `tansu-gateway`: build them with it) run on SQLite in dev mode, each its own
//! process. Workers keep asking for tokens, writing and reading documents, uploading, downloading
//! and deleting objects, and fetching the keys, through the gateway (TLS), for `--minutes`; every
//! answer is read to its end, so the workers' connections are kept and reused as a real client's
//! are. Every `--sample` seconds each process's `VmRSS` and the number of entries in
//! `/proc/<pid>/fd` are recorded; at the end, the least-squares slope of each over the samples
//! after the warm-up (`--warmup-minutes`, capped at a third of the run): a leak shows as a slope
//! that stays positive from run to run, noise as one that changes sign.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use tansu_shared::testing::processes::{Replica, bin_dir, free_port};

const DEV_SECRET: &str = "soak-dev-client-secret-0123456789abcdef";
const SERVICES: [&str; 4] = ["identity", "database", "storage", "gateway"];

#[derive(clap::Args)]
pub struct Args {
    /// How long the traffic runs.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Seconds between two samples of every process.
    #[arg(long, default_value_t = 60.0)]
    sample: f64,
    /// Samples taken before this are not part of the slopes (caches, pools and allocator
    /// arenas fill up first); at most a third of the run.
    #[arg(long, default_value_t = 5.0)]
    warmup_minutes: f64,
    /// Concurrent clients (each loops over the whole mix).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Also write the report here (markdown).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// One sample of one process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_min: f64,
    rss_kib: u64,
    fds: u64,
}

fn sample(pid: u32, at_min: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at_min,
        rss_kib,
        fds,
    })
}

/// Least-squares slope of `y` over `x` (per unit of `x`); `None` with fewer than two points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

/// The running platform: its processes and the gateway's base URL.
struct Platform {
    replicas: Vec<Replica>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> anyhow::Result<Platform> {
    for s in SERVICES {
        let bin = bin_dir().join(format!("tansu-{s}"));
        anyhow::ensure!(
            bin.exists(),
            "{} is missing: build the service binaries with tansu-bench (cargo build --release --workspace --bins)",
            bin.display()
        );
    }
    let dir = tempfile::Builder::new().prefix("tansu-soak-").tempdir()?;
    let root = dir.path();
    let cert = tansu_dev::tls::ensure_dev_certificate(&root.join("tls"))?;
    let [gw, id, db, st] = [free_port(), free_port(), free_port(), free_port()];
    let public = format!("https://127.0.0.1:{gw}");
    let issuer = format!("{public}/identity/");
    let jwks = format!("http://127.0.0.1:{id}/.well-known/jwks");
    let identity = format!("http://127.0.0.1:{id}/");
    let reporting = format!(
        "identity_url = \"{identity}\"\nclient_id = \"tansu-dashboard\"\nclient_secret = \"{DEV_SECRET}\"\n"
    );
    let config = format!(
        r#"
[identity]
listen = "127.0.0.1:{id}"
issuer = "{issuer}"
data_dir = "{root}/identity"
dev_mode = true
dev_client_secret = "{DEV_SECRET}"
database_service_url = "http://127.0.0.1:{db}/"
provisioning_token_url = "{identity}connect/token"

[database]
listen = "127.0.0.1:{db}"
issuer = "{issuer}"
discovery_url = ""
jwks_uri = "{jwks}"
data_dir = "{root}/database"

[database.events]
{reporting}
[database.tenant_directory]
{reporting}
[storage]
listen = "127.0.0.1:{st}"
issuer = "{issuer}"
jwks_uri = "{jwks}"
data_dir = "{root}/storage"

[storage.events]
{reporting}
[storage.tenant_directory]
{reporting}
[gateway]
listen_https = "127.0.0.1:{gw}"
listen_http = ""
listen_internal = ""
tls_cert = "{cert}"
tls_key = "{key}"
dev_mode = true
routes = [
  {{ prefix = "/identity", upstreams = ["http://127.0.0.1:{id}"] }},
  {{ prefix = "/db", upstreams = ["http://127.0.0.1:{db}"] }},
  {{ prefix = "/storage", upstreams = ["http://127.0.0.1:{st}"] }},
]

[gateway.tenant_directory]
{reporting}
[gateway.rate_limit]
enabled = false
"#,
        root = root.display(),
        cert = cert.cert_path.display(),
        key = cert.key_path.display(),
    );
    let config_path = root.join("tansu.toml");
    std::fs::write(&config_path, config)?;
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs)?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes())?)
        .timeout(Duration::from_secs(20))
        .build()?;
    let mut replicas = Vec::new();
    for (service, port) in [
        ("identity", id),
        ("database", db),
        ("storage", st),
        ("gateway", gw),
    ] {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut r = Replica::new(
            service,
            service,
            addr,
            config_path.clone(),
            Vec::new(),
            &logs,
        );
        r.start();
        let url = match service {
            "gateway" => format!("https://{addr}/health"),
            _ => format!("http://{addr}/health/ready"),
        };
        r.wait_ready(&http, &url, Duration::from_secs(120)).await;
        replicas.push(r);
    }
    Ok(Platform {
        replicas,
        base: public,
        http,
        _dir: dir,
    })
}

async fn json_of(r: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let r = r.send().await.with_context(|| what.to_owned())?;
    let status = r.status();
    anyhow::ensure!(status.is_success(), "{what}: {status}");
    Ok(r.json().await.unwrap_or(Value::Null))
}

/// A tenant with a database and a bucket, and a client that may use both: its credentials.
async fn tenant(p: &Platform) -> anyhow::Result<(String, String)> {
    let token = |id: &str, secret: &str, scope: &str| {
        p.http
            .post(format!("{}/identity/connect/token", p.base))
            .basic_auth(id.to_owned(), Some(secret.to_owned()))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
    };
    let admin = json_of(
        token("tansu-dashboard", DEV_SECRET, "admin.full db.provision"),
        "admin token",
    )
    .await?["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let t = json_of(
        p.http
            .post(format!("{}/identity/admin/tenants", p.base))
            .bearer_auth(&admin)
            .json(&json!({"slug": "soak", "name": "Soak"})),
        "create tenant",
    )
    .await?;
    let tid = t["id"].as_str().context("tenant id")?.to_owned();
    json_of(
        p.http
            .put(format!("{}/db/provision/{tid}", p.base))
            .bearer_auth(&admin),
        "provision",
    )
    .await?;
    let c = json_of(
        p.http
            .post(format!("{}/identity/admin/clients", p.base))
            .bearer_auth(&admin)
            .json(&json!({
                "name": "soak app",
                "tenant_id": tid,
                "grant_types": ["client_credentials"],
                "scopes": ["db.read", "db.write", "storage.read", "storage.write"],
            })),
        "create client",
    )
    .await?;
    let client = (
        c["client_id"].as_str().context("client_id")?.to_owned(),
        c["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned(),
    );
    let app = json_of(
        token(
            &client.0,
            &client.1,
            "db.read db.write storage.read storage.write",
        ),
        "tenant token",
    )
    .await?["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    json_of(
        p.http
            .post(format!("{}/db/api/collections", p.base))
            .bearer_auth(&app)
            .json(&json!({"name": "soak"})),
        "create collection",
    )
    .await?;
    json_of(
        p.http
            .put(format!("{}/storage/api/buckets/soak", p.base))
            .bearer_auth(&app),
        "create bucket",
    )
    .await?;
    Ok(client)
}

/// Counts of the traffic.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Failed requests by step and answer (the status, or what went wrong on the way).
    failures: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Counts {
    /// Counts one answer of `step` and reads its body to the end, as a client that keeps its
    /// connections does: the body as JSON (`Null` when it is not JSON) when it succeeded.
    async fn answer(
        &self,
        step: &str,
        r: Result<reqwest::Response, reqwest::Error>,
    ) -> Option<Value> {
        let why = match r {
            Ok(r) => {
                let status = r.status();
                match r.bytes().await {
                    Ok(body) if status.is_success() => {
                        self.ok.fetch_add(1, Ordering::Relaxed);
                        return Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    }
                    Ok(_) => status.as_u16().to_string(),
                    Err(_) => "body".to_owned(),
                }
            }
            Err(e) if e.is_timeout() => "timeout".to_owned(),
            Err(e) if e.is_connect() => "connect".to_owned(),
            Err(_) => "transport".to_owned(),
        };
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(format!("{step} {why}"))
            .or_default() += 1;
        None
    }

    /// The failures as `step answer ×n`, comma-separated.
    fn failures(&self) -> String {
        let f = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f.iter()
            .map(|(what, n)| format!("{what} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One worker: the whole mix, over and over, until `stop`.
async fn worker(
    p: Arc<(reqwest::Client, String)>,
    client: (String, String),
    n: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let (http, base) = (&p.0, &p.1);
    let body = vec![b'x'; 4096];
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let r = http
            .post(format!("{base}/identity/connect/token"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "db.read db.write storage.read storage.write"),
            ])
            .send()
            .await;
        let token = counts
            .answer("token", r)
            .await
            .and_then(|v| v["access_token"].as_str().map(str::to_owned));
        let Some(token) = token else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // A few requests per token, as an app would between refreshes.
        for _ in 0..5 {
            let doc = http
                .post(format!("{base}/db/api/collections/soak/documents"))
                .bearer_auth(&token)
                .json(&json!({"worker": n, "round": round}))
                .send()
                .await;
            let id = counts
                .answer("document insert", doc)
                .await
                .and_then(|v| v["id"].as_str().map(str::to_owned));
            if let Some(id) = id {
                let url = format!("{base}/db/api/collections/soak/documents/{id}");
                let read = http.get(&url).bearer_auth(&token).send().await;
                counts.answer("document read", read).await;
                let delete = http.delete(&url).bearer_auth(&token).send().await;
                counts.answer("document delete", delete).await;
            }
            let object = format!("{base}/storage/api/buckets/soak/objects/w{n}");
            let put = http
                .put(&object)
                .bearer_auth(&token)
                .body(body.clone())
                .send()
                .await;
            counts.answer("object upload", put).await;
            let get = http.get(&object).bearer_auth(&token).send().await;
            counts.answer("object download", get).await;
            let delete = http.delete(&object).bearer_auth(&token).send().await;
            counts.answer("object delete", delete).await;
            let jwks = http
                .get(format!("{base}/identity/.well-known/jwks"))
                .send()
                .await;
            counts.answer("jwks", jwks).await;
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let total = crate::seconds(args.minutes * 60.0, "--minutes")?;
    let every = crate::seconds(args.sample, "--sample")?.max(Duration::from_secs(1));
    let warmup_min = args.warmup_minutes.clamp(0.0, args.minutes / 3.0);
    let p = start().await?;
    let client = tenant(&p).await?;
    let pids: Vec<(String, u32)> = p
        .replicas
        .iter()
        .map(|r| Ok((r.name.clone(), r.pid().context("a running process")?)))
        .collect::<anyhow::Result<_>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let shared = Arc::new((p.http.clone(), p.base.clone()));
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..args.clients.max(1) {
        workers.spawn(worker(
            shared.clone(),
            client.clone(),
            n,
            stop.clone(),
            counts.clone(),
        ));
    }
    let started = Instant::now();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); pids.len()];
    let mut rows = String::new();
    loop {
        let at_min = started.elapsed().as_secs_f64() / 60.0;
        let mut line = format!("| {at_min:.1} |");
        for (i, (name, pid)) in pids.iter().enumerate() {
            let s = sample(*pid, at_min).with_context(|| format!("{name} (pid {pid}) is gone"))?;
            let _ = write!(line, " {:.1} | {} |", s.rss_kib as f64 / 1024.0, s.fds);
            samples[i].push(s);
        }
        let _ = write!(
            line,
            " {} | {} |",
            counts.ok.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed)
        );
        println!("{line}");
        rows.push_str(&line);
        rows.push('\n');
        if started.elapsed() >= total {
            break;
        }
        tokio::time::sleep(every.min(total.saturating_sub(started.elapsed()))).await;
    }
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}

    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Soak: {:.0} min of mixed traffic ({} clients), samples every {:.0} s, slopes after {:.1} min\n",
        args.minutes,
        args.clients.max(1),
        every.as_secs_f64(),
        warmup_min
    );
    let _ = writeln!(
        report,
        "Requests: {} succeeded, {} failed.\n",
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed)
    );
    if counts.failed.load(Ordering::Relaxed) > 0 {
        let _ = writeln!(report, "Failed: {}.\n", counts.failures());
    }
    let _ = writeln!(
        report,
        "| process | RSS first → last (MiB) | RSS slope (KiB/min) | fds first → last | fd slope (/min) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    for (i, (name, _)) in pids.iter().enumerate() {
        let after: Vec<&Sample> = samples[i]
            .iter()
            .filter(|s| s.at_min >= warmup_min)
            .collect();
        let rss = slope(
            &after
                .iter()
                .map(|s| (s.at_min, s.rss_kib as f64))
                .collect::<Vec<_>>(),
        );
        let fds = slope(
            &after
                .iter()
                .map(|s| (s.at_min, s.fds as f64))
                .collect::<Vec<_>>(),
        );
        let (first, last) = (after.first(), after.last());
        let _ = writeln!(
            report,
            "| {name} | {:.1} → {:.1} | {} | {} → {} | {} |",
            first.map_or(0.0, |s| s.rss_kib as f64 / 1024.0),
            last.map_or(0.0, |s| s.rss_kib as f64 / 1024.0),
            rss.map_or("n/a".into(), |v| format!("{v:+.1}")),
            first.map_or(0, |s| s.fds),
            last.map_or(0, |s| s.fds),
            fds.map_or("n/a".into(), |v| format!("{v:+.2}")),
        );
    }
    let mut header = String::from("\n| min |");
    for (name, _) in &pids {
        let _ = write!(header, " {name} RSS (MiB) | {name} fds |");
    }
    header.push_str(" ok | failed |\n|");
    header.push_str(&"---|".repeat(1 + 2 * pids.len() + 2));
    let _ = writeln!(report, "{header}\n{rows}");
    crate::print_report(&report, args.out.as_deref())?;
    anyhow::ensure!(
        counts.failed.load(Ordering::Relaxed) == 0,
        "requests failed during the soak"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slope;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 * x as f64 + 7.0)).collect();
        assert!((slope(&line).unwrap() - 3.0).abs() < 1e-9);
        let flat = [(0.0, 5.0), (1.0, 6.0), (2.0, 5.0), (3.0, 6.0)];
        assert!(slope(&flat).unwrap().abs() < 0.5);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
    }
}
