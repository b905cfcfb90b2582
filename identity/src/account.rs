//! Self-service account: the single-use links sent by mail — password reset and email
//! verification — and the notices (password changed, a sign-in from a new browser: see
//! [`crate::devices`]).
//!
//! Security decisions:
//! - A link carries 256 random bits; only their SHA-256 is stored, with its kind, account,
//!   address and expiry. It works once (the use is one conditional update) and only until it
//!   expires (`password_reset_lifetime_secs`, 30 min; `email_verification_lifetime_secs`, 1 day).
//! - A reset request answers the same whether or not an account has the address; the work (a
//!   lookup, a link, a queued message) runs after the answer, so its time tells nothing either.
//! - At most `link_requests_per_hour` links of a kind per account per hour (further requests
//!   send nothing); the web layer limits requests per client IP.
//! - A verification link proves the address it was sent to, and only while it is still the
//!   account's address.

use serde::{Deserialize, Serialize};

use crate::crypto;
use crate::mail::templates::{self, Values};
use crate::mail::{Content, Outbox};
use crate::store::account::AccountTokenRow;
use crate::store::tenants::TenantRow;
use crate::store::users::UserRow;
use crate::store::{Store, now_ms};

pub use crate::mail::templates::{
    EMAIL_VERIFICATION, NEW_SIGN_IN, PASSWORD_CHANGED, PASSWORD_RESET,
};

/// A link that moves the account to a new address once that address proves it is the owner's
/// (sent to the new address; its message is the verification's).
pub const EMAIL_CHANGE: &str = "email_change";

/// The `[identity.account]` section (`TANSU_IDENTITY__ACCOUNT__<KEY>` overrides).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountConfig {
    pub password_reset_lifetime_secs: u64,
    pub email_verification_lifetime_secs: u64,
    /// Links of one kind per account per hour; more requests send nothing.
    pub link_requests_per_hour: u32,
    /// Reset requests per client IP in a window of `link_ip_lock_secs` (further requests from
    /// the IP are refused until the window ends).
    pub link_requests_per_ip: u32,
    /// The window of `link_requests_per_ip` (at most a day).
    pub link_ip_lock_secs: u64,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            password_reset_lifetime_secs: 30 * 60,
            email_verification_lifetime_secs: 86_400,
            link_requests_per_hour: 3,
            link_requests_per_ip: 30,
            link_ip_lock_secs: 3600,
        }
    }
}

impl AccountConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !(60..=86_400).contains(&self.password_reset_lifetime_secs) {
            v.push("account.password_reset_lifetime_secs: between 1 min and 1 day".into());
        }
        if !(60..=30 * 86_400).contains(&self.email_verification_lifetime_secs) {
            v.push("account.email_verification_lifetime_secs: between 1 min and 30 days".into());
        }
        if !(1..=86_400).contains(&self.link_ip_lock_secs) {
            v.push("account.link_ip_lock_secs: between 1 s and 1 day".into());
        }
        if self.link_requests_per_hour == 0 || self.link_requests_per_ip == 0 {
            v.push("account.link_requests_per_hour, link_requests_per_ip: at least 1".into());
        }
        v
    }
}

/// What sending account mail needs.
#[derive(Debug, Clone, Copy)]
pub struct Mailer<'a> {
    pub store: &'a Store,
    pub outbox: &'a Outbox,
    /// The issuer URL (ends with `/`): links point under it.
    pub issuer: &'a str,
    pub config: &'a AccountConfig,
}

/// The path (under the issuer) a link of `kind` opens.
pub fn link_path(kind: &str) -> &'static str {
    if kind == PASSWORD_RESET {
        "account/password/reset"
    } else {
        "account/email/verify"
    }
}

