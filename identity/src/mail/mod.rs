//! Outgoing mail: the port ([`Transport`]) with its two adapters — SMTP through `lettre`
//! ([`transport::Smtp`]: TLS or STARTTLS, credentials from the configuration or a secret file)
//! and a directory of `.eml` files for development ([`transport::Files`], the dev stack's
//! default) — the [`outbox::Outbox`] every message goes through, and the message
//! [`templates`] (built-in English, overridden per tenant).
//!
//! Security decisions:
//! - A message is stored before delivery is tried and leaves the outbox only once the mail
//!   server has taken it: a failure is retried with exponential backoff and never loses it.
//! - What a message says (it may carry a one-time link) is sealed under the master key in the
//!   outbox (AAD: the message id), and never logged; only its kind and id are.
//! - Plain-text SMTP is refused but to a loopback server; certificates are verified with the
//!   platform's roots.

pub mod outbox;
pub mod templates;
pub mod transport;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tansu_shared::config::Secret;

pub use outbox::Outbox;
pub use transport::Transport;

/// The `[identity.mail]` section (`TANSU_IDENTITY__MAIL__<KEY>` overrides).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `file` (default): every message is written to `dir` as an `.eml` file (development);
    /// `smtp`: delivered to `smtp_host`.
    pub transport: String,
    /// The `From` of every message.
    pub from: String,
    /// Where the `file` transport writes (default `<data_dir>/mail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub smtp_host: String,
    /// 0: by `smtp_tls` (465 for `tls`, 587 for `starttls`, 25 for `none`).
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS) or `none` (loopback servers only).
    pub smtp_tls: String,
    /// Empty: no authentication.
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// A file holding the password (read at start; takes precedence over `smtp_password`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    /// Connection and command timeout.
    pub smtp_timeout_ms: u64,
    /// The first retry's delay after a failed delivery; it doubles per attempt.
    pub retry_base_ms: u64,
    /// The longest delay between two attempts.
    pub retry_max_ms: u64,
    /// How often the outbox is looked at for due messages (new ones are sent at once).
    pub poll_ms: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: TRANSPORT_FILE.into(),
            from: "Tansu <no-reply@tansu.local>".into(),
            dir: None,
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_tls: TLS_STARTTLS.into(),
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            smtp_password_file: None,
            smtp_timeout_ms: 10_000,
            retry_base_ms: 5_000,
            retry_max_ms: 15 * 60 * 1000,
            poll_ms: 5_000,
        }
    }
}

pub const TRANSPORT_FILE: &str = "file";
pub const TRANSPORT_SMTP: &str = "smtp";
pub const TLS_STARTTLS: &str = "starttls";
pub const TLS_IMPLICIT: &str = "tls";
pub const TLS_NONE: &str = "none";

impl MailConfig {
    /// The directory of the `file` transport.
    pub fn dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("mail"))
    }

    /// Everything wrong with the section (empty: valid).
    pub fn problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            v.push("mail.from: a mailbox (`Name <address>` or `address`)".into());
        }
        match self.transport.as_str() {
            TRANSPORT_FILE => {}
            TRANSPORT_SMTP => {
                if self.smtp_host.is_empty() {
                    v.push("mail.smtp_host: required with transport = \"smtp\"".into());
                }
                match self.smtp_tls.as_str() {
                    TLS_STARTTLS | TLS_IMPLICIT => {}
                    TLS_NONE if is_loopback_host(&self.smtp_host) => {}
                    TLS_NONE => v.push(
                        "mail.smtp_tls: \"none\" only for a loopback server (127.0.0.1, ::1, localhost)"
                            .into(),
                    ),
                    _ => v.push("mail.smtp_tls: starttls, tls or none".into()),
                }
            }
            _ => v.push("mail.transport: file or smtp".into()),
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            v.push("mail.retry_base_ms, mail.retry_max_ms: 0 < base <= max".into());
        }
        if self.poll_ms == 0 {
            v.push("mail.poll_ms: at least 1".into());
        }
        v
    }
}

fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a message says: its subject and plain-text body (sealed in the outbox).
#[derive(Clone, Serialize, Deserialize)]
pub struct Content {
    pub subject: String,
    pub text: String,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Content([redacted])")
    }
}

/// The AAD an outbox message's content is sealed with.
pub(crate) fn aad(message_id: &str) -> Vec<u8> {
    format!("tansu-mail:{message_id}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_only_to_loopback() {
        let mut c = MailConfig {
            transport: TRANSPORT_SMTP.into(),
            smtp_host: "mail.example".into(),
            smtp_tls: TLS_NONE.into(),
            ..MailConfig::default()
        };
        assert_eq!(c.problems().len(), 1, "{:?}", c.problems());
        c.smtp_host = "127.0.0.1".into();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        c.from = "not a mailbox".into();
        assert_eq!(c.problems().len(), 1);
        assert!(MailConfig::default().problems().is_empty());
    }
}
