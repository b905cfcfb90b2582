//! Tenants (shops): their policy, status and the rules for users' passwords and roles.
//!
//! A tenant is `active`, `suspended` or `deleted`; only an active tenant signs users in, issues
//! tokens to its clients and refreshes its users' tokens — every grant checks the status at
//! issuance, so a suspension takes effect at once (tokens already issued live out their short
//! lifetime). Users are global identities; a membership gives a user roles in one tenant and
//! tokens carry the `tid` and `roles` of the tenant the session signed in for.

use crate::clients::rfc3339;
use crate::store::tenants::TenantRow;

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_SUSPENDED: &str = "suspended";
pub const STATUS_DELETED: &str = "deleted";

pub const ROLE_OWNER: &str = "Owner";
pub const ROLE_ADMIN: &str = "Admin";
pub const ROLE_USER: &str = "User";
/// The built-in roles.
pub const ROLES: &[&str] = &[ROLE_OWNER, ROLE_ADMIN, ROLE_USER];

/// A tenant's policy (absent fields take the defaults) and how the admin API shows a tenant.
pub use tansu_shared::admin_api::{Tenant, TenantPolicy};

/// The services a tenant's service may get a token for on a user's behalf (token exchange).
pub const EXCHANGE_AUDIENCES: &[&str] = &["tansu.db", "tansu.storage"];

/// The most origins a tenant or a client may allow.
pub const MAX_ALLOWED_ORIGINS: usize = 50;

/// Everything wrong with a policy (empty: valid).
pub fn policy_problems(p: &TenantPolicy) -> Vec<String> {
    let mut v = Vec::new();
    if !(8..=128).contains(&p.password_min_length) {
        v.push("policy.password_min_length: between 8 and 128".into());
    }
    if let Some(l) = p.access_token_lifetime_secs
        && !(crate::config::MIN_ACCESS_TOKEN_LIFETIME_SECS
            ..=crate::config::MAX_ACCESS_TOKEN_LIFETIME_SECS)
            .contains(&l)
    {
        v.push("policy.access_token_lifetime_secs: between 30 s and 1 day".into());
    }
    if p.refresh_token_lifetime_secs
        .is_some_and(|l| !(60..=90 * 86_400).contains(&l))
    {
        v.push("policy.refresh_token_lifetime_secs: between 60 s and 90 days".into());
    }
    if p.session_timeout_secs
        .is_some_and(|l| !(60..=30 * 86_400).contains(&l))
    {
        v.push("policy.session_timeout_secs: between 60 s and 30 days".into());
    }
    if !(1..=100).contains(&p.lockout_threshold) {
        v.push("policy.lockout_threshold: between 1 and 100".into());
    }
    if !(1..=86_400).contains(&p.lockout_duration_secs) {
        v.push("policy.lockout_duration_secs: between 1 s and 1 day".into());
    }
    if p.display_name
        .as_deref()
        .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
    {
        v.push("policy.display_name: at most 100 characters".into());
    }
    if p.logo_url
        .as_deref()
        .is_some_and(|u| u.len() > 2048 || !url::Url::parse(u).is_ok_and(|u| u.scheme() == "https"))
    {
        v.push("policy.logo_url: an https URL".into());
    }
    if p.primary_colour
        .as_deref()
        .is_some_and(|c| !valid_colour(c))
    {
        v.push("policy.primary_colour: #rrggbb".into());
    }
    if p.allowed_origins.len() > MAX_ALLOWED_ORIGINS {
        v.push(format!(
            "policy.allowed_origins: at most {MAX_ALLOWED_ORIGINS}"
        ));
    }
    if p.token_exchange.len() > MAX_ALLOWED_ORIGINS {
        v.push(format!(
            "policy.token_exchange: at most {MAX_ALLOWED_ORIGINS} rules"
        ));
    }
    for r in &p.token_exchange {
        if r.client_id.is_empty() || r.client_id.len() > 128 {
            v.push("policy.token_exchange: a rule names a client_id".into());
        }
        for a in &r.audiences {
            if !EXCHANGE_AUDIENCES.contains(&a.as_str()) {
                v.push(format!(
                    "policy.token_exchange: audience {:?} is not one of {EXCHANGE_AUDIENCES:?}",
                    a.chars().take(40).collect::<String>()
                ));
            }
        }
    }
    for o in &p.allowed_origins {
        if !tansu_shared::origin::is_serialized(o) {
            v.push(format!(
                "policy.allowed_origins: {:?} is not an origin like \"https://app.example\" (lowercase, no path, no default port)",
                o.chars().take(80).collect::<String>()
            ));
        }
    }
    v
}

