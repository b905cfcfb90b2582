//! What a verified upstream identity leads to ([`land`]): the account it is linked to, a new
//! account (when the provider provisions), or a link to the existing account of its address
//! once that account proves itself with its password ([`super::federation_password`]).
//!
//! Security decisions:
//! - The link is the upstream `iss` + `sub` in this tenant. An address alone never signs
//!   anyone in: an existing account of the same address is linked only when the address is
//!   trusted ([`federation::trusted_email`]: the provider says it is verified *and* the
//!   provider's `trust_email` is on) *and* the account's password is given; an address that is
//!   not trusted never links, and its sign-in is refused when an account has it.
//! - A provisioned account's address is always verified: a trusted address is created at once;
//!   any other first sign-in is answered "check your mail", and the account (with the link)
//!   exists only once the address is proven by mail ([`super::federation_verify`]). No account
//!   ever carries a link whose address was never proven.
//! - The link form is CSRF-protected; its single-use token's row is bound to the browser's CSRF
//!   cookie and expires like the sign-in. Wrong passwords count against the same lockout as
//!   the login form.
//! - After the provider, the sign-in goes through the same steps as a password's
//!   ([`crate::web::steps::advance`]): an account with a second factor still gives its code.
//! - A provisioned or linked account enters the tenant as a member only if it is one already
//!   or the provider provisions (its mapped roles, never Owner); otherwise a page says so.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::AppState;
use crate::crypto;
use crate::federation::{
    self, FEDERATION_LINK, FEDERATION_PROVISION, FEDERATION_SIGN_IN, UpstreamIdentity,
};
use crate::http::client_ip;
use crate::store::federation::FederatedIdentityRow;
use crate::store::providers::ProviderRow;
use crate::store::tenants::{MembershipRow, TenantRow};
use crate::store::users::UserRow;
use crate::store::{new_id, now_ms};
use crate::web::authorize::AuthRequest;
use crate::web::federation::{FEDERATION_EXPIRED, event};
use crate::web::page::unavailable;
use crate::web::password::login_page;
use crate::web::sign_in::NO_TENANT_ACCESS;

const NOT_ALLOWED: &str = "This provider's account may not sign in to this tenant.";
const UNVERIFIED: &str = "An account with this address exists, but the address is not \
     verified by a provider this tenant trusts for it, so it cannot be linked. Sign in with \
     your password.";
const NO_ACCOUNT: &str = "No account of this tenant is linked to this sign-in, and this \
     provider does not create accounts. Ask the tenant's administrator for access.";
const NO_EMAIL: &str = "The provider did not share a usable email address, so no account can \
     be created for this sign-in.";

pub(crate) fn user_actor(user_id: &str) -> String {
    format!("user:{user_id}")
}

pub(crate) fn details(
    p: &ProviderRow,
    id: &UpstreamIdentity,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut d = serde_json::json!({"provider": p.id, "issuer": id.issuer, "subject": id.subject});
    if let (Some(o), serde_json::Value::Object(e)) = (d.as_object_mut(), extra) {
        o.extend(e);
    }
    d
}

/// A refusal after the provider: its event and the login page with `message`.
async fn refuse(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    (tenant, p, id): (&TenantRow, &ProviderRow, &UpstreamIdentity),
    kind: &str,
    reason: &str,
    message: &str,
) -> Response {
    let d = details(p, id, serde_json::json!({"reason": reason}));
    event(
        state,
        headers,
        &tenant.id,
        kind,
        "anonymous".into(),
        "denied",
        d,
    )
    .await;
    login_page(state, headers, req, Some(message), StatusCode::FORBIDDEN)
}

