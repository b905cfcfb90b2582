//! Custom per-tenant roles mapping to scopes (`/admin/tenants/{tid}/roles…`), and the scopes a
//! member's roles allow in user grants.
//!
//! Design:
//! - The built-in roles `Owner`, `Admin` and `User` exist in every tenant, are not stored, and
//!   cannot be changed or deleted. `Owner` and `Admin` allow every tenant scope; `User` (and a
//!   member without roles) every tenant scope but the privileged ones ([`scopes::PRIVILEGED`]:
//!   `admin.tenant`, `secrets.read`, `secrets.write`), which a role must grant.
//! - A custom role names the scopes it allows. A member gets, in access and ID tokens, only
//!   the requested scopes one of their roles allows, plus the OpenID basics (`openid`,
//!   `profile`, `email`, `roles`, `offline_access`); the rest is dropped from the grant
//!   (RFC 6749 §3.3: the response's `scope` says what was granted). Platform-only scopes are
//!   never in a member's grant ([`scopes::for_user`]).
//! - Roles are read at every issuance (code redemption and refresh), so a change to a role or
//!   to a member's roles takes effect at the next token. A refresh token family remembers the
//!   scopes requested, so widening a role widens the next refreshed token up to that request.
//! - A role in use by a member cannot be deleted (409); unassign it first.
//! - Tenant admins manage the roles of their own tenant only (other tenants: 404, as for the
//!   users API).

// `Problem` is the handlers' error type, returned by the helpers too.
#![allow(clippy::result_large_err)]

use crate::scopes;
use crate::store::Store;
use crate::store::StoreResult;
use crate::tenants::{ROLE_ADMIN, ROLE_OWNER, ROLE_USER, ROLES};

/// Scopes every member may have whatever their roles.
pub const BASIC_SCOPES: &[&str] = &["openid", "profile", "email", "roles", "offline_access"];

pub fn is_builtin(name: &str) -> bool {
    ROLES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// Names: 1–64 characters of `A-Z a-z 0-9 _ . -`, not a built-in name in any case.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !is_builtin(name)
}

/// What a member's roles allow in a user grant.
#[derive(Debug, Clone, Default)]
pub struct RoleGrant {
    /// `Owner` or `Admin`: every tenant scope.
    all: bool,
    /// `User` (or no role): every tenant scope but the privileged ones.
    unprivileged: bool,
    /// What the member's custom roles name.
    custom: Vec<String>,
}

impl RoleGrant {
    /// Not narrowed by roles (a platform identity's grant, which has no tenant).
    pub fn unrestricted() -> Self {
        Self {
            all: true,
            ..Self::default()
        }
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.all
            || BASIC_SCOPES.contains(&scope)
            || self.custom.iter().any(|s| s == scope)
            || (self.unprivileged && !scopes::PRIVILEGED.contains(&scope))
    }
}

/// The scopes a member's roles allow (see the module doc and [`scopes::PRIVILEGED`]).
pub async fn allowed_scopes(
    store: &Store,
    tenant_id: &str,
    roles: &[String],
) -> StoreResult<RoleGrant> {
    let mut grant = RoleGrant {
        all: roles.iter().any(|r| r == ROLE_OWNER || r == ROLE_ADMIN),
        unprivileged: roles.is_empty() || roles.iter().any(|r| r == ROLE_USER),
        custom: Vec::new(),
    };
    if grant.all || roles.iter().all(|r| ROLES.contains(&r.as_str())) {
        return Ok(grant);
    }
    for role in store.tenant_roles(tenant_id).await? {
        if roles.contains(&role.name) {
            grant.custom.extend(role.scopes);
        }
    }
    Ok(grant)
}

/// Whether `name` is a role of the tenant (built-in or custom).
pub async fn exists(store: &Store, tenant_id: &str, name: &str) -> StoreResult<bool> {
    Ok(ROLES.contains(&name) || store.tenant_role(tenant_id, name).await?.is_some())
}
