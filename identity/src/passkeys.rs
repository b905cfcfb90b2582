//! Passkeys (WebAuthn, through `webauthn-rs`): registration, passwordless sign-in with a
//! discoverable credential, and a passkey as the second factor after a password.
//!
//! Security decisions:
//! - The relying party is the issuer: its host is the RP id, its origin the only origin
//!   accepted. An issuer whose host is not a domain (an IP literal cannot be an RP id) has no
//!   passkeys.
//! - A ceremony's state (the challenge) stays on the server: the page holds a random token,
//!   the store its SHA-256 with what the ceremony is bound to (the session that registers, the
//!   CSRF cookie of a sign-in, the pending sign-in step of a second factor) and its kind, user
//!   and tenant. A ceremony is taken (deleted) before it is checked: single use; it expires
//!   after [`CEREMONY_LIFETIME_MS`].
//! - A passkey belongs to a user in one tenant. Every lookup of a presented credential at a
//!   passwordless sign-in is scoped by the tenant of the sign-in (the request's tenant; none: the platform's), so a
//!   passkey of another tenant's user is unknown here. The credential must also name the
//!   user handle it was registered with.
//! - The second factor after a password is scoped the same way ([`factor_passkeys`]): a
//!   user's passkey registered in tenant B is no factor of a sign-in to tenant A, even for a
//!   member of both. Only while the tenant is not settled yet (the picker comes after the
//!   second factor) does any of the user's tenant passkeys serve, and the one used settles
//!   the tenant.
//! - User verification is required; a passwordless sign-in is therefore multi-factor.
//! - The signature counter must grow: a counter at or below the stored one (a cloned
//!   authenticator) is refused ([`Verified::Cloned`]); the caller records a security event.
//!   The new counter is stored by compare-and-set, so two assertions with one counter value
//!   cannot both pass.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};

use crate::crypto;
use crate::store::passkeys::{CeremonyRow, PasskeyRow};
use crate::store::{Store, new_id, now_ms};

/// How long a ceremony may take from its options to the browser's answer.
pub const CEREMONY_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// The longest name of a passkey (characters).
pub const MAX_NAME_CHARS: usize = 60;

const KIND_REGISTER: &str = "register";
const KIND_SIGN_IN: &str = "sign_in";
const KIND_FACTOR: &str = "factor";

/// The relying party of this issuer (`None` inside: passkeys are unavailable).
#[derive(Debug, Clone)]
pub struct RelyingParty(Option<Webauthn>);

impl RelyingParty {
    /// The relying party of `issuer` (its host and origin).
    pub fn for_issuer(issuer: &str) -> Self {
        let built = url::Url::parse(issuer).ok().and_then(|u| {
            let rp_id = u.domain()?.to_owned();
            let origin = Url::parse(&u.origin().ascii_serialization()).ok()?;
            WebauthnBuilder::new(&rp_id, &origin)
                .ok()?
                .rp_name("Tansu")
                .build()
                .ok()
        });
        if built.is_none() {
            tracing::info!("passkeys are unavailable: the issuer's host is not a domain name");
        }
        Self(built)
    }

    pub fn available(&self) -> bool {
        self.0.is_some()
    }
}

/// A started ceremony: the token the page sends back and the options for the browser
/// (`{"publicKey": …}`, binary values base64url).
#[derive(Debug)]
pub struct Started {
    pub token: String,
    pub options: serde_json::Value,
}

/// Why a ceremony's answer was not accepted, or what it proved.
#[derive(Debug)]
pub enum Verified {
    /// The passkey used (its row updated).
    Passkey(Box<PasskeyRow>),
    /// No live ceremony of this kind for this binding (expired, replayed, foreign).
    Expired,
    /// The answer does not verify (malformed, wrong challenge or origin, bad signature).
    Invalid,
    /// The credential is not registered for this user or tenant.
    Unknown,
    /// The signature counter did not grow: a cloned authenticator.
    Cloned(Box<PasskeyRow>),
    /// A new passkey (registration).
    Registered(Box<PasskeyRow>),
    /// The credential is registered already.
    Duplicate,
}

#[derive(Serialize, Deserialize)]
struct Registration {
    handle: Uuid,
    state: PasskeyRegistration,
}

