//! The storage service behind Tansu's TLS gateway, with the service in a process of its own:
//! what the 1 GiB memory test (`dev/bench/tests/storage_memory.rs`) and `tansu-bench storage`
//! measure.
//!
//! The service runs as `tansu-bench serve-storage` (so its peak resident memory, `VmHWM`, is
//! its own), on a fresh data directory with SQLite metadata and the local backend, verifying
//! tokens against an in-process issuer's JWKS. The gateway (self-signed certificate, one route
//! `/storage` that accepts bodies up to 2 GiB, rate limiting off: transfers are measured, not
//! the limiter) runs in the calling process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tansu_shared::auth::{AccessClaims, Audience};
use tansu_shared::testing::issuer::{TestIssuer, TestKey, now, rsa_key, sign};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The tenant every request of the rig acts for.
pub const TENANT: &str = "0190f5c0-0000-7000-8000-00000000b0b0";

/// `tansu-bench serve-storage`: what the child needs to know.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeStorageArgs {
    #[arg(long)]
    pub issuer: String,
    #[arg(long)]
    pub jwks_uri: url::Url,
    #[arg(long)]
    pub data_dir: PathBuf,
}

/// The child's side: serves storage on an ephemeral loopback port, announced on stdout as
/// `LISTEN <addr>`, until the process ends.
pub async fn serve_storage(args: ServeStorageArgs) -> anyhow::Result<()> {
    let config = tansu_storage::Config {
        listen: "127.0.0.1:0".into(),
        issuer: args.issuer,
        jwks_uri: Some(args.jwks_uri),
        data_dir: args.data_dir,
        // Far above what a test or a benchmark run stores.
        quota_bytes: 1 << 40,
        quota_objects: 1 << 30,
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    println!("LISTEN {}", listener.local_addr()?);
    tansu_storage::serve_on(listener, config, std::future::pending()).await
}

/// The storage process and the gateway in front of it.
pub struct StorageRig {
    _issuer: TestIssuer,
    issuer_url: String,
    key: TestKey,
    storage: Child,
    pub storage_pid: u32,
    pub gateway: SocketAddr,
    pub cert_pem: String,
    cancel: CancellationToken,
    gateway_task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl StorageRig {
    /// Starts `bench_exe serve-storage` with its data under `dir`, then the gateway. The child
    /// exits when its stdin closes, so it never outlives the rig.
    pub async fn start(bench_exe: &Path, dir: &Path) -> anyhow::Result<StorageRig> {
        let key = rsa_key("rig");
        let issuer = TestIssuer::start(&[&key]).await;
        let mut storage = Command::new(bench_exe)
            .arg("serve-storage")
            .args(["--issuer", &issuer.issuer])
            .args(["--jwks-uri", &issuer.state.jwks_uri])
            .arg("--data-dir")
            .arg(dir.join("storage"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} serve-storage", bench_exe.display()))?;
        let storage_pid = storage.id().context("the storage process id")?;
        let stdout = storage
            .stdout
            .take()
            .context("the storage process's stdout")?;
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .context("storage did not report its address in 60 s")??
        .context("storage exited before listening")?;
        let upstream = line
            .strip_prefix("LISTEN ")
            .with_context(|| format!("unexpected line from storage: {line:?}"))?;

        let cert = tansu_dev::tls::ensure_dev_certificate(&dir.join("tls"))?;
        let mut config = tansu_gateway::Config {
            listen_https: "127.0.0.1:0".into(),
            listen_http: String::new(),
            tls_cert: cert.cert_path.clone(),
            tls_key: cert.key_path.clone(),
            routes: vec![tansu_gateway::Route {
                prefix: "/storage".into(),
                upstreams: vec![format!("http://{upstream}")],
            }],
            route_settings: vec![tansu_gateway::RouteSettings {
                prefix: "/storage".into(),
                max_body_bytes: Some(2 << 30),
                verify_tokens: None,
            }],
            tenants: None,
            ..Default::default()
        };
        config.rate_limit.enabled = false;
        config.limits.request_timeout_ms = 600_000;
        let https = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gateway = https.local_addr()?;
        let cancel = CancellationToken::new();
        let gateway_task = tokio::spawn(tansu_gateway::serve_on(
            https,
            None,
            config,
            cancel.clone().cancelled_owned(),
        ));
        let rig = StorageRig {
            issuer_url: issuer.issuer.clone(),
            _issuer: issuer,
            key,
            storage,
            storage_pid,
            gateway,
            cert_pem: cert.cert_pem,
            cancel,
            gateway_task,
        };
        rig.wait_ready().await?;
        Ok(rig)
    }

    /// Polls storage through the gateway until it answers (the gateway also learns it is up).
    /// `/health/live`: the readiness details are not routed publicly.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let http = self.client()?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match http.get(self.url("/health/live")).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                _ if tokio::time::Instant::now() > deadline => {
                    anyhow::bail!("storage not ready through the gateway in 60 s")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// A read/write token of [`TENANT`] for the storage audience, valid for an hour.
    pub fn token(&self) -> String {
        let claims = AccessClaims {
            iss: self.issuer_url.clone(),
            sub: "rig".into(),
            aud: Audience::One("tansu.storage".into()),
            exp: now() + 3600,
            iat: now(),
            nbf: Some(now()),
            jti: uuid::Uuid::now_v7().to_string(),
            client_id: "rig".into(),
            scope: "storage.read storage.write".into(),
            tid: Some(TENANT.into()),
            roles: Vec::new(),
            act: None,
            cnf: None,
        };
        sign(&self.key, &claims)
    }

    /// A client trusting exactly the gateway's certificate, `localhost` pinned to it.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert_pem.as_bytes())?)
            .resolve("localhost", self.gateway)
            .http1_only()
            .build()?)
    }

    /// `https://localhost:<port>/storage{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}/storage{path}", self.gateway.port())
    }

    /// The storage process's peak resident memory (`VmHWM`), in KiB.
    pub fn storage_peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.storage_pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops the gateway and the storage process (stdin closed; killed after 10 s).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.gateway_task).await;
        drop(self.storage.stdin.take());
        if tokio::time::timeout(Duration::from_secs(10), self.storage.wait())
            .await
            .is_err()
        {
            let _ = self.storage.kill().await;
        }
    }
}
