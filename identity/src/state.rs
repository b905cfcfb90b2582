//! The service's state: what every handler shares ([`AppState`], one `Arc` of [`Services`]),
//! opened once at start (store, master key, key ring, password hasher, event log, caches).
//! Domain modules take the handles they use (`&Store`, `&EventLog`, `&KeyManager`, …); only the
//! handlers of the wings (`web`, `admin`, `oauth`) hold the whole state.

use std::sync::Arc;

use tansu_shared::auth::{Verifier, VerifierConfig};
use tansu_shared::changes::Change;

use crate::config::Config;
use crate::keys::KeyManager;
use crate::passwords::Passwords;
use crate::scopes::IDENTITY_AUDIENCE;
use crate::store::{Store, now_ms};
use crate::{
    cache, event_log, events, mail, master_keys, provisioning, stats, store, verifications,
};

/// Shared state of the service's handlers: one `Arc`, so the copy axum makes for every request
/// is one atomic increment (not one per service below, each bouncing between the cores).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// Sends a verification link to a new account or a changed address, in the background
    /// (a failure is logged; the owner can ask for another link on the account page).
    pub fn verify_email_later(&self, user_id: String, tenant_id: Option<String>) {
        let state = self.clone();
        tokio::spawn(async move {
            let user = match state.store.user_by_id(&user_id).await {
                Ok(Some(u)) => u,
                _ => return,
            };
            let tenant = match tenant_id {
                Some(t) => state.store.tenant_by_id(&t).await.ok().flatten(),
                None => None,
            };
            if let Err(e) = state
                .mailer()
                .send_link(crate::account::EMAIL_VERIFICATION, &user, tenant.as_ref())
                .await
            {
                tracing::warn!(error = %format!("{e:#}"), "a verification link could not be queued");
            }
        });
    }

    /// After a registration: the new tenant is pushed to the gateways (one may have cached
    /// "no such tenant" for its slug) and the owner's address is sent its verification link.
    pub async fn registered(&self, done: &crate::registration::Registered) {
        self.tenant_changed(&done.tenant.id, &done.tenant.slug)
            .await;
        self.verify_email_later(done.user.id.clone(), Some(done.tenant.id.clone()));
    }

    /// The services, to change before the state is first cloned (tests set a provisioner);
    /// `None` once it has been.
    pub fn services_mut(&mut self) -> Option<&mut Services> {
        Arc::get_mut(&mut self.0)
    }
}

/// What the handlers share (reached through [`AppState`]).
#[derive(Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: Arc<KeyManager>,
    pub passwords: Passwords,
    /// Creates tenants' databases at registration (`None`: `database_service_url` is unset).
    pub provisioner: Option<Arc<dyn provisioning::Provisioner>>,
    /// Clients read by the token endpoint (see [`cache`]).
    pub clients: Arc<cache::TtlCache<String, Option<store::clients::ClientRow>>>,
    /// Tenants' statuses by id, read by the token endpoint for tenant clients (see [`cache`]).
    pub tenant_status: Arc<cache::TtlCache<String, Option<String>>>,
    /// Appends security events (group commit, see [`event_log`]).
    pub events: event_log::EventLog,
    /// This replica's master-key re-wrap (see [`master_keys`]).
    pub rewrap: Arc<master_keys::RewrapTracker>,
    /// Tokens issued, counted in memory and flushed per hour (see [`stats`]).
    pub stats: Arc<stats::TokenCounter>,
    /// This process's chain-verification jobs (see [`verifications`]).
    pub verifications: Arc<verifications::Verifications>,
    /// Verifies this issuer's access tokens against the key ring (see [`crate::http::bearer`]).
    pub verifier: Verifier,
    /// Outgoing mail (see [`mail::Outbox`]); its sender runs while the state lives.
    pub outbox: Arc<mail::Outbox>,
    /// The WebAuthn relying party of the issuer (see [`crate::passkeys`]).
    pub passkeys: crate::passkeys::RelyingParty,
    /// External providers' discovery documents and key sets (see [`crate::federation`]).
    pub provider_metadata: crate::federation::MetadataCache,
    _sender: AbortOnDrop,
    /// Pushes tenant and client changes to the other replicas and the gateways.
    changes: tansu_shared::changes::Publisher,
    /// Receives the other replicas' changes (with `redis_url` set).
    _changes_listener: Option<AbortOnDrop>,
}

/// A background task that ends with the state.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every replica shares of DPoP (see [`tansu_shared::auth::DpopState`]): the nonce key,
/// derived from the master key (so any replica accepts the nonce another handed out), and,
/// with `redis_url` set, the record of the proofs used (so a proof used at one replica is
/// refused at the others).
fn dpop_state(
    config: &Config,
    master: &crate::crypto::MasterKeys,
) -> anyhow::Result<tansu_shared::auth::DpopState> {
    let (key, previous) = master.derive_hmac_keys(DPOP_NONCE_KEY_PURPOSE);
    Ok(tansu_shared::auth::DpopState {
        replay: tansu_shared::auth::dpop::ReplayCache::shared(config.redis_url.expose())
            .map_err(|e| anyhow::anyhow!("identity.redis_url: {e}"))?,
        nonces: Some(tansu_shared::auth::dpop::NonceIssuer::with_keys(
            key,
            previous,
            tansu_shared::auth::NONCE_WINDOW_SECS,
        )),
    })
}

