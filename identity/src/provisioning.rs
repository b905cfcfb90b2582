//! Provisioning a new tenant's database at registration.
//!
//! Registration creates the tenant's database through a [`Provisioner`]: in a deployment the
//! [`HttpProvisioner`] calls database-svc (`PUT /provision/{tenant}`, idempotent) with a
//! client-credentials token for scope `db.provision` from `tansu_shared::token_source`; tests
//! use the [`InProcessProvisioner`], which keeps its "databases" in memory and can be told to
//! fail. A registration that fails after provisioning deprovisions again (`DELETE`, a soft
//! delete database-svc purges after its retention).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tansu_shared::config::Secret;
use tansu_shared::token_source::{ClientCredentials, TokenSource};
use tracing::Instrument;
use zeroize::Zeroizing;

/// What provisioning returns.
pub struct Provisioned {
    /// How the tenant's database is reached (database-svc's descriptor). Stored only in the
    /// tenant's vault.
    pub descriptor: serde_json::Value,
    /// A credential scoped to the tenant's database, when the provisioner hands one out.
    pub credential: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioned")
            .field("descriptor", &self.descriptor)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the database service is unavailable: {0}")]
    Unavailable(String),
    #[error("the database service refused: {0}")]
    Refused(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Creates and removes tenants' databases. Both calls are idempotent.
pub trait Provisioner: Send + Sync + std::fmt::Debug {
    fn provision<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>>;
    fn deprovision<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<(), ProvisionError>>;
}

/// database-svc over HTTP.
#[derive(Debug)]
pub struct HttpProvisioner {
    base: url::Url,
    tokens: TokenSource,
    http: reqwest::Client,
}

impl HttpProvisioner {
    pub fn new(
        database_service_url: &str,
        token_endpoint: &str,
        client_id: &str,
        client_secret: Secret,
    ) -> anyhow::Result<Self> {
        let mut base = url::Url::parse(database_service_url)?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let tokens = TokenSource::new(ClientCredentials {
            token_endpoint: url::Url::parse(token_endpoint)?,
            client_id: client_id.to_owned(),
            client_secret,
            scope: "db.provision".into(),
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { base, tokens, http })
    }

    fn url(&self, tenant: &str) -> Result<url::Url, ProvisionError> {
        // The tenant id is a UUID (validated by the caller); join keeps it one segment.
        uuid::Uuid::parse_str(tenant)
            .map_err(|_| ProvisionError::Refused("the tenant id is not a UUID".into()))?;
        self.base
            .join(&format!("provision/{tenant}"))
            .map_err(|e| ProvisionError::Unavailable(e.to_string()))
    }

    /// Sends with a cached token; a 401 drops the token and retries once with a fresh one.
    async fn send(
        &self,
        method: reqwest::Method,
        tenant: &str,
    ) -> Result<reqwest::Response, ProvisionError> {
        let url = self.url(tenant)?;
        for attempt in 0..2 {
            let token = self
                .tokens
                .token()
                .await
                .map_err(|e| ProvisionError::Unavailable(e.to_string()))?;
            // A client span of the request's trace; database-svc continues it.
            let span = tracing::info_span!(
                "provision",
                otel.name = %format_args!("{method} database-svc /provision"),
                otel.kind = "client",
                tenant.id = tenant,
            );
            let mut trace = reqwest::header::HeaderMap::new();
            if tansu_shared::telemetry::exporting() {
                tansu_shared::telemetry::inject_context(&span, &mut trace);
            }
            let resp = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&*token)
                .headers(trace)
                .send()
                .instrument(span)
                .await
                .map_err(|e| ProvisionError::Unavailable(e.without_url().to_string()))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.invalidate().await;
                continue;
            }
            return Ok(resp);
        }
        Err(ProvisionError::Refused("unauthorized".into()))
    }
}

async fn failure(resp: reqwest::Response) -> ProvisionError {
    let status = resp.status();
    let title = resp
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("title").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_default();
    let what = format!("HTTP {status} {title}");
    if status.is_server_error() {
        ProvisionError::Unavailable(what)
    } else {
        ProvisionError::Refused(what)
    }
}

impl Provisioner for HttpProvisioner {
    fn provision<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>> {
        Box::pin(async move {
            let resp = self.send(reqwest::Method::PUT, tenant).await?;
            if !resp.status().is_success() {
                return Err(failure(resp).await);
            }
            let mut descriptor: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| ProvisionError::Unavailable(format!("malformed answer: {e}")))?;
            // A scoped credential, if the service hands one out, is kept apart from the
            // descriptor (and sealed separately in the vault).
            let credential = descriptor.as_object_mut().and_then(|o| {
                ["credential", "token", "password"]
                    .iter()
                    .find_map(|k| o.remove(*k))
                    .filter(|v| !v.is_null())
                    // database-svc answers an object (kind, user, password, url, …): kept as
                    // its JSON text.
                    .map(|v| match v {
                        serde_json::Value::String(s) => Zeroizing::new(s),
                        other => Zeroizing::new(other.to_string()),
                    })
            });
            Ok(Provisioned {
                descriptor,
                credential,
            })
        })
    }

    fn deprovision<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<(), ProvisionError>> {
        Box::pin(async move {
            let resp = self.send(reqwest::Method::DELETE, tenant).await?;
            if resp.status().is_success() || resp.status() == reqwest::StatusCode::NOT_FOUND {
                Ok(())
            } else {
                Err(failure(resp).await)
            }
        })
    }
}

/// An in-memory provisioner for tests: it remembers which tenants have a database and can be
/// told to fail its next calls.
#[derive(Debug, Default)]
pub struct InProcessProvisioner {
    inner: Mutex<InProcess>,
}

#[derive(Debug, Default)]
struct InProcess {
    live: BTreeMap<String, serde_json::Value>,
    fail_provision: bool,
    fail_deprovision: bool,
    provisioned_total: usize,
}

impl InProcessProvisioner {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InProcess> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes provisioning fail (as an unreachable service would) until set back.
    pub fn fail_provision(&self, fail: bool) {
        self.lock().fail_provision = fail;
    }

    pub fn fail_deprovision(&self, fail: bool) {
        self.lock().fail_deprovision = fail;
    }

    /// The tenants that have a database now.
    pub fn live(&self) -> Vec<String> {
        self.lock().live.keys().cloned().collect()
    }

    /// How many databases were ever created.
    pub fn provisioned_total(&self) -> usize {
        self.lock().provisioned_total
    }
}

impl Provisioner for InProcessProvisioner {
    fn provision<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Provisioned, ProvisionError>> {
        Box::pin(async move {
            let mut g = self.lock();
            if g.fail_provision {
                return Err(ProvisionError::Unavailable("forced failure".into()));
            }
            let descriptor = serde_json::json!({
                "tenant": tenant,
                "backend": "memory",
                "status": "active",
                "database": format!("memory:{tenant}"),
            });
            if !g.live.contains_key(tenant) {
                g.provisioned_total += 1;
            }
            g.live.insert(tenant.to_owned(), descriptor.clone());
            Ok(Provisioned {
                descriptor,
                credential: Some(Zeroizing::new(format!("in-process-credential-{tenant}"))),
            })
        })
    }

    fn deprovision<'a>(&'a self, tenant: &'a str) -> BoxFuture<'a, Result<(), ProvisionError>> {
        Box::pin(async move {
            let mut g = self.lock();
            if g.fail_deprovision {
                return Err(ProvisionError::Unavailable("forced failure".into()));
            }
            g.live.remove(tenant);
            Ok(())
        })
    }
}