/// The tenant a second factor is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorScope<'a> {
    /// The sign-in's tenant is settled (`None`: the platform).
    Tenant(Option<&'a str>),
    /// Not yet: the picker waits for the second factor, so the user's tenants are not told
    /// to whoever typed the password. The passkey used then settles the tenant.
    Unsettled,
}

/// The passkeys a second factor may use: the user's passkeys registered in the sign-in's
/// tenant, as at a passwordless sign-in (a passkey is a credential of the user in one tenant,
/// and proves nothing in another). While the tenant is [`FactorScope::Unsettled`], the
/// user's passkeys of every tenant (not the platform's): the one used names the tenant the
/// sign-in continues to, where membership and status are checked as for a picked tenant.
pub async fn factor_passkeys(
    store: &Store,
    user_id: &str,
    scope: FactorScope<'_>,
) -> anyhow::Result<Vec<PasskeyRow>> {
    Ok(match scope {
        FactorScope::Tenant(tenant_id) => store.passkeys_of(user_id, tenant_id).await?,
        FactorScope::Unsettled => store
            .all_passkeys_of(user_id)
            .await?
            .into_iter()
            .filter(|p| p.tenant_id.is_some())
            .collect(),
    })
}

/// Whether a user has a second factor for a sign-in: a confirmed TOTP (`totp`, read by the
/// caller; one per user) or a passkey the second factor may use ([`factor_passkeys`]).
pub async fn has_second_factor(
    store: &Store,
    user_id: &str,
    totp: bool,
    scope: FactorScope<'_>,
) -> anyhow::Result<bool> {
    Ok(totp || !factor_passkeys(store, user_id, scope).await?.is_empty())
}

/// Starts registering a passkey for a user in a tenant, bound to `binding`; `None` when
/// passkeys are unavailable.
pub async fn begin_registration(
    store: &Store,
    rp: &RelyingParty,
    (user_id, email, name): (&str, &str, &str),
    tenant_id: Option<&str>,
    binding: &[u8],
) -> anyhow::Result<Option<Started>> {
    let Some(webauthn) = &rp.0 else {
        return Ok(None);
    };
    let existing = store.passkeys_of(user_id, tenant_id).await?;
    let handle = match existing.first() {
        Some(p) => Uuid::parse_str(&p.user_handle)?,
        None => Uuid::from_slice(&crypto::random_bytes(16)?)?,
    };
    let exclude: Vec<CredentialID> = existing
        .iter()
        .map(|p| p.credential_id.clone().into())
        .collect();
    let display = if name.trim().is_empty() { email } else { name };
    let (ccr, state) =
        webauthn.start_passkey_registration(handle, email, display, Some(exclude))?;
    let mut options = serde_json::to_value(&ccr)?;
    // A discoverable credential, so the passkey alone can sign in.
    options["publicKey"]["authenticatorSelection"]["residentKey"] = "required".into();
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = true.into();
    let state = serde_json::to_string(&Registration { handle, state })?;
    let ceremony = (KIND_REGISTER, Some(user_id), tenant_id);
    let token = store_ceremony(store, ceremony, binding, state).await?;
    Ok(Some(Started { token, options }))
}

/// Finishes a registration with the browser's answer (`credential`, JSON) under `name`.
pub async fn finish_registration(
    store: &Store,
    rp: &RelyingParty,
    (token, binding): (&str, &[u8]),
    (user_id, tenant_id): (&str, Option<&str>),
    credential: &str,
    name: &str,
) -> anyhow::Result<Verified> {
    let Some(webauthn) = &rp.0 else {
        return Ok(Verified::Expired);
    };
    let Some(ceremony) = take_ceremony(store, token, KIND_REGISTER, binding).await? else {
        return Ok(Verified::Expired);
    };
    if ceremony.user_id.as_deref() != Some(user_id) || ceremony.tenant_id.as_deref() != tenant_id {
        return Ok(Verified::Expired);
    }
    let Registration { handle, state } = serde_json::from_str(&ceremony.state)?;
    let Ok(answer) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
        return Ok(Verified::Invalid);
    };
    let passkey = match webauthn.finish_passkey_registration(&answer, &state) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "a passkey registration did not verify");
            return Ok(Verified::Invalid);
        }
    };
    let now = now_ms();
    let mut row = PasskeyRow {
        id: new_id(),
        tenant_id: tenant_id.map(str::to_owned),
        user_id: user_id.to_owned(),
        credential_id: passkey.cred_id().to_vec(),
        user_handle: handle.to_string(),
        name: clean_name(name),
        passkey: String::new(),
        counter: 0,
        backup_eligible: false,
        backup_state: false,
        created_at: now,
        last_used_at: None,
    };
    set_credential(&mut row, &passkey)?;
    Ok(if store.insert_passkey(&row).await? {
        Verified::Registered(Box::new(row))
    } else {
        Verified::Duplicate
    })
}