/// The HKDF `info` of the DPoP nonce key (a new purpose gets a new string, never this one).
const DPOP_NONCE_KEY_PURPOSE: &[u8] = b"tansu identity dpop nonce key v1";

/// The lease of the hourly security-event retention (one replica purges per hour).
const RETENTION_LEASE: &str = "retention";

/// The client dev mode seeds for scripts and the dashboard's service calls.
pub const DEV_CLIENT_ID: &str = "tansu-dashboard";
/// The platform admin dev mode seeds.
pub const DEV_ADMIN_EMAIL: &str = "admin@tansu.local";

impl AppState {
    /// Opens the store (migrating it), loads the master key and the key ring (creating the
    /// first keys), and in dev mode seeds the `tansu-dashboard` client.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let problems = tansu_shared::config::Validate::validate(&config);
        anyhow::ensure!(
            problems.is_empty(),
            "identity configuration is invalid: {}",
            problems.join("; ")
        );
        let url = config.database_url();
        if url.starts_with("sqlite:") || config.dev_mode {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
            })?;
        }
        let store = Store::connect_with(&url, config.database_max_connections())
            .await
            .map_err(|e| anyhow::anyhow!("identity database: {e}"))?;
        let master = master_keys::load(&config)?;
        master_keys::ensure_known(&store, &master).await?;
        let dpop = dpop_state(&config, &master)?;
        let keys =
            KeyManager::start(store.clone(), Arc::new(master), config.rotation_policy()).await?;
        let passwords = Passwords::new(config.password_hash_concurrency)?;
        let config_client_cache_ms = config.client_cache_ms;
        let events = event_log::EventLog::start(store.clone());
        let keys = Arc::new(keys);
        let verifier = Verifier::with_keys_and_dpop(
            VerifierConfig {
                // DPoP proofs at the token endpoint and with bound tokens here carry a nonce.
                dpop_nonce: true,
                ..VerifierConfig::new(config.issuer.clone(), IDENTITY_AUDIENCE)
            },
            keys.clone(),
            dpop,
        )
        .map_err(|e| anyhow::anyhow!("token verifier: {e}"))?;
        let transport = mail::transport::from_config(&config.mail, &config.data_dir)?;
        if !config.dev_mode && config.mail.transport != mail::TRANSPORT_SMTP {
            tracing::warn!(
                dir = %config.mail.dir(&config.data_dir).display(),
                "mail is written to files, not sent: set identity.mail.transport = \"smtp\" to deliver it"
            );
        }
        let outbox = Arc::new(mail::Outbox::new(
            store.clone(),
            keys.master().clone(),
            transport,
            config.mail.clone(),
        )?);
        let sender = AbortOnDrop(outbox.spawn());
        let changes = tansu_shared::changes::Publisher::new(config.redis_url.expose())
            .map_err(|e| anyhow::anyhow!("identity.redis_url: {e}"))?;
        let clients = Arc::new(cache::TtlCache::new(std::time::Duration::from_millis(
            config_client_cache_ms,
        )));
        let tenant_status = Arc::new(cache::TtlCache::new(std::time::Duration::from_millis(
            config_client_cache_ms,
        )));
        let changes_listener = (!config.redis_url.is_empty()).then(|| {
            AbortOnDrop(spawn_change_listener(
                config.redis_url.expose().to_owned(),
                clients.clone(),
                tenant_status.clone(),
            ))
        });
        let passkeys = crate::passkeys::RelyingParty::for_issuer(&config.issuer);
        let mut state = Services {
            passkeys,
            provider_metadata: crate::federation::metadata_cache(),
            config: Arc::new(config),
            events,
            store,
            keys,
            passwords,
            provisioner: None,
            clients,
            tenant_status,
            rewrap: Arc::default(),
            stats: Arc::default(),
            verifications: Arc::default(),
            verifier,
            outbox,
            _sender: sender,
            changes,
            _changes_listener: changes_listener,
        };
        let mut provisioning_secret = state.config.provisioning_client_secret.clone();
        if state.config.dev_mode {
            state.seed_dev().await?;
            state.seed_dev_admin().await?;
            if let Some(secret) = state.seed_dev_provisioner().await?
                && provisioning_secret.is_empty()
            {
                provisioning_secret = tansu_shared::config::Secret::new(secret);
            }
        }
        if !state.config.database_service_url.is_empty() {
            state.provisioner = Some(Arc::new(provisioning::HttpProvisioner::new(
                &state.config.database_service_url,
                &state.config.provisioning_token_url(),
                &state.config.provisioning_client_id,
                provisioning_secret,
            )?));
        }
        Ok(AppState(Arc::new(state)))
    }
}