/// Where a verified upstream identity leads (see the module doc).
pub(crate) async fn land(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    tenant: &TenantRow,
    p: &ProviderRow,
    id: UpstreamIdentity,
) -> Response {
    let ctx = (tenant, p, &id);
    if !federation::domain_allowed(p, &id) {
        let reason = "domain not allowed";
        return refuse(
            state,
            headers,
            req,
            ctx,
            FEDERATION_SIGN_IN,
            reason,
            NOT_ALLOWED,
        )
        .await;
    }
    match state
        .store
        .federated_identity(&tenant.id, &id.issuer, &id.subject)
        .await
    {
        Ok(Some(link)) => match state.store.user_by_id(&link.user_id).await {
            Ok(Some(user)) if !user.disabled => {
                if let Err(e) = state
                    .store
                    .touch_federated_identity(&link.id, now_ms())
                    .await
                {
                    tracing::warn!(error = %e, "recording a linked sign-in failed");
                }
                return enter(state, headers, req, ctx, user, "fed").await;
            }
            Ok(Some(_)) => {
                let reason = "account disabled";
                return refuse(
                    state,
                    headers,
                    req,
                    ctx,
                    FEDERATION_SIGN_IN,
                    reason,
                    NO_TENANT_ACCESS,
                )
                .await;
            }
            // The account is gone: its link goes too.
            Ok(None) => {
                if let Err(e) = state
                    .store
                    .delete_federated_identity(&link.user_id, Some(&tenant.id), &link.id)
                    .await
                {
                    return unavailable(&e);
                }
            }
            Err(e) => return unavailable(&e),
        },
        Ok(None) => {}
        Err(e) => return unavailable(&e),
    }
    let Some(email) = id.email.clone() else {
        return refuse(
            state,
            headers,
            req,
            ctx,
            FEDERATION_PROVISION,
            "no email",
            NO_EMAIL,
        )
        .await;
    };
    match state.store.user_by_email(&email).await {
        Ok(Some(_)) if federation::trusted_email(p, &id).is_none() => {
            let reason = "address not verified by the provider";
            refuse(
                state,
                headers,
                req,
                ctx,
                FEDERATION_LINK,
                reason,
                UNVERIFIED,
            )
            .await
        }
        Ok(Some(user)) => {
            let d = details(p, &id, serde_json::json!({"user": user.id}));
            event(
                state,
                headers,
                &tenant.id,
                FEDERATION_LINK,
                "anonymous".into(),
                "pending",
                d,
            )
            .await;
            crate::web::federation_password::show_link(
                state,
                headers,
                req,
                ctx,
                &user,
                None,
                StatusCode::OK,
            )
            .await
        }
        // A trusted address is proven: the account is created now. Any other is proven by
        // mail first, and no account exists until then.
        Ok(None) if p.sign_in.auto_provision => match federation::trusted_email(p, &id) {
            Some(_) => provision(state, headers, req, ctx, email, Proof::Provider).await,
            None => super::federation_verify::send(state, headers, req, ctx, &email).await,
        },
        Ok(None) => {
            refuse(
                state,
                headers,
                req,
                ctx,
                FEDERATION_PROVISION,
                "provisioning off",
                NO_ACCOUNT,
            )
            .await
        }
        Err(e) => unavailable(&e),
    }
}

/// How a first sign-in's address was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// By mail ([`super::federation_verify`]): it counts for every tenant.
    Mail,
    /// The tenant trusts its provider's word ([`federation::trusted_email`]): it counts for
    /// that tenant only (another tenant's invitation, or its confirmed-address rule, asks
    /// for a proof by mail).
    Provider,
}

/// Creates the account of a first sign-in (a member of the tenant with the mapped roles), its
/// address proven by `proof`, links the upstream identity and signs it in.
pub(crate) async fn provision(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    ctx: (&TenantRow, &ProviderRow, &UpstreamIdentity),
    email: String,
    proof: Proof,
) -> Response {
    let (tenant, p, id) = ctx;
    // No password anyone knows: the account signs in through the provider (or after a reset).
    let password = match crypto::random_secret() {
        Ok(s) => s,
        Err(e) => return unavailable(&e),
    };
    let password_hash = match state.passwords.hash(&password).await {
        Ok(h) => h,
        Err(e) => return unavailable(&e),
    };
    let now = now_ms();
    let user = UserRow {
        id: new_id(),
        name: id
            .name
            .clone()
            .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned()),
        email,
        password_hash,
        tenant_id: None,
        roles: Vec::new(),
        disabled: false,
        platform_admin: false,
        home_tenant_id: Some(tenant.id.clone()),
        created_at: now,
        updated_at: now,
    };
    match state.store.insert_user(&user).await {
        Ok(()) => {}
        // The address was taken meanwhile: the next attempt offers the link.
        Err(e) if e.is_unique_violation() => {
            return login_page(
                state,
                headers,
                req,
                Some(FEDERATION_EXPIRED),
                StatusCode::CONFLICT,
            );
        }
        Err(e) => return unavailable(&e),
    }
    let proven = match proof {
        Proof::Mail => {
            state
                .store
                .mark_email_verified(&user.id, &user.email, now)
                .await
        }
        Proof::Provider => {
            state
                .store
                .mark_email_vouched(&user.id, &user.email, &tenant.id, now)
                .await
        }
    };
    if let Err(e) = proven {
        return unavailable(&e);
    }
    if let Err(e) = link(state, tenant, p, id, &user.id).await {
        return unavailable(&e);
    }
    let d = details(p, id, serde_json::json!({"user": user.id}));
    event(
        state,
        headers,
        &tenant.id,
        FEDERATION_PROVISION,
        user_actor(&user.id),
        "success",
        d,
    )
    .await;
    enter(state, headers, req, ctx, user, "fed").await
}