/// A colour of the form `#rrggbb`.
pub fn valid_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The tenant's stored policy (the defaults if it cannot be read).
pub fn policy_of(row: &TenantRow) -> TenantPolicy {
    serde_json::from_str(&row.policy).unwrap_or_default()
}

impl From<&TenantRow> for Tenant {
    fn from(t: &TenantRow) -> Self {
        Self {
            id: t.id.clone(),
            slug: t.slug.clone(),
            name: t.name.clone(),
            status: t.status.clone(),
            policy: policy_of(t),
            created_at: rfc3339(t.created_at),
            updated_at: rfc3339(t.updated_at),
        }
    }
}

/// Slugs: 3–63 characters of `a-z 0-9 -`, not starting or ending with `-`, and not a UUID
/// (so that `tenant_by_ref` is unambiguous).
pub fn valid_slug(s: &str) -> bool {
    (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && uuid::Uuid::parse_str(s).is_err()
}

pub fn valid_name(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= 200 && !s.chars().any(char::is_control)
}

pub fn valid_role(s: &str) -> bool {
    ROLES.contains(&s)
}

/// A small bundled list of the most common passwords (lower-case), refused whatever the
/// length policy says.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "qwerty123456",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "welcome123456",
    "administrator",
    "administrator1",
    "changeme1234",
    "abc123456789",
    "111111111111",
    "000000000000",
    "aaaaaaaaaaaa",
    "trustno11234",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "monkey123456",
    "dragon123456",
    "superman1234",
    "correcthorsebatterystaple",
    "correct horse battery staple",
    "p@ssw0rd1234",
    "passw0rd1234",
    "1q2w3e4r5t6y",
    "zaq12wsxcde3",
];

/// Checks a new password against the policy; the reasons it is refused (empty: accepted).
/// Never echoes the password.
pub fn password_problems(
    password: &str,
    email: &str,
    name: &str,
    policy: &TenantPolicy,
) -> Vec<String> {
    let mut v = Vec::new();
    let len = password.chars().count();
    if len < policy.password_min_length {
        v.push(format!(
            "password: at least {} characters",
            policy.password_min_length
        ));
    }
    if len > 1024 {
        v.push("password: at most 1024 characters".into());
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if (!email.is_empty() && lower.contains(&email)) || (local.len() >= 3 && lower.contains(local))
    {
        v.push("password: must not contain the email address".into());
    }
    let name = name.trim().to_lowercase();
    if name.chars().count() >= 3
        && (lower.contains(&name)
            || name
                .split_whitespace()
                .any(|part| part.chars().count() >= 4 && lower.contains(part)))
    {
        v.push("password: must not contain the user's name".into());
    }
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        v.push("password: too common".into());
    }
    v
}

pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= 320
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branding_is_checked() {
        let ok = TenantPolicy {
            display_name: Some("Maple & Co".into()),
            logo_url: Some("https://cdn.example/logo.png".into()),
            primary_colour: Some("#7A1f5c".into()),
            ..TenantPolicy::default()
        };
        assert!(policy_problems(&ok).is_empty());
        let bad = TenantPolicy {
            display_name: Some("a\nb".into()),
            logo_url: Some("http://cdn.example/logo.png".into()),
            primary_colour: Some("red".into()),
            ..TenantPolicy::default()
        };
        assert_eq!(
            policy_problems(&bad).len(),
            3,
            "{:?}",
            policy_problems(&bad)
        );
    }

    #[test]
    fn slugs() {
        assert!(valid_slug("acme-shop"));
        assert!(!valid_slug("ac"));
        assert!(!valid_slug("-acme"));
        assert!(!valid_slug("Acme"));
        assert!(!valid_slug(&uuid::Uuid::now_v7().to_string()));
    }

    #[test]
    fn password_policy() {
        let p = TenantPolicy::default();
        assert!(
            password_problems("a long unique phrase 42", "bob@x.io", "Bob Builder", &p).is_empty()
        );
        assert!(!password_problems("short", "bob@x.io", "Bob", &p).is_empty());
        assert!(!password_problems("Password1234", "bob@x.io", "Bob", &p).is_empty());
        assert!(!password_problems("xx bob@x.io yy", "bob@x.io", "Bob", &p).is_empty());
        assert!(
            !password_problems("my builder passphrase", "z@x.io", "Bob Builder", &p).is_empty()
        );
    }
}
