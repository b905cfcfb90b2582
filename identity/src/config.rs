//! The `[identity]` section of the platform config.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tansu_shared::config::{Secret, Validate};

use crate::keys::{RotationPolicy, SigningAlg};

/// The `[identity]` section of the platform config (`TANSU_IDENTITY__<KEY>` overrides).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// The exact issuer identifier (`iss`), ending with '/'. Every published URL is built from
    /// it, so the service can sit behind a gateway that strips a path prefix.
    pub issuer: String,
    /// Where the embedded database and the dev master key live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty: `sqlite://<data_dir>/identity.db`. A secret (it
    /// may hold a password; also from `TANSU_IDENTITY__DATABASE_URL__FILE`): never printed.
    pub database_url: Secret,
    /// Most connections the PostgreSQL pool opens (0: two per core plus two, 6 on two cores;
    /// see [`default_database_max_connections`]).
    pub database_max_connections: u32,
    /// Development mode: creates a missing master key file, seeds the `tansu-dashboard`
    /// client and enables the `admin.full` scope. Never in production.
    pub dev_mode: bool,
    /// The master key, base64 of 32 bytes. Empty: `TANSU_MASTER_KEY`, then `master_key_file`.
    pub master_key: Secret,
    /// Default `<data_dir>/master.key` (created 0600 in dev mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// Where the current master key comes from: `auto` (`master_key`, then
    /// `TANSU_MASTER_KEY`, then `master_key_file`) or `keyring` (the OS keyring entry
    /// `master_key_keyring_service`/`master_key_keyring_user`; dev mode creates a missing one).
    pub master_key_source: String,
    pub master_key_keyring_service: String,
    pub master_key_keyring_user: String,
    /// Earlier master keys (base64 of 32 bytes each), also from `TANSU_PREVIOUS_MASTER_KEYS`
    /// and `previous_master_key_files`: they open what they sealed until the re-wrap has
    /// moved it under the current key (`GET /admin/master-key` says when).
    pub previous_master_keys: Vec<Secret>,
    pub previous_master_key_files: Vec<PathBuf>,
    /// Rows re-sealed per transaction by the master-key re-wrap.
    pub master_key_rewrap_batch_size: u32,
    /// Whether `serve` starts the re-wrap in the background at start-up (when rows are still
    /// under a previous key).
    pub master_key_rewrap_on_start: bool,
    /// Access token lifetime unless the client sets its own.
    pub access_token_lifetime_secs: u64,
    /// Signing algorithm for clients that do not choose one: RS256, ES256 or EdDSA.
    pub signing_alg: String,
    /// How long a signing key signs before its successor takes over.
    pub key_rotation_period_secs: u64,
    /// How long a replaced key stays in the JWKS (at least the longest token lifetime).
    pub key_rotation_grace_secs: u64,
    /// How long a new key is published before it signs.
    pub key_rotation_lead_secs: u64,
    /// How often each replica reloads the key ring and runs rotation maintenance.
    pub key_check_interval_secs: u64,
    /// Dev mode: the password of the seeded platform admin `admin@tansu.local`. Empty:
    /// `TANSU_DEV_ADMIN_PASSWORD`, else generated at first start and printed once.
    pub dev_admin_password: Secret,
    /// ID token lifetime.
    pub id_token_lifetime_secs: u64,
    /// Refresh token family lifetime (from the first token; rotation does not extend it).
    pub refresh_token_lifetime_secs: u64,
    /// A superseded refresh token presented within this window after its rotation is refused
    /// without revoking the family (a client retrying after a lost response); later, it is
    /// reuse and revokes the family.
    pub refresh_reuse_grace_secs: u64,
    /// Authorization code lifetime.
    pub authorization_code_lifetime_secs: u64,
    /// Browser session lifetime.
    pub session_lifetime_secs: u64,
    /// Concurrent Argon2id hashes (0: one per core).
    pub password_hash_concurrency: usize,
    /// Dev mode: the `tansu-dashboard` client's secret. Empty: generated at first start and
    /// printed once (and written to `<data_dir>/tansu-dashboard.secret`, 0600).
    pub dev_client_secret: Secret,
    /// Failed sign-ins for one account from one client IP before a temporary lock of that
    /// (account, IP) pair; other IPs are not locked out by it.
    pub login_lockout_threshold: u32,
    /// Failed sign-ins from one client IP (any accounts) before that IP is locked.
    pub login_ip_lockout_threshold: u32,
    /// How long a lock lasts, in milliseconds.
    pub login_lockout_ms: u64,
    /// Progressive delay: each failed sign-in answers after this many milliseconds times the
    /// failures counted for the (account, IP) pair (at most 2 s).
    pub login_failure_delay_ms: u64,
    /// Security events older than this many days are purged (each tenant's chain keeps its
    /// newest event and an anchor, so it still verifies); 0 keeps every event.
    pub security_event_retention_days: u64,
    /// How long the token endpoint may use a client row, and a tenant client's tenant status,
    /// read earlier (ms; 0: read every time).
    /// Changes through this replica apply at once; other replicas see them within this bound.
    pub client_cache_ms: u64,
    /// Redis through which this replica pushes tenant and client changes to the other
    /// replicas and the gateways, and receives theirs (`redis://…`; the gateways' shared Redis).
    /// Empty: others see a change within their cache bounds (`client_cache_ms` here, the
    /// gateways' `tenant_cache_ms`).
    pub redis_url: Secret,
    /// Self-service registration (`GET/POST /register`, `POST /registrations`). Unset: on in
    /// dev mode, off otherwise. Platform admins can always register through
    /// `POST /admin/registrations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_enabled: Option<bool>,
    /// database-svc's base URL (e.g. `http://127.0.0.1:7002/`), where registration provisions
    /// each new tenant's database. Empty: registration answers 503.
    pub database_service_url: String,
    /// The client-credentials client identity uses to provision (needs scope `db.provision`).
    pub provisioning_client_id: String,
    /// Its secret. Empty in dev mode: the seeded client's (generated once, written to
    /// `<data_dir>/tansu-provisioner.secret`, 0600).
    pub provisioning_client_secret: Secret,
    /// Where identity asks for the provisioning client's tokens. Empty:
    /// `<issuer>connect/token` (set it to identity's internal address behind a gateway).
    pub provisioning_token_url: String,
    /// Dev mode: the dashboard's public URL (ends with '/'); the seeded `tansu-dashboard`
    /// client gets `<url>callback` as redirect URI and `<url>signed-out` after logout.
    pub dev_dashboard_url: String,
    /// Outgoing mail (`[identity.mail]`, see [`crate::mail::MailConfig`]).
    pub mail: crate::mail::MailConfig,
    /// Self-service account links (`[identity.account]`, see [`crate::account::AccountConfig`]).
    pub account: crate::account::AccountConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7001".into(),
            issuer: "https://127.0.0.1:8443/identity/".into(),
            data_dir: PathBuf::from("data/identity"),
            database_url: Secret::default(),
            database_max_connections: 0,
            dev_mode: false,
            master_key: Secret::default(),
            master_key_file: None,
            master_key_source: MASTER_KEY_SOURCE_AUTO.into(),
            master_key_keyring_service: "tansu".into(),
            master_key_keyring_user: "identity-master-key".into(),
            previous_master_keys: Vec::new(),
            previous_master_key_files: Vec::new(),
            master_key_rewrap_batch_size: 100,
            master_key_rewrap_on_start: true,
            access_token_lifetime_secs: 3600,
            signing_alg: "RS256".into(),
            key_rotation_period_secs: 30 * 86_400,
            key_rotation_grace_secs: 7 * 86_400,
            key_rotation_lead_secs: 86_400,
            key_check_interval_secs: 60,
            dev_client_secret: Secret::default(),
            dev_admin_password: Secret::default(),
            id_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 14 * 86_400,
            refresh_reuse_grace_secs: 10,
            authorization_code_lifetime_secs: 60,
            session_lifetime_secs: 12 * 3600,
            password_hash_concurrency: 0,
            login_lockout_threshold: 5,
            login_ip_lockout_threshold: 100,
            login_lockout_ms: 15 * 60 * 1000,
            login_failure_delay_ms: 100,
            security_event_retention_days: 365,
            client_cache_ms: 2000,
            redis_url: Secret::default(),
            registration_enabled: None,
            database_service_url: String::new(),
            provisioning_client_id: "tansu-provisioner".into(),
            provisioning_client_secret: Secret::default(),
            provisioning_token_url: String::new(),
            dev_dashboard_url: "https://127.0.0.1:8443/dashboard/".into(),
            mail: crate::mail::MailConfig::default(),
            account: crate::account::AccountConfig::default(),
        }
    }
}