impl Mailer<'_> {
    fn lifetime_secs(&self, kind: &str) -> u64 {
        // A reset and an address change act on the account: the short lifetime.
        if kind == PASSWORD_RESET || kind == EMAIL_CHANGE {
            self.config.password_reset_lifetime_secs
        } else {
            self.config.email_verification_lifetime_secs
        }
    }

    /// Issues a link of `kind` for `user` (unless the account asked for too many this hour)
    /// and queues its message. Whether a message was queued.
    pub async fn send_link(
        &self,
        kind: &str,
        user: &UserRow,
        tenant: Option<&TenantRow>,
    ) -> anyhow::Result<bool> {
        self.send_link_to(kind, user, &user.email, tenant).await
    }

    /// [`Self::send_link`] to `address` (a new address for [`EMAIL_CHANGE`]).
    pub async fn send_link_to(
        &self,
        kind: &str,
        user: &UserRow,
        address: &str,
        tenant: Option<&TenantRow>,
    ) -> anyhow::Result<bool> {
        let now = now_ms();
        let recent = self
            .store
            .account_tokens_since(&user.id, kind, now - 3_600_000)
            .await?;
        if recent >= i64::from(self.config.link_requests_per_hour) {
            tracing::info!(user_id = %user.id, kind, "link not sent: too many this hour");
            return Ok(false);
        }
        let token = crypto::random_secret()?;
        let lifetime = self.lifetime_secs(kind);
        let lifetime_ms = i64::try_from(lifetime.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        self.store
            .insert_account_token(&AccountTokenRow {
                token_hash: crypto::sha256(token.as_bytes()),
                kind: kind.to_owned(),
                user_id: user.id.clone(),
                email: address.to_owned(),
                tenant_id: tenant.map(|t| t.id.clone()),
                created_at: now,
                expires_at: now + lifetime_ms,
            })
            .await?;
        let link = format!("{}{}?token={token}", self.issuer, link_path(kind));
        let template = if kind == EMAIL_CHANGE {
            EMAIL_VERIFICATION
        } else {
            kind
        };
        let content = self
            .content(template, address, tenant, (&link, lifetime / 60, ""))
            .await?;
        self.outbox
            .enqueue(tenant.map(|t| t.id.as_str()), kind, address, &content)
            .await?;
        Ok(true)
    }

    /// A password reset for whoever has `email`: a link if an enabled account has it,
    /// nothing otherwise (the caller answers the same either way). `tenant` is named by
    /// whoever asked, so it brands the message and owns the link only when the account is one
    /// of its members; for anyone else the platform's message is sent: a tenant never learns
    /// of, nor words a link for, an account outside it. `Some(tenant)`: a link was sent, under
    /// that tenant (`None`: the platform's).
    pub async fn request_password_reset(
        &self,
        email: &str,
        tenant: Option<&TenantRow>,
    ) -> anyhow::Result<Option<Option<String>>> {
        let Some(user) = self
            .store
            .user_by_email(email)
            .await?
            .filter(|u| !u.disabled)
        else {
            return Ok(None);
        };
        let tenant = match tenant {
            Some(t) if self.store.membership(&user.id, &t.id).await?.is_some() => Some(t),
            _ => None,
        };
        let sent = self.send_link(PASSWORD_RESET, &user, tenant).await?;
        Ok(sent.then(|| tenant.map(|t| t.id.clone())))
    }

    /// Tells the account's address that its password changed (with where to reset it).
    pub async fn password_changed(
        &self,
        user: &UserRow,
        tenant: Option<&TenantRow>,
    ) -> anyhow::Result<()> {
        let link = format!("{}account/password/forgot", self.issuer);
        let content = self
            .content(PASSWORD_CHANGED, &user.email, tenant, (&link, 0, ""))
            .await?;
        self.outbox
            .enqueue(
                tenant.map(|t| t.id.as_str()),
                PASSWORD_CHANGED,
                &user.email,
                &content,
            )
            .await
    }

    /// Tells the account's address that it was signed in to from a browser it had not used
    /// (`device`: that browser and network in the service's words), with where to end sessions.
    pub async fn new_sign_in(
        &self,
        user: &UserRow,
        tenant: Option<&TenantRow>,
        device: &str,
    ) -> anyhow::Result<()> {
        let link = format!("{}account/sessions", self.issuer);
        let content = self
            .content(NEW_SIGN_IN, &user.email, tenant, (&link, 0, device))
            .await?;
        self.outbox
            .enqueue(
                tenant.map(|t| t.id.as_str()),
                NEW_SIGN_IN,
                &user.email,
                &content,
            )
            .await
    }

    /// The message of `kind` to `address`; `(link, minutes, device)` fill its placeholders.
    async fn content(
        &self,
        kind: &str,
        address: &str,
        tenant: Option<&TenantRow>,
        (link, minutes, device): (&str, u64, &str),
    ) -> anyhow::Result<Content> {
        let values = Values {
            product: tenant.map(|t| t.name.as_str()).unwrap_or(""),
            email: address,
            link,
            minutes,
            device,
        };
        Ok(templates::render(self.store, tenant.map(|t| t.id.as_str()), kind, &values).await?)
    }
}

/// The live link of `kind` the token names, without using it (`None`: unknown, used, expired).
pub async fn peek(
    store: &Store,
    kind: &str,
    token: &str,
) -> anyhow::Result<Option<AccountTokenRow>> {
    Ok(store
        .live_account_token(&crypto::sha256(token.as_bytes()), kind, now_ms())
        .await?)
}

/// Uses the link of `kind` the token names (once).
pub async fn redeem(
    store: &Store,
    kind: &str,
    token: &str,
) -> anyhow::Result<Option<AccountTokenRow>> {
    Ok(store
        .use_account_token(&crypto::sha256(token.as_bytes()), kind, now_ms())
        .await?)
}

/// The live verification or address-change link the token names (not used yet).
pub async fn peek_address_link(
    store: &Store,
    token: &str,
) -> anyhow::Result<Option<AccountTokenRow>> {
    match peek(store, EMAIL_VERIFICATION, token).await? {
        Some(link) => Ok(Some(link)),
        None => peek(store, EMAIL_CHANGE, token).await,
    }
}

/// Uses a verification link (the address it was sent to is proven if it is still the
/// account's) or an address-change link (the account moves to the address it was sent to,
/// proven, unless another account has taken it meanwhile). Whether it worked.
pub async fn verify_email(store: &Store, token: &str) -> anyhow::Result<bool> {
    if let Some(link) = redeem(store, EMAIL_VERIFICATION, token).await? {
        return Ok(store
            .mark_email_verified(&link.user_id, &link.email, now_ms())
            .await?);
    }
    let Some(link) = redeem(store, EMAIL_CHANGE, token).await? else {
        return Ok(false);
    };
    match store
        .change_email(&link.user_id, &link.email, now_ms())
        .await
    {
        Ok(changed) => Ok(changed),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}