impl Services {
    /// What a master-key re-wrap uses (see [`crate::master_keys`]).
    pub fn rewrapper(&self) -> master_keys::Rewrapper {
        master_keys::Rewrapper {
            store: self.store.clone(),
            master: self.keys.master().clone(),
            events: self.events.clone(),
            tracker: self.rewrap.clone(),
        }
    }

    /// Starts the master-key re-wrap in the background (see [`master_keys::spawn_rewrap`]).
    pub fn spawn_rewrap(&self, actor: String) -> Option<tokio::task::JoinHandle<()>> {
        let options = master_keys::RewrapOptions::from_config(&self.config);
        master_keys::spawn_rewrap(self.rewrapper(), options, actor)
    }

    /// What sending account mail uses (see [`crate::account`]).
    pub fn mailer(&self) -> crate::account::Mailer<'_> {
        crate::account::Mailer {
            store: &self.store,
            outbox: &self.outbox,
            issuer: &self.config.issuer,
            config: &self.config.account,
        }
    }

    /// What a registration uses (see [`crate::registration`]).
    pub fn registrar(&self) -> crate::registration::Registrar<'_> {
        crate::registration::Registrar {
            store: &self.store,
            passwords: &self.passwords,
            master: self.keys.master(),
            provisioner: self.provisioner.clone(),
        }
    }

    /// A client changed on this replica: its cached row goes here, and the change is pushed
    /// to the other replicas.
    pub async fn client_changed(&self, client_id: &str) {
        self.clients.invalidate(&client_id.to_owned());
        let id = client_id.to_owned();
        self.changes.publish(&Change::Client { id }).await;
    }

    /// A tenant changed (status, slug, policy) or was created on this replica: its cached status
    /// goes here, and the change is pushed to the other replicas and the gateways.
    pub async fn tenant_changed(&self, id: &str, slug: &str) {
        self.tenant_status.invalidate(&id.to_owned());
        let (id, slug) = (id.to_owned(), slug.to_owned());
        self.changes.publish(&Change::Tenant { id, slug }).await;
    }

    /// A client by its `client_id`, from the short-lived cache (see [`cache`]) or the store.
    pub async fn client(
        &self,
        client_id: &str,
    ) -> store::StoreResult<Option<store::clients::ClientRow>> {
        let key = client_id.to_owned();
        if let Some(cached) = self.clients.get(&key) {
            return Ok(cached);
        }
        let row = self.store.client_by_client_id(client_id).await?;
        self.clients.put(key, row.clone());
        Ok(row)
    }

    /// Runs key maintenance every `key_check_interval_secs` until the handle is aborted.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let keys = self.keys.clone();
        let store = self.store.clone();
        let every = keys.policy().check_interval;
        let retention_days = self.config.security_event_retention_days;
        const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
        let mut last_purge: Option<std::time::Instant> = None;
        let holder = store::new_id();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(e) = keys.maintain().await {
                    tracing::warn!(error = %format!("{e:#}"), "signing key maintenance failed");
                }
                store.purge_expired(now_ms()).await;
                if let Err(e) = store.purge_account_tokens(now_ms() - 86_400_000).await {
                    tracing::warn!(error = %e, "purging expired account links failed");
                }
                // Retention runs hourly (and at the first tick): a purge scans the old events.
                // One replica per hour: whoever takes the lease keeps it for the hour.
                if retention_days > 0 && last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(std::time::Instant::now());
                    let now = now_ms();
                    let until = now + PURGE_EVERY.as_millis() as i64;
                    match store
                        .try_acquire_lease(RETENTION_LEASE, &holder, now, until)
                        .await
                    {
                        Ok(true) => events::purge_old(&store, retention_days).await,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "retention lease not taken"),
                    }
                }
            }
        })
    }
}

type ClientCache = Arc<cache::TtlCache<String, Option<store::clients::ClientRow>>>;
type StatusCache = Arc<cache::TtlCache<String, Option<String>>>;

/// Drops cached rows when another replica pushes their change (see [`tansu_shared::changes`]).
fn spawn_change_listener(
    url: String,
    clients: ClientCache,
    tenant_status: StatusCache,
) -> tokio::task::JoinHandle<()> {
    let (c, t) = (clients.clone(), tenant_status.clone());
    tokio::spawn(async move {
        tansu_shared::changes::subscribe(
            &url,
            move || {
                c.clear();
                t.clear();
            },
            move |change| match change {
                Change::Client { id } => clients.invalidate(&id),
                Change::Tenant { id, .. } => tenant_status.invalidate(&id),
                Change::Database { .. } => {}
            },
            std::future::pending(),
        )
        .await;
    })
}