/// The PostgreSQL pool size unless `database_max_connections` sets one: two connections per
/// core plus two (HikariCP's sizing rule; Ory Hydra's default is two per core). Enough for
/// concurrent commits to share WAL flushes, few enough that a light load does not cycle
/// through idle backends (sqlx hands out the longest-idle connection first). On two cores,
/// 6 against the former 16: refresh grants +9 % with a lower p99, logins +1.4 points of the
/// raw Argon2id rate; 4 cost refreshes 15 % (BENCHMARKS.md, sessions 8 and 11).
pub fn default_database_max_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2 + 2).unwrap_or(u32::MAX)
}

pub const MASTER_KEY_SOURCE_AUTO: &str = "auto";
pub const MASTER_KEY_SOURCE_KEYRING: &str = "keyring";

/// Longest access token lifetime a client may be given.
pub const MAX_ACCESS_TOKEN_LIFETIME_SECS: u64 = 86_400;
pub const MIN_ACCESS_TOKEN_LIFETIME_SECS: u64 = 30;

impl Config {
    /// The store's URL (connecting is its reason to be exposed; never log it).
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}/identity.db", self.data_dir.display())
        } else {
            self.database_url.expose().to_owned()
        }
    }

    /// The PostgreSQL pool size: `database_max_connections`, else
    /// [`default_database_max_connections`].
    pub fn database_max_connections(&self) -> u32 {
        if self.database_max_connections > 0 {
            self.database_max_connections
        } else {
            default_database_max_connections()
        }
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Whether self-service registration is open.
    pub fn registration_open(&self) -> bool {
        self.registration_enabled.unwrap_or(self.dev_mode)
    }

    /// The token endpoint identity's own service calls use.
    pub fn provisioning_token_url(&self) -> String {
        if self.provisioning_token_url.is_empty() {
            format!("{}connect/token", self.issuer)
        } else {
            self.provisioning_token_url.clone()
        }
    }

    pub fn default_alg(&self) -> SigningAlg {
        SigningAlg::parse(&self.signing_alg).unwrap_or(SigningAlg::RS256)
    }

    pub fn rotation_policy(&self) -> RotationPolicy {
        let default = self.default_alg();
        let mut algorithms = vec![default];
        algorithms.extend(SigningAlg::ALL.into_iter().filter(|a| *a != default));
        RotationPolicy {
            period: Duration::from_secs(self.key_rotation_period_secs),
            grace: Duration::from_secs(self.key_rotation_grace_secs),
            lead: Duration::from_secs(self.key_rotation_lead_secs),
            check_interval: Duration::from_secs(self.key_check_interval_secs),
            algorithms,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Err(e) = self.listen.parse::<std::net::SocketAddr>() {
            v.push(format!("listen: {e}"));
        }
        if let Err(e) = tansu_shared::changes::Publisher::new(self.redis_url.expose()) {
            v.push(format!("redis_url: {e}"));
        }
        if self.login_lockout_threshold == 0 || self.login_ip_lockout_threshold == 0 {
            v.push("login_lockout_threshold, login_ip_lockout_threshold: at least 1".into());
        }
        if self.login_lockout_ms == 0 || self.login_lockout_ms > 86_400_000 {
            v.push("login_lockout_ms: between 1 ms and 1 day".into());
        }
        if let Err(e) = validate_issuer(&self.issuer) {
            v.push(format!("issuer: {e}"));
        }
        v.extend(self.mail.problems());
        v.extend(self.account.problems());
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            v.push("database_url: must start with sqlite:, postgres: or postgresql:".into());
        }
        if SigningAlg::parse(&self.signing_alg).is_none() {
            v.push("signing_alg: must be RS256, ES256 or EdDSA".into());
        }
        if !(MIN_ACCESS_TOKEN_LIFETIME_SECS..=MAX_ACCESS_TOKEN_LIFETIME_SECS)
            .contains(&self.access_token_lifetime_secs)
        {
            v.push(format!(
                "access_token_lifetime_secs: must be between {MIN_ACCESS_TOKEN_LIFETIME_SECS} and {MAX_ACCESS_TOKEN_LIFETIME_SECS}"
            ));
        }
        if !(30..=86_400).contains(&self.id_token_lifetime_secs) {
            v.push("id_token_lifetime_secs: must be between 30 and 86400".into());
        }
        if self.refresh_token_lifetime_secs < 60 {
            v.push("refresh_token_lifetime_secs: must be at least 60".into());
        }
        if self.refresh_reuse_grace_secs > 300 {
            v.push("refresh_reuse_grace_secs: at most 300 (it weakens reuse detection)".into());
        }
        if !(1..=600).contains(&self.authorization_code_lifetime_secs) {
            v.push("authorization_code_lifetime_secs: must be between 1 and 600".into());
        }
        if self.session_lifetime_secs < 60 {
            v.push("session_lifetime_secs: must be at least 60".into());
        }
        if self.key_check_interval_secs == 0 {
            v.push("key_check_interval_secs: must be at least 1".into());
        }
        if self.key_rotation_lead_secs <= self.key_check_interval_secs {
            v.push("key_rotation_lead_secs: must exceed key_check_interval_secs, so every replica loads a new key before it signs".into());
        }
        if self.key_rotation_period_secs <= self.key_rotation_lead_secs {
            v.push("key_rotation_period_secs: must exceed key_rotation_lead_secs".into());
        }
        if self.key_rotation_grace_secs < MAX_ACCESS_TOKEN_LIFETIME_SECS {
            v.push(format!(
                "key_rotation_grace_secs: must be at least the longest access token lifetime ({MAX_ACCESS_TOKEN_LIFETIME_SECS} s), so tokens keep verifying after a rotation"
            ));
        }
        if !self.database_service_url.is_empty() {
            match url::Url::parse(&self.database_service_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => v.push("database_service_url: an http(s) URL".into()),
            }
        }
        if !self.database_service_url.is_empty()
            && !self.dev_mode
            && self.provisioning_client_secret.is_empty()
        {
            v.push("provisioning_client_secret: required with database_service_url".into());
        }
        if url::Url::parse(&self.provisioning_token_url()).is_err() {
            v.push("provisioning_token_url: a URL".into());
        }
        if self.provisioning_client_id.is_empty() {
            v.push("provisioning_client_id: required".into());
        }
        if self.dev_mode && !self.dev_dashboard_url.is_empty() {
            match url::Url::parse(&self.dev_dashboard_url) {
                Ok(_) if self.dev_dashboard_url.ends_with('/') => {}
                _ => v.push("dev_dashboard_url: a URL ending with '/'".into()),
            }
        }
        if !self.master_key.is_empty()
            && let Err(e) = crate::crypto::MasterKey::from_base64(self.master_key.expose())
        {
            v.push(format!("master_key: {e}"));
        }
        match self.master_key_source.as_str() {
            MASTER_KEY_SOURCE_AUTO => {}
            MASTER_KEY_SOURCE_KEYRING => {
                if self.master_key_keyring_service.is_empty()
                    || self.master_key_keyring_user.is_empty()
                {
                    v.push(
                        "master_key_keyring_service, master_key_keyring_user: required with master_key_source = \"keyring\"".into(),
                    );
                }
                if !self.master_key.is_empty() {
                    v.push(
                        "master_key: not used with master_key_source = \"keyring\"; remove it"
                            .into(),
                    );
                }
            }
            _ => v.push("master_key_source: \"auto\" or \"keyring\"".into()),
        }
        for (i, k) in self.previous_master_keys.iter().enumerate() {
            if let Err(e) = crate::crypto::MasterKey::from_base64(k.expose()) {
                v.push(format!("previous_master_keys[{i}]: {e}"));
            }
        }
        if !(1..=10_000).contains(&self.master_key_rewrap_batch_size) {
            v.push("master_key_rewrap_batch_size: between 1 and 10000".into());
        }
        v
    }
}

