//! `tansu-bench storage`: object transfer rates through the TLS gateway next to a
//! plain file copy on the same disk, and small-object request rates.
//!
//! The storage service runs as its own process (`serve-storage`, SQLite metadata and the local
//! backend in a temp dir), the gateway in this one ([`tansu_bench::storage_rig`]). Per object
//! size: sequential uploads (`PUT`, each a streamed body; the service stages it, fsyncs,
//! renames and commits) and downloads (`GET`, read to the end) on one connection for
//! `--duration` seconds; the reference is `std::fs::copy` of a file of the same size in the
//! same directory plus an fsync of the copy, for the same time. Then 4 KiB objects: `PUT`s
//! (each connection cycling over its own 64 keys) and `GET`s (one object per connection) at
//! `--connections` connections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::Full;
use tansu_bench::storage_rig::{ServeStorageArgs, StorageRig};

use crate::gateway::{Row, machine, measure, table};
use crate::load::{self, LoadSpec, Req, Script, Step};
use crate::procs::Measured;

#[derive(clap::Args)]
pub struct Args {
    /// Object sizes in MiB for the transfer rates.
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 64])]
    sizes: Vec<u64>,
    /// Seconds per transfer measurement (each size, each direction, and the file copy).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Connections of the 4 KiB request-rate runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured seconds of each 4 KiB run (after `--warmup`).
    #[arg(long, default_value_t = 10.0)]
    small_duration: f64,
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Servers started by the benchmark live at most this long, whatever happens to it.
use tansu_bench::gateway_rig::CHILD_LIFETIME;
const SMALL: usize = 4096;
const KEYS_PER_CONNECTION: usize = 64;

/// `tansu-bench serve-storage` (internal): the storage service for the rig.
pub async fn serve(args: ServeStorageArgs) -> anyhow::Result<()> {
    crate::procs::exit_with_parent(CHILD_LIFETIME);
    tansu_bench::storage_rig::serve_storage(args).await
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.sizes.is_empty() && args.sizes.iter().all(|s| (1..=1024).contains(s)),
        "--sizes: 1 to 1024 MiB each"
    );
    anyhow::ensure!(
        (1..=1000).contains(&args.connections),
        "--connections: 1 to 1000"
    );
    let per_transfer = crate::seconds(args.duration, "--duration")?;
    let dir = tempfile::Builder::new()
        .prefix("tansu-bench-storage-")
        .tempdir_in(std::env::current_dir()?)?;
    let exe = std::env::current_exe().context("locating tansu-bench")?;
    let rig = StorageRig::start(&exe, dir.path()).await?;
    let outcome = tokio::select! {
        r = run_with(&args, per_transfer, &rig, dir.path()) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    rig.stop().await;
    let report = outcome?;
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// One transfer measurement: MiB/s over `count` objects.
struct Rate {
    count: u64,
    mib_s: f64,
}

fn rate(bytes: u64, count: u64, elapsed: Duration) -> Rate {
    Rate {
        count,
        mib_s: (bytes * count) as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
    }
}

/// Repeats `op` until `budget` has passed (at least twice); the rate of its `bytes`.
async fn repeat<F, Fut>(bytes: u64, budget: Duration, mut op: F) -> anyhow::Result<Rate>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let start = Instant::now();
    let mut count = 0;
    while count < 2 || start.elapsed() < budget {
        op(count).await?;
        count += 1;
    }
    Ok(rate(bytes, count, start.elapsed()))
}

/// The reference: copy `src` to a new file next to it and fsync the copy.
fn copy_once(src: &Path, n: u64) -> anyhow::Result<()> {
    let dst = src.with_extension(format!("copy{}", n % 2));
    std::fs::copy(src, &dst)?;
    std::fs::File::open(&dst)?.sync_all()?;
    Ok(())
}