/// Starts a passwordless sign-in in a tenant (`None`: the platform), bound to `binding`.
pub async fn begin_sign_in(
    store: &Store,
    rp: &RelyingParty,
    tenant_id: Option<&str>,
    binding: &[u8],
) -> anyhow::Result<Option<Started>> {
    let Some(webauthn) = &rp.0 else {
        return Ok(None);
    };
    let (rcr, state) = webauthn.start_discoverable_authentication()?;
    let mut options = serde_json::to_value(&rcr)?;
    // A button asks (a modal prompt), not the address field's autofill.
    if let Some(o) = options.as_object_mut() {
        o.remove("mediation");
    }
    let state = serde_json::to_string(&state)?;
    let ceremony = (KIND_SIGN_IN, None, tenant_id);
    let token = store_ceremony(store, ceremony, binding, state).await?;
    Ok(Some(Started { token, options }))
}

/// Finishes a passwordless sign-in in a tenant: the passkey of the credential, looked up in
/// that tenant only.
pub async fn finish_sign_in(
    store: &Store,
    rp: &RelyingParty,
    (token, binding): (&str, &[u8]),
    tenant_id: Option<&str>,
    credential: &str,
) -> anyhow::Result<Verified> {
    let Some(webauthn) = &rp.0 else {
        return Ok(Verified::Expired);
    };
    let Some(ceremony) = take_ceremony(store, token, KIND_SIGN_IN, binding).await? else {
        return Ok(Verified::Expired);
    };
    if ceremony.tenant_id.as_deref() != tenant_id {
        return Ok(Verified::Expired);
    }
    let state: DiscoverableAuthentication = serde_json::from_str(&ceremony.state)?;
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Verified::Invalid);
    };
    let Ok((handle, credential_id)) = webauthn.identify_discoverable_authentication(&answer) else {
        return Ok(Verified::Invalid);
    };
    let Some(row) = store
        .passkey_by_credential(credential_id, tenant_id)
        .await?
    else {
        return Ok(Verified::Unknown);
    };
    if row.user_handle != handle.to_string() {
        return Ok(Verified::Unknown);
    }
    let passkey: Passkey = serde_json::from_str(&row.passkey)?;
    let key = DiscoverableKey::from(&passkey);
    let result = webauthn.finish_discoverable_authentication(&answer, state, &[key]);
    record_use(store, row, passkey, result).await
}

/// Starts a passkey as the second factor of a user (`passkeys`: [`factor_passkeys`]), bound
/// to the pending sign-in; `None` when passkeys are unavailable or the user has none.
pub async fn begin_factor(
    store: &Store,
    rp: &RelyingParty,
    user_id: &str,
    passkeys: &[PasskeyRow],
    binding: &[u8],
) -> anyhow::Result<Option<Started>> {
    let Some(webauthn) = &rp.0 else {
        return Ok(None);
    };
    if passkeys.is_empty() {
        return Ok(None);
    }
    let keys = passkeys
        .iter()
        .map(|p| serde_json::from_str::<Passkey>(&p.passkey))
        .collect::<Result<Vec<_>, _>>()?;
    let (rcr, state) = webauthn.start_passkey_authentication(&keys)?;
    let options = serde_json::to_value(&rcr)?;
    let state = serde_json::to_string(&state)?;
    let ceremony = (KIND_FACTOR, Some(user_id), None);
    let token = store_ceremony(store, ceremony, binding, state).await?;
    Ok(Some(Started { token, options }))
}

