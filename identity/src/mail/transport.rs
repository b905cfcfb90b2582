//! The mail port and its adapters: SMTP through `lettre`, and `.eml` files in a directory.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{MailConfig, TLS_IMPLICIT, TLS_NONE, TRANSPORT_SMTP};
use crate::provisioning::BoxFuture;

/// Hands a message to the world. An error is a failed attempt (the outbox keeps the message
/// and retries); its text must not contain the message.
pub trait Transport: Send + Sync + std::fmt::Debug {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), String>>;
}

/// The transport the configuration names.
pub fn from_config(
    config: &MailConfig,
    data_dir: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<dyn Transport>> {
    Ok(if config.transport == TRANSPORT_SMTP {
        std::sync::Arc::new(Smtp::new(config)?)
    } else {
        std::sync::Arc::new(Files {
            dir: config.dir(data_dir),
        })
    })
}

/// SMTP with implicit TLS or required STARTTLS (plain text only to loopback servers, which
/// the configuration's validation enforces), certificates checked against the platform's roots.
pub struct Smtp {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Smtp {
    pub fn new(config: &MailConfig) -> anyhow::Result<Self> {
        let host = config.smtp_host.clone();
        let (tls, default_port) = match config.smtp_tls.as_str() {
            TLS_NONE => (Tls::None, 25),
            TLS_IMPLICIT => (Tls::Wrapper(TlsParameters::new(host.clone())?), 465),
            _ => (Tls::Required(TlsParameters::new(host.clone())?), 587),
        };
        let port = if config.smtp_port == 0 {
            default_port
        } else {
            config.smtp_port
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(config.smtp_timeout_ms)));
        if !config.smtp_username.is_empty() {
            let password = match &config.smtp_password_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        anyhow::anyhow!("mail.smtp_password_file {}: {e}", path.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                // The credential lettre presents to the server.
                None => config.smtp_password.expose().to_owned(),
            };
            builder = builder.credentials(Credentials::new(config.smtp_username.clone(), password));
        }
        Ok(Self {
            inner: builder.build(),
            host,
            port,
        })
    }
}

impl Transport for Smtp {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| format!("SMTP {}:{}: {e}", self.host, self.port))
        })
    }
}

/// Development: every message becomes `<dir>/<time>-<id>.eml` (0600: it may carry a link),
/// written whole under a temporary name first.
#[derive(Debug)]
pub struct Files {
    pub dir: PathBuf,
}

impl Transport for Files {
    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<(), String>> {
        let bytes = message.formatted();
        let dir = self.dir.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let name = format!(
                    "{}-{}",
                    crate::store::now_ms(),
                    tansu_shared::ids::uuid_v7().simple()
                );
                let part = dir.join(format!("{name}.part"));
                crate::crypto::write_private_file(&part, &bytes).map_err(|e| e.to_string())?;
                std::fs::rename(&part, dir.join(format!("{name}.eml")))
                    .map_err(|e| format!("{}: {e}", dir.display()))
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }
}
