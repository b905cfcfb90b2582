//! Starting and stopping the whole platform in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::tls::ensure_dev_certificate;

/// How to start the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Where every service keeps its state (SQLite files, objects, keys, the TLS certificate).
    pub data_dir: PathBuf,
    /// Optional platform config file; `TANSU_<SECTION>__<KEY>` environment variables apply too.
    pub config_file: Option<PathBuf>,
    /// Bind every listener on `127.0.0.1:0` instead of the configured ports (tests).
    pub ephemeral: bool,
}

impl StackOptions {
    /// Ephemeral ports and a data dir of the caller's choosing: what tests use.
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            config_file: None,
            ephemeral: true,
        }
    }
}

/// A running stack.
pub struct Stack {
    /// The gateway's HTTPS address: the platform's public entry.
    pub gateway: SocketAddr,
    /// The plain-HTTP redirector.
    pub gateway_http: Option<SocketAddr>,
    /// The gateway's internal listener (`/metrics`), not reachable through the public ones.
    pub gateway_internal: Option<SocketAddr>,
    /// Each service's own address (`identity`, `database`, `storage`, `dashboard`).
    pub services: Vec<(&'static str, SocketAddr)>,
    /// The issuer string every token carries.
    pub issuer: String,
    /// The gateway's self-signed certificate (PEM), for clients to trust.
    pub certificate_pem: String,
    /// Where identity's mail goes with the `file` transport (`None`: an SMTP server).
    pub mail_dir: Option<PathBuf>,
    cancel: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

async fn listener(configured: &str, ephemeral: bool) -> anyhow::Result<TcpListener> {
    let addr = if ephemeral { "127.0.0.1:0" } else { configured };
    Ok(tansu_shared::server::bind(addr).await?)
}

impl Stack {
    /// Loads the configuration, binds every listener, creates the dev certificate if needed,
    /// and starts all services. Returns once every listener is bound (not yet ready: see
    /// [`Stack::wait_ready`]).
    pub async fn start(opts: StackOptions) -> anyhow::Result<Stack> {
        tansu_shared::install_crypto_provider();
        std::fs::create_dir_all(&opts.data_dir)
            .with_context(|| format!("creating data dir {}", opts.data_dir.display()))?;
        let figment = tansu_shared::config::figment(opts.config_file.as_deref());
        let mut identity: tansu_identity::Config =
            tansu_shared::config::load_section(&figment, "identity")?;
        let mut database: tansu_database::Config =
            tansu_shared::config::load_section(&figment, "database")?;
        let mut storage: tansu_storage::Config =
            tansu_shared::config::load_section(&figment, "storage")?;
        let mut dashboard: tansu_dashboard::Config =
            tansu_shared::config::load_section(&figment, "dashboard")?;
        let mut gateway: tansu_gateway::Config =
            tansu_shared::config::load_section(&figment, "gateway")?;

        let eph = opts.ephemeral;
        let l_identity = listener(&identity.listen, eph).await?;
        let l_database = listener(&database.listen, eph).await?;
        let l_storage = listener(&storage.listen, eph).await?;
        let l_dashboard = listener(&dashboard.listen, eph).await?;
        let l_https = listener(&gateway.listen_https, eph).await?;
        let l_http = if gateway.listen_http.is_empty() {
            None
        } else {
            Some(listener(&gateway.listen_http, eph).await?)
        };
        let l_internal = if gateway.listen_internal.is_empty() {
            None
        } else {
            Some(listener(&gateway.listen_internal, eph).await?)
        };
        let gateway_addr = l_https.local_addr()?;
        let services = vec![
            ("identity", l_identity.local_addr()?),
            ("database", l_database.local_addr()?),
            ("storage", l_storage.local_addr()?),
            ("dashboard", l_dashboard.local_addr()?),
        ];
        let issuer = format!("https://{}/identity/", public_host(gateway_addr));
        let identity_addr = services[0].1;
        // Services fetch the issuer's keys from identity directly (the public JWKS URL goes
        // through the gateway's self-signed certificate).
        let jwks_uri: url::Url = format!("http://{identity_addr}/.well-known/jwks").parse()?;

        // One data directory for the whole stack; every service keeps its state below it.
        identity.issuer = issuer.clone();
        identity.data_dir = opts.data_dir.join("identity");
        identity.dev_mode = true;
        let mail_dir = (identity.mail.transport == tansu_identity::mail::TRANSPORT_FILE)
            .then(|| identity.mail.dir(&identity.data_dir));
        database.issuer = issuer.clone();
        database.jwks_uri = jwks_uri.to_string();
        database.discovery_url = String::new();
        database.data_dir = opts.data_dir.join("database");
        storage.issuer = issuer.clone();
        storage.jwks_uri = Some(jwks_uri.clone());
        storage.discovery_url = None;
        storage.data_dir = opts.data_dir.join("storage");
        // The APIs' descriptions as pages (`/db/openapi`, `/storage/openapi`; identity's in
        // dev mode).
        database.api_docs = true;
        storage.api_docs = true;

        // Database and storage report their access denials to identity's ingest endpoint as
        // the dev client (which dev mode allows every scope, `events.write` included).
        let events = tansu_shared::events::EventReporting {
            identity_url: format!("http://{identity_addr}/"),
            client_id: tansu_identity::DEV_CLIENT_ID.into(),
            client_secret: identity.dev_client_secret.clone(),
            client_secret_file: Some(identity.data_dir.join("tansu-dashboard.secret")),
        };
        if database.events.identity_url.is_empty() {
            database.events = events.clone();
        }
        if storage.events.identity_url.is_empty() {
            storage.events = events;
        }
        // Both re-check tenants' status in identity's directory (as the same dev client) for
        // what outlives the gateway's check: presigned URLs and change streams.
        let directory = tansu_shared::tenant_directory::TenantDirectoryConfig {
            identity_url: format!("http://{identity_addr}/"),
            client_id: tansu_identity::DEV_CLIENT_ID.into(),
            client_secret: identity.dev_client_secret.clone(),
            client_secret_file: Some(identity.data_dir.join("tansu-dashboard.secret")),
            ..Default::default()
        };
        if database.tenant_directory.identity_url.is_empty() {
            database.tenant_directory = directory.clone();
        }
        if storage.tenant_directory.identity_url.is_empty() {
            storage.tenant_directory = directory;
        }

        let cert = ensure_dev_certificate(&opts.data_dir.join("tls"))?;

        // The dashboard signs admins in through the gateway (trusting the dev certificate) as
        // the client identity's dev mode seeds; its secret is the configured one or the file
        // identity writes when it generates it.
        let public = format!("https://{}", public_host(gateway_addr));
        dashboard.public_url = format!("{public}/dashboard/");
        dashboard.issuer = issuer.clone();
        // Its own calls to identity (discovery, keys, code exchange, admin API) go to identity
        // directly: their budget is not the gateway's per-client-IP one, which every admin's
        // sign-in would share with anyone flooding the dashboard's sign-in.
        if dashboard.identity_url.is_empty() {
            dashboard.identity_url = format!("http://{identity_addr}/");
        }
        dashboard.health_url = format!("{public}/health");
        dashboard.client_id = tansu_identity::DEV_CLIENT_ID.into();
        if dashboard.ca_file.is_none() {
            dashboard.ca_file = Some(cert.cert_path.clone());
        }
        if dashboard.client_secret.is_empty() && dashboard.client_secret_file.is_none() {
            if identity.dev_client_secret.is_empty() {
                dashboard.client_secret_file =
                    Some(identity.data_dir.join("tansu-dashboard.secret"));
            } else {
                dashboard.client_secret = identity.dev_client_secret.clone();
            }
        }
        // Identity's dev seed registers the dashboard's sign-in (code flow, its callback and
        // post-logout page) from this URL.
        identity.dev_dashboard_url = dashboard.public_url.clone();
        // Registration provisions each new tenant's database through database-svc with the
        // provisioning client's tokens, asked of identity on its internal address (the public
        // issuer URL goes through the gateway's self-signed certificate).
        identity.database_service_url = format!("http://{}/", services[1].1);
        identity.provisioning_token_url = format!("http://{identity_addr}/connect/token");
        if !gateway.tls_cert.is_absolute() || !gateway.tls_cert.exists() {
            gateway.tls_cert = cert.cert_path.clone();
            gateway.tls_key = cert.key_path.clone();
        }
        gateway.dev_mode = true;
        // Tenants come from identity's directory (the dev client may read it), on its
        // internal address.
        if gateway.tenant_directory.is_none() {
            gateway.tenant_directory = Some(tansu_gateway::TenantDirectoryConfig {
                identity_url: format!("http://{identity_addr}/"),
                client_id: tansu_identity::DEV_CLIENT_ID.into(),
                client_secret: identity.dev_client_secret.clone(),
                client_secret_file: Some(identity.data_dir.join("tansu-dashboard.secret")),
                ..Default::default()
            });
        }
        let upstream = |name: &str| {
            services
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| format!("http://{a}"))
                .unwrap_or_default()
        };
        gateway.routes = vec![
            route("/identity", upstream("identity")),
            route("/db", upstream("database")),
            route("/storage", upstream("storage")),
            route("/dashboard", upstream("dashboard")),
        ];

        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let stop = |c: &CancellationToken| c.clone().cancelled_owned();
        tasks.spawn({
            let s = stop(&cancel);
            async move {
                (
                    "identity",
                    tansu_identity::serve_on(l_identity, identity, s).await,
                )
            }
        });
        tasks.spawn({
            let s = stop(&cancel);
            async move {
                (
                    "database",
                    tansu_database::serve_on(l_database, database, s).await,
                )
            }
        });
        tasks.spawn({
            let s = stop(&cancel);
            async move {
                (
                    "storage",
                    tansu_storage::serve_on(l_storage, storage, s).await,
                )
            }
        });
        tasks.spawn({
            let s = stop(&cancel);
            async move {
                (
                    "dashboard",
                    tansu_dashboard::serve_on(l_dashboard, dashboard, s).await,
                )
            }
        });
        let gateway_http = l_http.as_ref().map(|l| l.local_addr()).transpose()?;
        let gateway_internal = l_internal.as_ref().map(|l| l.local_addr()).transpose()?;
        tasks.spawn({
            let s = stop(&cancel);
            let parts = tansu_gateway::Parts {
                internal_listener: l_internal,
                ..Default::default()
            };
            async move {
                (
                    "gateway",
                    tansu_gateway::serve_with(l_https, l_http, gateway, parts, s).await,
                )
            }
        });

        Ok(Stack {
            gateway: gateway_addr,
            gateway_http,
            gateway_internal,
            services,
            issuer,
            certificate_pem: cert.cert_pem,
            mail_dir,
            cancel,
            tasks,
        })
    }

    /// Polls every service's `/health/ready` until all answer 200, within `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + timeout;
        for (name, addr) in &self.services {
            let url = format!("http://{addr}/health/ready");
            loop {
                if let Some(Ok((failed, result))) = self.tasks.try_join_next() {
                    anyhow::bail!("{failed} stopped during start-up: {result:?}");
                }
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => break,
                    _ if Instant::now() >= deadline => {
                        anyhow::bail!("{name} not ready after {timeout:?}")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }

    /// Runs until `signal` resolves or a service stops on its own (an error), then shuts down.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let failure = tokio::select! {
            () = signal => None,
            Some(joined) = self.tasks.join_next() => Some(joined),
        };
        let result = match failure {
            None => Ok(()),
            Some(Ok((name, Ok(())))) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
            Some(Ok((name, Err(e)))) => Err(e.context(format!("{name} failed"))),
            Some(Err(join)) => Err(anyhow::anyhow!("a service task panicked: {join}")),
        };
        self.shutdown().await?;
        result
    }

    /// Stops every service and waits (bounded) for in-flight requests to drain.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.cancel.cancel();
        let drained = tokio::time::timeout(tansu_shared::server::drain_bound(), async {
            let mut errors = Vec::new();
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok((_, Ok(()))) => {}
                    Ok((name, Err(e))) => errors.push(format!("{name}: {e:#}")),
                    Err(e) => errors.push(format!("task: {e}")),
                }
            }
            errors
        })
        .await;
        match drained {
            Ok(errors) if errors.is_empty() => Ok(()),
            Ok(errors) => Err(anyhow::anyhow!(errors.join("; "))),
            Err(_) => {
                self.tasks.abort_all();
                Err(anyhow::anyhow!(
                    "services did not stop within the drain timeout"
                ))
            }
        }
    }
}

fn route(prefix: &str, upstream: String) -> tansu_gateway::Route {
    tansu_gateway::Route {
        prefix: prefix.to_owned(),
        upstreams: vec![upstream],
    }
}

/// The host clients use for the gateway: `localhost`-style names for loopback binds.
fn public_host(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}
