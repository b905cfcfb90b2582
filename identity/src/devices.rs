//! The browsers an account signs in from, and the new-sign-in notice.
//!
//! The rule: at every sign-in the browser presents its device cookie (`tansu_device`: 256
//! random bits the service gave it at an earlier sign-in, `HttpOnly`, kept 400 days and renewed
//! at each sign-in) or gets a new one. The account remembers the SHA-256 of each cookie it
//! signed in with. A sign-in sends the account's address a notice when the account has signed in
//! before but never from this browser. No notice for the account's first browser (a
//! registration or a first sign-in tells the owner nothing new), nor for a browser the account
//! used within the last 400 days.
//!
//! Security decisions:
//! - The cookie is only a hint against noise: it authenticates nothing, and only its hash is
//!   stored. A browser that drops cookies (private windows) is new at each sign-in: one notice
//!   too many, never one too few. A well-formed value the browser presents is kept even if the
//!   service did not give it: a value planted in the owner's browser (cookie injection from a
//!   sibling domain) could later silence the notice of a sign-in from another browser with the
//!   same value. The cookie is `HttpOnly` and scoped to the issuer's path; nothing else rests
//!   on it.
//! - The notice names the browser and network in the service's own words (a browser family and
//!   system from a fixed list, and the client IP): never the request's text, so whoever signs in
//!   cannot write into the owner's mailbox.
//! - Remembering and the notice run after the answer; a failure is logged, never blocks a
//!   sign-in.

use crate::account::Mailer;
use crate::crypto;
use crate::store::devices::Device;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;
use crate::store::users::UserRow;

/// The device cookie's lifetime: 400 days (the longest a browser keeps a cookie).
pub const DEVICE_LIFETIME_SECS: u64 = 400 * 86_400;

/// Whether a device cookie's value has the shape the service gives (43 base64url characters).
pub fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Remembers that `user` signed in from the browser with the device cookie `device_id`, and
/// queues the new-sign-in notice when the rule (module doc) says so. What the browser was to
/// the account.
pub async fn signed_in(
    mailer: &Mailer<'_>,
    user: &UserRow,
    tenant: Option<&TenantRow>,
    device_id: &str,
    about: &str,
) -> anyhow::Result<Device> {
    let seen = mailer
        .store
        .remember_device(&user.id, &crypto::sha256(device_id.as_bytes()), now_ms())
        .await?;
    if seen == Device::New {
        mailer.new_sign_in(user, tenant, about).await?;
        tracing::info!(user_id = %user.id, "sign-in from a new browser: notice queued");
    }
    Ok(seen)
}

/// A browser and its network in the service's words, from the request's `User-Agent` and the
/// client IP: `Firefox on Linux, from 203.0.113.7`.
pub fn describe(user_agent: &str, client_ip: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "an unknown browser"
    };
    let system = if ua.contains("iPhone") || ua.contains("iPad") {
        Some("iOS")
    } else if ua.contains("Android") {
        Some("Android")
    } else if ua.contains("Windows") {
        Some("Windows")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        Some("macOS")
    } else if ua.contains("CrOS") {
        Some("ChromeOS")
    } else if ua.contains("Linux") {
        Some("Linux")
    } else {
        None
    };
    let place = match client_ip.parse::<std::net::IpAddr>() {
        Ok(ip) => format!(", from {ip}"),
        Err(_) => String::new(),
    };
    match system {
        Some(s) => format!("{browser} on {s}{place}"),
        None => format!("{browser}{place}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_is_described_in_fixed_words_only() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(
            describe(firefox, "203.0.113.7"),
            "Firefox on Linux, from 203.0.113.7"
        );
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                    Gecko) Chrome/131.0 Safari/537.36 Edg/131.0";
        assert_eq!(describe(edge, "unknown"), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(describe(iphone, "::1"), "Safari on iOS, from ::1");
        let hostile = "Visit https://evil.example now\r\nSubject: x";
        let d = describe(hostile, "https://evil.example");
        assert_eq!(d, "an unknown browser");
        assert!(well_formed(&"a".repeat(43)) && !well_formed(&"a".repeat(42)));
        assert!(!well_formed(&format!("{};", "a".repeat(42))));
    }
}
