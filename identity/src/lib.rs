//! `tansu-identity` — the platform's OIDC/OAuth2 issuer.
//!
//! What is here (issue #3, first part):
//! - [`store`]: one repository layer over SQLite (embedded default) and PostgreSQL;
//! - [`keys`]: the signing key ring (RS256 default, ES256, EdDSA), private keys sealed with
//!   AES-256-GCM under the master key ([`crypto`]), automated rotation under a database lease;
//! - [`discovery`]: OIDC discovery / RFC 8414 metadata and the JWKS;
//! - [`oauth`]: the token endpoint (`client_credentials`, RFC 9068 access tokens);
//! - [`admin`]: the admin API for clients and keys.
//!
//! Every URL the service publishes is built from the configured issuer string; the routes
//! themselves sit at the root, so the gateway can strip its `/identity` prefix.
#![forbid(unsafe_code)]

pub mod account_invitations;
pub mod account_recovery;
pub mod admin;
pub mod admin_tenants;
pub mod authorize;
pub mod cache;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod discovery;
pub mod event_log;
pub mod events;
pub mod http;
pub mod keys;
pub mod login_steps;
pub mod master_keys;
pub mod mfa;
pub mod oauth;
pub mod paging;
pub mod passwords;
pub mod providers;
pub mod provisioning;
pub mod registration;
pub mod roles;
pub mod scopes;
pub mod stats;
pub mod store;
pub mod tenant_directory;
pub mod tenants;
pub mod userinfo;
pub mod vault;
pub mod verifications;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tansu_shared::auth::{AccessClaims, AuthError};
use tansu_shared::health::Health;
use tokio::net::TcpListener;

pub use config::Config;