/// Finishes a passkey as the second factor: one of `passkeys` ([`factor_passkeys`]).
pub async fn finish_factor(
    store: &Store,
    rp: &RelyingParty,
    (token, binding): (&str, &[u8]),
    user_id: &str,
    passkeys: Vec<PasskeyRow>,
    credential: &str,
) -> anyhow::Result<Verified> {
    let Some(webauthn) = &rp.0 else {
        return Ok(Verified::Expired);
    };
    let Some(ceremony) = take_ceremony(store, token, KIND_FACTOR, binding).await? else {
        return Ok(Verified::Expired);
    };
    if ceremony.user_id.as_deref() != Some(user_id) {
        return Ok(Verified::Expired);
    }
    let state: PasskeyAuthentication = serde_json::from_str(&ceremony.state)?;
    let Ok(answer) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Verified::Invalid);
    };
    let used = answer.get_credential_id();
    let Some(row) = passkeys.into_iter().find(|p| p.credential_id == used) else {
        return Ok(Verified::Unknown);
    };
    let passkey: Passkey = serde_json::from_str(&row.passkey)?;
    let result = webauthn.finish_passkey_authentication(&answer, &state);
    record_use(store, row, passkey, result).await
}

/// A clean passkey name: trimmed, without control characters, at most [`MAX_NAME_CHARS`]
/// characters ("Passkey" when nothing is left).
pub fn clean_name(name: &str) -> String {
    let name: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    if name.trim().is_empty() {
        "Passkey".into()
    } else {
        name.trim().to_owned()
    }
}

async fn record_use(
    store: &Store,
    mut row: PasskeyRow,
    mut passkey: Passkey,
    result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
) -> anyhow::Result<Verified> {
    let result = match result {
        Ok(r) => r,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Ok(Verified::Cloned(Box::new(row)));
        }
        Err(e) => {
            tracing::info!(error = %e, "a passkey assertion did not verify");
            return Ok(Verified::Invalid);
        }
    };
    let seen = row.counter;
    passkey.update_credential(&result);
    set_credential(&mut row, &passkey)?;
    let now = now_ms();
    if !store.record_passkey_use(&row, seen, now).await? {
        // Another assertion with the same counter value was recorded first.
        return Ok(Verified::Cloned(Box::new(row)));
    }
    row.last_used_at = Some(now);
    Ok(Verified::Passkey(Box::new(row)))
}

/// Copies the credential (JSON, counter, backup flags) into the row.
fn set_credential(row: &mut PasskeyRow, passkey: &Passkey) -> anyhow::Result<()> {
    let value = serde_json::to_value(passkey)?;
    let cred = &value["cred"];
    row.counter = cred["counter"].as_i64().unwrap_or(0);
    row.backup_eligible = cred["backup_eligible"].as_bool().unwrap_or(false);
    row.backup_state = cred["backup_state"].as_bool().unwrap_or(false);
    row.passkey = value.to_string();
    Ok(())
}

async fn store_ceremony(
    store: &Store,
    (kind, user_id, tenant_id): (&str, Option<&str>, Option<&str>),
    binding: &[u8],
    state: String,
) -> anyhow::Result<String> {
    let token = crypto::random_secret()?;
    let row = CeremonyRow {
        token_hash: crypto::sha256(token.as_bytes()),
        kind: kind.to_owned(),
        binding: binding.to_vec(),
        user_id: user_id.map(str::to_owned),
        tenant_id: tenant_id.map(str::to_owned),
        state,
        expires_at: now_ms() + CEREMONY_LIFETIME_MS,
    };
    store.insert_passkey_ceremony(&row).await?;
    Ok(token)
}

/// Takes the ceremony of `token` (it is gone after this call): `Some` only when it is live,
/// of `kind` and bound to `binding`.
async fn take_ceremony(
    store: &Store,
    token: &str,
    kind: &str,
    binding: &[u8],
) -> anyhow::Result<Option<CeremonyRow>> {
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let Some(c) = store
        .take_passkey_ceremony(&crypto::sha256(token.as_bytes()), now_ms())
        .await?
    else {
        return Ok(None);
    };
    let bound = c.binding.len() == binding.len() && bool::from(c.binding.ct_eq(binding));
    Ok((c.kind == kind && bound).then_some(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Laptop\u{7}  "), "Laptop");
        assert_eq!(clean_name(" \n "), "Passkey");
        assert_eq!(clean_name(&"x".repeat(100)).chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn a_relying_party_needs_a_domain() {
        assert!(RelyingParty::for_issuer("http://localhost:7001/").available());
        assert!(RelyingParty::for_issuer("https://id.example.com/identity/").available());
        assert!(!RelyingParty::for_issuer("http://127.0.0.1:7001/").available());
    }
}
