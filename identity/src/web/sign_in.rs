//! What every step of a browser sign-in shares: the sign-in events, the lockout (the strictest
//! of the service's setting and the account's own tenants' policies — never a tenant the
//! request names), the tenant the sign-in lands in, and the session it ends with.

use crate::AppState;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;
use crate::store::users::UserRow;
use axum::http::HeaderMap;

/// Records a sign-in event (the typed email in the details; never the password).
pub(crate) async fn sign_in_event(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: Option<&str>,
    kind: &str,
    actor: String,
    outcome: &str,
    email: &str,
) {
    let meta = crate::events::Meta::from_headers(headers);
    let event = sign_in(tenant_id, kind, actor, outcome, email);
    crate::events::record(&state.events, &meta, event).await;
}

/// A sign-in event (the typed email in the details; never the password).
pub(crate) fn sign_in<'a>(
    tenant_id: Option<&'a str>,
    kind: &'a str,
    actor: String,
    outcome: &'a str,
    email: &str,
) -> crate::events::Event<'a> {
    crate::events::Event {
        tenant_id,
        kind,
        actor,
        outcome,
        details: serde_json::json!({ "email": email }),
    }
}

/// The lock rules of a sign-in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lockout {
    /// Failures of an (account, IP) pair before it is locked.
    pub threshold: i64,
    pub lock_ms: i64,
}

/// The lock rules for an account: the strictest of the service's configuration and the
/// policies of the account's own tenants (lowest threshold, longest lock). Never the policy of
/// a tenant the request names: an attacker choosing a lax tenant must not loosen the lock of
/// an account that belongs to strict ones. An unknown account gets the configuration's.
pub(crate) fn lockout_for(state: &AppState, tenants: &[TenantRow]) -> Lockout {
    let mut lockout = Lockout {
        threshold: i64::from(state.config.login_lockout_threshold),
        lock_ms: i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2),
    };
    for t in tenants {
        let policy = crate::tenants::policy_of(t);
        lockout.threshold = lockout.threshold.min(i64::from(policy.lockout_threshold));
        lockout.lock_ms = lockout.lock_ms.max(
            i64::try_from(policy.lockout_duration_secs)
                .unwrap_or(86_400)
                .saturating_mul(1000),
        );
    }
    lockout
}

/// [`lockout_for`] the tenants of a known user (the configuration's if they cannot be read).
pub(crate) async fn lockout_of_user(state: &AppState, user_id: &str) -> Lockout {
    let tenants = state
        .store
        .tenants_of_user(user_id)
        .await
        .unwrap_or_default();
    lockout_for(state, &tenants)
}

/// Counts a failed sign-in for the (account, IP) pair and the IP; returns the pair's count.
pub(crate) async fn record_failure(
    state: &AppState,
    lockout: Lockout,
    account_key: &str,
    ip_key: &str,
) -> i64 {
    let now = now_ms();
    let ip_lock = i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2);
    let account = state
        .store
        .record_login_failure(account_key, now, lockout.threshold, lockout.lock_ms)
        .await;
    let by_ip = state
        .store
        .record_login_failure(
            ip_key,
            now,
            i64::from(state.config.login_ip_lockout_threshold),
            ip_lock,
        )
        .await;
    if let Err(e) = by_ip.as_ref().and(account.as_ref()) {
        tracing::warn!(error = %e, "recording a failed sign-in failed");
    }
    account.unwrap_or(0)
}

/// The tenant a (password-verified) sign-in is for: the `tenant` hint (id or slug), else the
/// user's only membership; `None` for a user without memberships (a platform identity).
/// The tenant must be active and have the user as a member.
pub(crate) async fn login_tenant(
    state: &AppState,
    user: &UserRow,
    hint: Option<&str>,
) -> Result<Option<TenantRow>, &'static str> {
    let tenants = state
        .store
        .tenants_of_user(&user.id)
        .await
        .map_err(|_| LOGIN_UNAVAILABLE)?;
    pick_login_tenant(tenants, hint)
}

/// Refused sign-ins to a tenant (the same words whatever the reason).
pub(crate) const NO_TENANT_ACCESS: &str = "This account cannot sign in to this tenant.";

const LOGIN_UNAVAILABLE: &str = "Sign-in is unavailable right now; retry later.";

/// [`login_tenant`] over the user's tenants, already read.
pub(crate) fn pick_login_tenant(
    mut tenants: Vec<TenantRow>,
    hint: Option<&str>,
) -> Result<Option<TenantRow>, &'static str> {
    let tenant = match hint {
        Some(hint) => tenants
            .into_iter()
            .find(|t| t.id == hint || t.slug == hint)
            .ok_or(NO_TENANT_ACCESS)?,
        None => match tenants.len() {
            0 => return Ok(None),
            1 => tenants.remove(0),
            _ => {
                return Err(
                    "This account belongs to several tenants; the application must name one.",
                );
            }
        },
    };
    if tenant.status == crate::tenants::STATUS_ACTIVE {
        Ok(Some(tenant))
    } else {
        Err(NO_TENANT_ACCESS)
    }
}