/// Stores the link of `id` to `user_id` in the tenant (an existing identical link is kept).
pub(crate) async fn link(
    state: &AppState,
    tenant: &TenantRow,
    p: &ProviderRow,
    id: &UpstreamIdentity,
    user_id: &str,
) -> anyhow::Result<()> {
    let now = now_ms();
    let row = FederatedIdentityRow {
        id: new_id(),
        tenant_id: tenant.id.clone(),
        provider_id: p.id.clone(),
        issuer: id.issuer.clone(),
        subject: id.subject.clone(),
        user_id: user_id.to_owned(),
        email: id.email.clone(),
        created_at: now,
        last_used_at: now,
    };
    match state.store.insert_federated_identity(&row).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_unique_violation() => {
            let existing = state
                .store
                .federated_identity(&tenant.id, &id.issuer, &id.subject)
                .await?;
            match existing {
                Some(l) if l.user_id == user_id => Ok(()),
                _ => anyhow::bail!("the upstream identity was linked to another account meanwhile"),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Signs `user` in to the tenant through the steps of every sign-in: a member already, or made
/// one when the provider provisions; otherwise refused.
pub(crate) async fn enter(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    ctx: (&TenantRow, &ProviderRow, &UpstreamIdentity),
    user: UserRow,
    amr: &str,
) -> Response {
    let (tenant, p, id) = ctx;
    match state.store.membership(&user.id, &tenant.id).await {
        Ok(Some(_)) => {}
        Ok(None) if p.sign_in.auto_provision => {
            let roles: Vec<String> = {
                let mut kept = Vec::new();
                for r in federation::mapped_roles(p, id) {
                    // A role deleted since the mapping was saved is skipped.
                    if crate::roles::exists(&state.store, &tenant.id, &r)
                        .await
                        .unwrap_or(false)
                    {
                        kept.push(r);
                    }
                }
                if kept.is_empty() {
                    kept.push(crate::tenants::ROLE_USER.to_owned());
                }
                kept
            };
            let m = MembershipRow {
                user_id: user.id.clone(),
                tenant_id: tenant.id.clone(),
                roles,
                created_at: now_ms(),
            };
            if let Err(e) = state.store.upsert_membership(&m).await {
                return unavailable(&e);
            }
            let d = details(
                p,
                id,
                serde_json::json!({"user": user.id, "roles": m.roles}),
            );
            event(
                state,
                headers,
                &tenant.id,
                FEDERATION_PROVISION,
                user_actor(&user.id),
                "member",
                d,
            )
            .await;
        }
        Ok(None) => {
            let reason = "not a member";
            return refuse(
                state,
                headers,
                req,
                ctx,
                FEDERATION_SIGN_IN,
                reason,
                NO_TENANT_ACCESS,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    }
    let d = details(p, id, serde_json::json!({"user": user.id}));
    event(
        state,
        headers,
        &tenant.id,
        FEDERATION_SIGN_IN,
        user_actor(&user.id),
        "success",
        d,
    )
    .await;
    let account_key = format!("a:{}|{}", user.email, client_ip(headers));
    let mut step = crate::web::steps::first_step(headers, &user, account_key);
    step.amr = amr.to_owned();
    step.tenant_resolved = true;
    step.tenant_id = Some(tenant.id.clone());
    step.failures_pending = false;
    let known = (step, crate::web::steps::Known::default());
    crate::web::steps::advance(state, headers, req, &user, known, None).await
}
