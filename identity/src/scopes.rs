//! The scope catalogue (DESIGN.md §3) and the audiences scopes imply.

/// Scopes this issuer knows in every mode.
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "roles",
    "offline_access",
    "db.read",
    "db.write",
    "db.provision",
    "storage.read",
    "storage.write",
    "secrets.read",
    "secrets.write",
    ADMIN_TENANT,
    EVENTS_WRITE,
    TENANTS_READ,
];

/// Services posting their security events (access denials) to `/admin/security-events/ingest`.
pub const EVENTS_WRITE: &str = "events.write";

/// The gateway reading the tenant directory (`/admin/tenant-directory/…`): platform clients
/// only (tokens without `tid`).
pub const TENANTS_READ: &str = "tenants.read";

/// Tenant administration: with the `Owner` or `Admin` role in the token's tenant, the
/// tenant-scoped admin API of that tenant only.
pub const ADMIN_TENANT: &str = "admin.tenant";

/// Exists only in dev mode: everything the admin API can do.
pub const ADMIN_FULL: &str = "admin.full";

/// The audience of the identity service's own APIs (admin, secrets).
pub const IDENTITY_AUDIENCE: &str = "tansu.identity";

/// Every scope known in this mode.
pub fn known(dev_mode: bool) -> Vec<&'static str> {
    let mut v = SCOPES.to_vec();
    if dev_mode {
        v.push(ADMIN_FULL);
    }
    v
}

/// Scopes of the platform's own services and operators: never in a user's grant (but
/// `admin.full` for a platform administrator's), never allowed to a tenant's client.
pub const PLATFORM_ONLY: &[&str] = &[
    ADMIN_FULL,
    "db.provision",
    EVENTS_WRITE,
    TENANTS_READ,
    "storage.admin",
];

pub fn is_platform_only(scope: &str) -> bool {
    PLATFORM_ONLY.contains(&scope)
}

/// Scopes that administer a tenant or open its vault: a member's roles must grant them
/// (Owner and Admin do; a custom role may name them; `User` does not).
pub const PRIVILEGED: &[&str] = &[ADMIN_TENANT, "secrets.read", "secrets.write"];

/// The scopes a user's grant may carry, whatever the client may ask for: no platform-only
/// scope, except `admin.full` for a platform administrator (`users.platform_admin`) — a
/// client allowed `admin.full` (the dev dashboard) must not turn a tenant user's sign-in into
/// platform access.
pub fn for_user(scopes: &[String], platform_admin: bool) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| !is_platform_only(s) || (platform_admin && s.as_str() == ADMIN_FULL))
        .cloned()
        .collect()
}

pub fn is_known(scope: &str, dev_mode: bool) -> bool {
    SCOPES.contains(&scope) || (dev_mode && scope == ADMIN_FULL)
}

/// The resource server a scope is for: `db.*` → `tansu.db`, `storage.*` → `tansu.storage`,
/// admin and secrets scopes → `tansu.identity`; OpenID scopes name no resource server.
pub fn audience_of(scope: &str) -> Option<&'static str> {
    if scope.starts_with("db.") {
        Some("tansu.db")
    } else if scope.starts_with("storage.") {
        Some("tansu.storage")
    } else if scope.starts_with("admin.")
        || scope.starts_with("secrets.")
        || scope.starts_with("events.")
        || scope.starts_with("tenants.")
    {
        Some(IDENTITY_AUDIENCE)
    } else {
        None
    }
}

/// The audiences of a set of scopes, deduplicated in a stable order.
pub fn audiences<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for aud in scopes.into_iter().filter_map(audience_of) {
        if !out.contains(&aud) {
            out.push(aud);
        }
    }
    out
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, space-delimited.
/// Returns the distinct tokens in request order, or `None` when the syntax is wrong.
pub fn parse(value: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        let ok = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return None;
        }
        if !out.iter().any(|t| t == token) {
            out.push(token.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_follow_scopes() {
        assert_eq!(
            audiences(["db.read", "storage.write", "db.write", "openid"]),
            vec!["tansu.db", "tansu.storage"]
        );
        assert_eq!(audiences(["admin.full"]), vec!["tansu.identity"]);
        assert!(audiences(["openid", "profile"]).is_empty());
    }

    #[test]
    fn scope_syntax() {
        assert_eq!(parse("a  b a").unwrap(), vec!["a", "b"]);
        assert!(parse("a\"b").is_none());
        assert!(parse("é").is_none());
        assert!(parse("").unwrap().is_empty());
        assert!(!is_known(ADMIN_FULL, false));
        assert!(is_known(ADMIN_FULL, true));
    }
}