use crate::keys::{KeyManager, KeyState};
use crate::oauth::token::IssuedClaims;
use crate::passwords::Passwords;
use crate::store::{Store, now_ms};

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
}

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
        let keys =
            KeyManager::start(store.clone(), Arc::new(master), config.rotation_policy()).await?;
        let passwords = Passwords::new(config.password_hash_concurrency)?;
        let config_client_cache_ms = config.client_cache_ms;
        let events = event_log::EventLog::start(store.clone());
        let mut state = Services {
            config: Arc::new(config),
            events,
            store,
            keys: Arc::new(keys),
            passwords,
            provisioner: None,
            clients: Arc::new(cache::TtlCache::new(std::time::Duration::from_millis(
                config_client_cache_ms,
            ))),
            tenant_status: Arc::new(cache::TtlCache::new(std::time::Duration::from_millis(
                config_client_cache_ms,
            ))),
            rewrap: Arc::default(),
            stats: Arc::default(),
            verifications: Arc::default(),
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
    /// Dev mode: the platform admin `admin@tansu.local`. Its password comes from
    /// `dev_admin_password`, else `TANSU_DEV_ADMIN_PASSWORD`, else is generated once and printed.
    async fn seed_dev_admin(&self) -> anyhow::Result<()> {
        if let Some(existing) = self.store.user_by_email(DEV_ADMIN_EMAIL).await? {
            if !existing.platform_admin {
                self.store.set_platform_admin(&existing.id, true).await?;
            }
            return Ok(());
        }
        let configured = self.config.dev_admin_password.expose().to_owned();
        let configured = if configured.is_empty() {
            std::env::var("TANSU_DEV_ADMIN_PASSWORD").unwrap_or_default()
        } else {
            configured
        };
        let generated = configured.is_empty();
        let password = if generated {
            crypto::random_secret()?
        } else {
            configured
        };
        let now = now_ms();
        let user = store::users::UserRow {
            id: store::new_id(),
            email: DEV_ADMIN_EMAIL.into(),
            name: "Platform admin (dev)".into(),
            password_hash: self.passwords.hash(&password).await?,
            tenant_id: None,
            roles: vec!["Admin".into()],
            disabled: false,
            platform_admin: true,
            home_tenant_id: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if generated {
            // Shown once, on the console, by design; never through the logger.
            eprintln!(
                "tansu-identity (dev mode): user `{DEV_ADMIN_EMAIL}` created with password {password}\n  (set TANSU_DEV_ADMIN_PASSWORD to choose it; it will not be shown again)"
            );
        }
        Ok(())
    }

    /// Dev mode: the `tansu-dashboard` client with every scope, including `admin.full`
    /// (which only platform admins' tokens receive), for client credentials and for the
    /// dashboard's sign-in (code + refresh, `<dev_dashboard_url>callback`, post-logout
    /// `<dev_dashboard_url>signed-out`). Its secret comes from `dev_client_secret`, or is
    /// generated once, printed to stderr and written to `<data_dir>/tansu-dashboard.secret`.
    async fn seed_dev(&self) -> anyhow::Result<()> {
        let dashboard = self.config.dev_dashboard_url.as_str();
        let (redirects, post_logout) = if dashboard.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                vec![format!("{dashboard}callback")],
                vec![format!("{dashboard}signed-out")],
            )
        };
        let template = store::clients::ClientRow {
            id: store::new_id(),
            client_id: DEV_CLIENT_ID.into(),
            tenant_id: None,
            name: "Tansu dashboard (dev)".into(),
            confidential: true,
            secret_hash: None,
            grant_types: vec![
                clients::GRANT_CLIENT_CREDENTIALS.into(),
                clients::GRANT_AUTHORIZATION_CODE.into(),
                clients::GRANT_REFRESH_TOKEN.into(),
            ],
            scopes: scopes::known(true).into_iter().map(str::to_owned).collect(),
            redirect_uris: redirects,
            post_logout_redirect_uris: post_logout,
            jwks: None,
            first_party: true,
            access_token_lifetime_secs: None,
            signing_alg: self.config.default_alg().as_str().into(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        self.seed_client(
            template,
            self.config.dev_client_secret.expose(),
            "tansu-dashboard.secret",
        )
        .await
        .map(|_| ())
    }

    /// Dev mode: the provisioning client identity's registration uses to call database-svc
    /// (client credentials, scope `db.provision` only). Returns its secret.
    async fn seed_dev_provisioner(&self) -> anyhow::Result<Option<String>> {
        let template = store::clients::ClientRow {
            id: store::new_id(),
            client_id: self.config.provisioning_client_id.clone(),
            tenant_id: None,
            name: "Tansu identity: tenant provisioning (dev)".into(),
            confidential: true,
            secret_hash: None,
            grant_types: vec![clients::GRANT_CLIENT_CREDENTIALS.into()],
            scopes: vec!["db.provision".into()],
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            jwks: None,
            first_party: true,
            access_token_lifetime_secs: None,
            signing_alg: self.config.default_alg().as_str().into(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        self.seed_client(
            template,
            self.config.provisioning_client_secret.expose(),
            "tansu-provisioner.secret",
        )
        .await
    }

    /// Creates a dev client from `template`, or brings an existing one up to it (grants,
    /// scopes and URIs are added, never removed; a configured secret replaces the stored
    /// one). Without a configured secret, a new client's secret is generated, printed once
    /// and written to `<data_dir>/<secret_file>` (0600). Returns the secret when known.
    async fn seed_client(
        &self,
        template: store::clients::ClientRow,
        configured: &str,
        secret_file: &str,
    ) -> anyhow::Result<Option<String>> {
        let client_id = template.client_id.clone();
        let path = self.config.data_dir.join(secret_file);
        let existing = self.store.client_by_client_id(&client_id).await?;
        let now = now_ms();
        match existing {
            Some(mut row) => {
                let mut changed = false;
                if !configured.is_empty()
                    && !row
                        .secret_hash
                        .as_deref()
                        .is_some_and(|h| clients::secret_matches(configured, h))
                {
                    row.secret_hash = Some(clients::hash_secret(configured));
                    changed = true;
                    tracing::info!(client_id = %client_id, "dev client secret set from config");
                }
                let merge = |have: &mut Vec<String>, want: &[String], changed: &mut bool| {
                    for w in want {
                        if !have.contains(w) {
                            have.push(w.clone());
                            *changed = true;
                        }
                    }
                };
                merge(&mut row.grant_types, &template.grant_types, &mut changed);
                merge(&mut row.scopes, &template.scopes, &mut changed);
                merge(
                    &mut row.redirect_uris,
                    &template.redirect_uris,
                    &mut changed,
                );
                merge(
                    &mut row.post_logout_redirect_uris,
                    &template.post_logout_redirect_uris,
                    &mut changed,
                );
                if template.first_party && !row.first_party {
                    row.first_party = true;
                    changed = true;
                }
                if changed {
                    row.updated_at = now;
                    self.store.update_client(&row).await?;
                }
                if !configured.is_empty() {
                    return Ok(Some(configured.to_owned()));
                }
                Ok(std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_owned()))
            }
            None => {
                let generated = configured.is_empty();
                let secret = if generated {
                    crypto::random_secret()?
                } else {
                    configured.to_owned()
                };
                let row = store::clients::ClientRow {
                    secret_hash: Some(clients::hash_secret(&secret)),
                    ..template
                };
                match self.store.insert_client(&row).await {
                    Ok(()) => {}
                    // Another replica seeded it at the same moment.
                    Err(e) if e.is_unique_violation() => {
                        return Ok(if generated {
                            std::fs::read_to_string(&path)
                                .ok()
                                .map(|s| s.trim().to_owned())
                        } else {
                            Some(secret)
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
                if generated {
                    let _ = std::fs::remove_file(&path);
                    crypto::write_private_file(&path, format!("{secret}\n").as_bytes())?;
                    // Shown once, on the console, by design; never through the logger.
                    eprintln!(
                        "tansu-identity (dev mode): client `{client_id}` created with secret {secret}\n  (also in {}; it will not be shown again)",
                        path.display()
                    );
                }
                Ok(Some(secret))
            }
        }
    }

    /// Runs key maintenance every `key_check_interval_secs` until the handle is aborted.
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

    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let keys = self.keys.clone();
        let store = self.store.clone();
        let every = keys.policy().check_interval;
        let retention_days = self.config.security_event_retention_days;
        const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
        let mut last_purge: Option<std::time::Instant> = None;
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
                // Retention runs hourly (and at the first tick): a purge scans the old events.
                if retention_days > 0 && last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(std::time::Instant::now());
                    events::purge_old(&store, retention_days).await;
                }
            }
        })
    }

    /// Verifies an access token of this issuer against the in-memory key ring, as strictly as
    /// `tansu_shared::auth::Verifier` does (see [`admin`] for why in process).
    /// `audience: None` accepts any audience (introspection, userinfo).
    pub fn verify_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<AccessClaims, AuthError> {
        self.verify_issued_token(token, audience).map(|i| i.claims)
    }

    /// [`Self::verify_access_token`] with the issuer's private claims (`fid`).
    pub fn verify_issued_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<IssuedClaims, AuthError> {
        if token.len() > 8 * 1024 {
            return Err(AuthError::InvalidToken("token too large"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token header"))?;
        match header.typ.as_deref() {
            Some(t)
                if t.eq_ignore_ascii_case("at+jwt")
                    || t.eq_ignore_ascii_case("application/at+jwt") => {}
            _ => {
                return Err(AuthError::InvalidToken(
                    "not an access token (typ must be at+jwt)",
                ));
            }
        }
        let kid = header
            .kid
            .ok_or(AuthError::InvalidToken("token has no key id"))?;
        let ring = self.keys.ring();
        let grace = i64::try_from(self.keys.policy().grace.as_millis()).unwrap_or(i64::MAX);
        let key = ring
            .get(&kid)
            .filter(|k| {
                matches!(
                    k.state(now_ms(), grace),
                    KeyState::Current | KeyState::Retiring
                )
            })
            .ok_or(AuthError::InvalidToken("unknown signing key"))?;
        if key.alg.jwt() != header.alg {
            return Err(AuthError::InvalidToken("algorithm does not match the key"));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.config.issuer.as_str()]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<IssuedClaims>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken("invalid token"))
    }

    /// Whether a verified token is still active: not revoked by `jti`, and its refresh token
    /// family (if any) not revoked. A store failure counts as inactive.
    pub async fn token_active(&self, issued: &IssuedClaims) -> bool {
        match self.store.is_token_revoked(&issued.claims.jti).await {
            Ok(false) => {}
            _ => return false,
        }
        match &issued.fid {
            Some(f) => matches!(self.store.family_revoked(f).await, Ok(false)),
            None => true,
        }
    }
}

/// Every route of the service (health and metrics aside, see [`router`]), with the path list
/// the authorization matrix test enumerates.
pub fn routes() -> http::Routes<AppState> {
    http::Routes::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::configuration),
        )
        .route("/.well-known/jwks", get(discovery::jwks))
        .route("/connect/authorize", get(authorize::authorize))
        .route("/login", post(authorize::login))
        .route("/login/mfa", post(login_steps::login_mfa))
        .route("/login/tenant", post(login_steps::login_pick_tenant))
        .route("/login/enrol", post(login_steps::login_enrol))
        .route(
            "/account/mfa",
            get(login_steps::account_mfa).post(login_steps::account_mfa_confirm),
        )
        .route(
            "/account/mfa/recovery-codes",
            post(account_recovery::regenerate),
        )
        .route(
            "/account/invitations",
            get(account_invitations::list).post(account_invitations::decide),
        )
        .route("/consent", post(authorize::consent))
        .route(
            "/connect/endsession",
            get(authorize::end_session).post(authorize::end_session),
        )
        .route("/connect/token", post(oauth::token::token))
        .route(
            "/connect/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/connect/introspect", post(oauth::introspect::introspect))
        .route("/connect/revocation", post(oauth::introspect::revoke))
        .merge(admin::router())
        .merge(registration::router())
}

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let store = state.store.clone();
    let keys = state.keys.clone();
    let health = Health::new("identity")
        .check("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        })
        .check("signing keys", move || {
            let ready = keys
                .ring()
                .signer(keys.policy().algorithms[0], now_ms())
                .is_some();
            async move {
                if ready {
                    Ok(())
                } else {
                    Err("no current signing key".to_owned())
                }
            }
        });
    let routes = routes()
        .into_router()
        .with_state(state)
        .merge(health.router())
        .fallback(tansu_shared::problem::not_found_fallback);
    tansu_shared::server::with_common_layers("identity", routes)
}

/// Serves on `config.listen` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tansu_shared::server::bind(&config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (the dev stack and tests bind first).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tansu_shared::install_crypto_provider();
    let state = AppState::new(config).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        issuer = %state.config.issuer,
        store = state.store.dialect(),
        "identity listening"
    );
    let maintenance = state.spawn_maintenance();
    if state.config.master_key_rewrap_on_start {
        // Rows still under a previous key move under the current one (no-op otherwise).
        let _ = master_keys::spawn_rewrap(&state, "system".into());
    }
    let stats_flusher = state.stats.spawn_flusher(state.store.clone());
    let (store, stats) = (state.store.clone(), state.stats.clone());
    let result = tansu_shared::server::serve(listener, router(state), shutdown).await;
    maintenance.abort();
    stats_flusher.abort();
    if let Err(e) = stats.flush(&store).await {
        tracing::warn!(error = %e, "token statistics flush failed");
    }
    store.close().await;
    result?;
    Ok(())
}