async fn run_with(
    args: &Args,
    per_transfer: Duration,
    rig: &StorageRig,
    dir: &Path,
) -> anyhow::Result<String> {
    let http = rig.client()?;
    let token = rig.token();
    let r = http
        .put(rig.url("/api/buckets/bench"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(r.status() == 201, "creating the bucket: {}", r.status());

    let mut transfer_rows = Vec::new();
    for &mib in &args.sizes {
        let bytes = mib << 20;
        let body = Bytes::from(vec![0xa5u8; bytes as usize]);
        let src = dir.join(format!("copy-source-{mib}"));
        std::fs::write(&src, &body)?;
        std::fs::File::open(&src)?.sync_all()?;
        let copy = {
            let src = src.clone();
            repeat(bytes, per_transfer, move |n| {
                let src = src.clone();
                async move { tokio::task::spawn_blocking(move || copy_once(&src, n)).await? }
            })
            .await?
        };
        let url = rig.url(&format!("/api/buckets/bench/objects/size-{mib}"));
        let up = repeat(bytes, per_transfer, |_| {
            let req = http.put(&url).bearer_auth(&token).body(body.clone());
            async move {
                let r = req.send().await?;
                anyhow::ensure!(r.status().is_success(), "upload: {}", r.status());
                Ok(())
            }
        })
        .await?;
        let down = repeat(bytes, per_transfer, |_| {
            let req = http.get(&url).bearer_auth(&token);
            async move {
                let mut r = req.send().await?;
                anyhow::ensure!(r.status() == 200, "download: {}", r.status());
                let mut n = 0u64;
                while let Some(c) = r.chunk().await? {
                    n += c.len() as u64;
                }
                anyhow::ensure!(n == bytes, "download: {n} bytes of {bytes}");
                Ok(())
            }
        })
        .await?;
        transfer_rows.push((mib, copy, up, down));
        let _ = std::fs::remove_file(&src);
    }

    // 4 KiB objects at `connections` connections: PUT, then GET of what the PUTs stored.
    let warmup = crate::seconds(args.warmup, "--warmup")?;
    let duration = crate::seconds(args.small_duration, "--small-duration")?;
    let measured = Measured {
        pids: vec![rig.storage_pid],
    };
    let spec = |script: load::ScriptFactory| LoadSpec {
        addr: rig.gateway,
        host: format!("localhost:{}", rig.gateway.port()),
        path: "/".into(),
        tls: Some((
            load::tls_connector(rig.cert_pem.as_bytes()).expect("the rig's certificate"),
            rustls::pki_types::ServerName::try_from("localhost").expect("a valid name"),
        )),
        connections: args.connections,
        warmup,
        duration,
        request_timeout: Duration::from_secs(10),
        script: Some(script),
    };
    let auth = Arc::new(format!("Bearer {token}"));
    let host = Arc::new(format!("localhost:{}", rig.gateway.port()));
    let small = Bytes::from(vec![0x5au8; SMALL]);
    let put_factory: load::ScriptFactory = {
        let (auth, host, small) = (auth.clone(), host.clone(), small.clone());
        Arc::new(move |conn| {
            Box::new(Small {
                method: http::Method::PUT,
                conn,
                keys: KEYS_PER_CONNECTION,
                next: 0,
                auth: auth.clone(),
                host: host.clone(),
                body: small.clone(),
            }) as Box<dyn Script>
        })
    };
    let put_row = measure("4 KiB PUT", "https", &spec(put_factory), &measured).await?;
    // The GETs read key 0 of each connection: make sure every one exists.
    for conn in 0..args.connections {
        let r = http
            .put(rig.url(&format!("/api/buckets/bench/objects/small/{conn}-0")))
            .bearer_auth(&token)
            .body(small.clone())
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "writing small/{conn}-0: {}",
            r.status()
        );
    }
    let get_factory: load::ScriptFactory = Arc::new(move |conn| {
        Box::new(Small {
            method: http::Method::GET,
            conn,
            keys: 1,
            next: 0,
            auth: auth.clone(),
            host: host.clone(),
            body: Bytes::new(),
        }) as Box<dyn Script>
    });
    let get_row = measure("4 KiB GET", "https", &spec(get_factory), &measured).await?;

    Ok(report(
        args,
        &transfer_rows,
        &[put_row, get_row],
        rig.storage_peak_rss_kib(),
    ))
}

/// One 4 KiB request per operation on this connection's own keys (`small/<conn>-<i>`, `i` below
/// `keys`).
struct Small {
    method: http::Method,
    conn: usize,
    /// How many keys the connection cycles over.
    keys: usize,
    next: usize,
    auth: Arc<String>,
    host: Arc<String>,
    body: Bytes,
}

impl Script for Small {
    fn start(&mut self) -> Req {
        let path = format!(
            "/storage/api/buckets/bench/objects/small/{}-{}",
            self.conn,
            self.next % self.keys
        );
        self.next += 1;
        Request::builder()
            .method(self.method.clone())
            .uri(path)
            .header(header::HOST, self.host.as_str())
            .header(header::AUTHORIZATION, self.auth.as_str())
            .body(Full::new(self.body.clone()))
            .expect("a benchmark request is well-formed")
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        let ok = status.is_success() && (self.method != http::Method::GET || body.len() == SMALL);
        if ok {
            Step::Done
        } else {
            Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

fn report(
    args: &Args,
    transfers: &[(u64, Rate, Rate, Rate)],
    small: &[Row],
    peak_kib: Option<u64>,
) -> String {
    let mut s = format!(
        "## tansu-bench storage — {}\n\n{}\n\nTransfers through the TLS gateway, one connection, \
         sequential, {} s each; the file copy is `std::fs::copy` + fsync in the same directory. \
         Load average (1 min) at the start: {}.\n\n",
        crate::gateway::date_utc(),
        machine(),
        args.duration,
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into()),
    );
    s.push_str(
        "| object | file copy MiB/s | upload MiB/s | upload / copy | download MiB/s | download / copy | objects up/down |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (mib, copy, up, down) in transfers {
        s.push_str(&format!(
            "| {mib} MiB | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {}/{} |\n",
            copy.mib_s,
            up.mib_s,
            up.mib_s / copy.mib_s,
            down.mib_s,
            down.mib_s / copy.mib_s,
            up.count,
            down.count,
        ));
    }
    s.push_str(&format!(
        "\n4 KiB objects at {} connections through the gateway (TLS):\n\n{}\n",
        args.connections,
        table(small)
    ));
    if let Some(k) = peak_kib {
        s.push_str(&format!(
            "\nStorage process peak RSS over the whole run: {:.1} MiB.\n",
            k as f64 / 1024.0
        ));
    }
    s
}