/// An issuer is an https URL (http only on a loopback host) without query or fragment, ending
/// with '/' (Tansu's convention, so paths are appended without guessing).
pub fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => return Err("must be https (http only on 127.0.0.1/localhost)".into()),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if !issuer.ends_with('/') {
        return Err("must end with '/'".into());
    }
    Ok(())
}

pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_is_used_but_never_printed() {
        let c = Config {
            database_url: Secret::new("postgres://tansu:hunter2-pw@db/identity"),
            ..Config::default()
        };
        assert_eq!(c.database_url(), "postgres://tansu:hunter2-pw@db/identity");
        let printed = serde_json::to_string(&c).unwrap();
        assert!(!printed.contains("hunter2-pw"), "{printed}");
        assert!(!format!("{c:?}").contains("hunter2-pw"));
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(
            Config::default().validate().is_empty(),
            "{:?}",
            Config::default().validate()
        );
        let c = Config {
            issuer: "https://id.example/identity".into(),
            key_rotation_lead_secs: 10,
            key_check_interval_secs: 60,
            signing_alg: "HS256".into(),
            ..Config::default()
        };
        let problems = c.validate().join("\n");
        assert!(problems.contains("issuer: must end with '/'"), "{problems}");
        assert!(problems.contains("key_rotation_lead_secs"), "{problems}");
        assert!(problems.contains("signing_alg"), "{problems}");
        assert!(validate_issuer("http://example.com/").is_err());
        assert!(validate_issuer("http://127.0.0.1:9/").is_ok());
    }

    #[test]
    fn the_pool_size_is_two_per_core_plus_two_unless_set() {
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(Config::default().database_max_connections(), 2 * cores + 2);
        let set = Config {
            database_max_connections: 3,
            ..Config::default()
        };
        assert_eq!(set.database_max_connections(), 3);
    }
}
