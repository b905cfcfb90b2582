//! TLS termination: a rustls server config whose certificate can be swapped while serving.
//!
//! The certificate lives in an [`ArcSwap`]; every handshake takes the current one, so a reload
//! changes what new connections see without touching the listener or open connections. The
//! files are re-read every `tls_reload_interval_ms` and on SIGHUP; a file that does not parse
//! (for example half-written by a renewal tool) is logged and the previous certificate kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Hands every handshake the current certificate.
#[derive(Debug)]
pub struct ReloadingCert {
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingCert {
    pub fn new(key: CertifiedKey) -> Self {
        Self {
            current: ArcSwap::from_pointee(key),
        }
    }

    pub fn replace(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads a PEM chain and key and checks that they belong together.
pub fn load_certified_key(cert: &[u8], key: &[u8]) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .context("certificate PEM")?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in the certificate file");
    let key = PrivateKeyDer::from_pem_slice(key).context("private key PEM")?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .context("unsupported private key")?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .context("the private key does not match the certificate")?;
    Ok(certified)
}

/// The raw bytes of the certificate and key files (compared to notice a change).
pub type PemFiles = (Vec<u8>, Vec<u8>);

fn read_pair(cert: &Path, key: &Path) -> anyhow::Result<PemFiles> {
    let c = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    Ok((c, k))
}

/// The server config: TLS 1.2/1.3 with aws-lc-rs, ALPN `h2` then `http/1.1`.
pub fn server_config(resolver: Arc<ReloadingCert>) -> anyhow::Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Loads the certificate files once (at start: an error here stops the gateway).
pub fn load_files(cert: &Path, key: &Path) -> anyhow::Result<(CertifiedKey, PemFiles)> {
    let pair = read_pair(cert, key)?;
    let certified = load_certified_key(&pair.0, &pair.1)?;
    Ok((certified, pair))
}

/// Re-reads the files every `interval` and on SIGHUP, swapping the certificate when the files
/// changed and parse. Runs until `stop` resolves.
pub async fn watch(
    resolver: Arc<ReloadingCert>,
    cert: PathBuf,
    key: PathBuf,
    mut last: PemFiles,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup_fut = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fut = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = hup_fut => true,
            _ = stop.changed() => return,
        };
        let pair = match read_pair(&cert, &key) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "certificate reload: cannot read files");
                continue;
            }
        };
        if !forced && pair == last {
            continue;
        }
        match load_certified_key(&pair.0, &pair.1) {
            Ok(k) => {
                resolver.replace(k);
                tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                last = pair;
            }
            Err(e) => {
                // Possibly a renewal tool caught between writing the two files: keep serving
                // the previous certificate and try again on the next tick.
                tracing::warn!(error = %format!("{e:#}"), "certificate reload: keeping the previous certificate");
            }
        }
    }
}
