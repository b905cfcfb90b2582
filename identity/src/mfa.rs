//! TOTP multi-factor authentication (RFC 6238, through the `totp-rs` crate).
//!
//! Security decisions:
//! - The secret (160 random bits, SHA-1, 6 digits, 30 s steps: what authenticator apps
//!   expect) is generated here and stored only sealed under the master key with AAD
//!   `tansu-totp:<user id>`, so a sealed secret copied to another user's row does not open.
//! - A code is accepted for the current step ± 1, and only for a step later than the last
//!   accepted one (a compare-and-set in the store): the same code cannot be used twice.
//! - Recovery codes: 10 codes of 80 random bits (16 base32 characters, shown in groups of 4),
//!   shown once at enrolment and stored as SHA-256 of `user id : normalised code`; each works
//!   once.

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::crypto;
use crate::crypto::MasterKeys;
use crate::store::Store;
use crate::store::mfa::TotpRow;
use crate::store::now_ms;

/// How many recovery codes an enrolment issues.
pub const RECOVERY_CODES: usize = 10;
/// The issuer label authenticator apps show.
pub const TOTP_ISSUER: &str = "Tansu";
const STEP_SECS: u64 = 30;

pub(crate) fn aad(user_id: &str) -> Vec<u8> {
    format!("tansu-totp:{user_id}").into_bytes()
}

/// A TOTP generator for `secret`, labelled with the account.
pub fn totp(secret: &[u8], account: &str) -> anyhow::Result<Totp> {
    // `:` separates issuer and account in otpauth labels.
    let account: String = account.chars().filter(|c| *c != ':').collect();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(secret.to_vec()))
        .with_account_name(if account.is_empty() {
            "user".to_owned()
        } else {
            account
        })
        .with_issuer(Some(TOTP_ISSUER))
        .build()
        .map_err(|e| anyhow::anyhow!("totp: {e:?}"))
}

/// What an enrolment page shows.
pub struct Enrolment {
    pub otpauth_uri: String,
    pub secret_base32: String,
    /// An inline SVG QR code of the URI.
    pub qr_svg: String,
}

/// Starts (or restarts) an enrolment: a fresh secret, stored sealed and unconfirmed; with
/// `reuse`, a pending secret is shown again instead (a retry after a wrong code).
/// `Ok(None)` when the user already has confirmed MFA.
pub async fn begin_enrolment(
    store: &Store,
    master: &MasterKeys,
    user_id: &str,
    account: &str,
    reuse: bool,
) -> anyhow::Result<Option<Enrolment>> {
    let existing = store.totp(user_id).await?;
    if existing.as_ref().is_some_and(|t| t.confirmed_at.is_some()) {
        return Ok(None);
    }
    let secret = match existing {
        Some(row) if reuse => master.open(&row.master_key_id, &row.secret_sealed, &aad(user_id))?,
        _ => {
            let secret = zeroize::Zeroizing::new(crypto::random_bytes(20)?);
            let row = TotpRow {
                user_id: user_id.to_owned(),
                secret_sealed: master.seal(&secret, &aad(user_id))?,
                master_key_id: master.id().to_owned(),
                confirmed_at: None,
                last_step: -1,
                created_at: now_ms(),
            };
            if !store.put_pending_totp(&row).await? {
                return Ok(None);
            }
            secret
        }
    };
    let totp = totp(&secret, account)?;
    let uri = totp.to_url().map_err(|e| anyhow::anyhow!("totp: {e:?}"))?;
    let qr = qrcode::QrCode::new(uri.as_bytes())?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(Some(Enrolment {
        secret_base32: totp.secret().to_base32(),
        otpauth_uri: uri,
        qr_svg: qr,
    }))
}

/// The time step `code` is valid for (current ± 1), if any.
fn matching_step(row: &TotpRow, master: &MasterKeys, code: &str) -> anyhow::Result<Option<i64>> {
    let secret = master.open(&row.master_key_id, &row.secret_sealed, &aad(&row.user_id))?;
    let totp = totp(&secret, "user")?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    Ok(totp.check(&code, now).and_then(|s| i64::try_from(s).ok()))
}

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    /// A valid TOTP code for a step not used before.
    Totp,
    /// An unused recovery code.
    Recovery,
    Wrong,
    /// A valid TOTP code whose step was already used.
    Replayed,
}

/// Checks a second-factor code of a user with confirmed MFA: a TOTP code (once per step), or,
/// when `allow_recovery`, a recovery code (once; also of a user whose factor is a passkey).
pub async fn verify(
    store: &Store,
    master: &MasterKeys,
    user_id: &str,
    code: &str,
    allow_recovery: bool,
) -> anyhow::Result<CodeOutcome> {
    // A user whose second factor is a passkey has no TOTP secret, but may have recovery codes.
    if let Some(row) = store.totp(user_id).await?
        && row.confirmed_at.is_some()
        && let Some(step) = matching_step(&row, master, code)?
    {
        return Ok(if store.accept_totp_step(user_id, step).await? {
            CodeOutcome::Totp
        } else {
            CodeOutcome::Replayed
        });
    }
    if allow_recovery
        && let Some(normalised) = normalise_recovery(code)
        && store
            .use_recovery_code(user_id, &recovery_hash(user_id, &normalised), now_ms())
            .await?
    {
        return Ok(CodeOutcome::Recovery);
    }
    Ok(CodeOutcome::Wrong)
}

/// Confirms a pending enrolment with its first code; returns the recovery codes to show once
/// (`None`: no pending enrolment or a wrong code).
pub async fn confirm_enrolment(
    store: &Store,
    master: &MasterKeys,
    user_id: &str,
    code: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    let Some(row) = store.totp(user_id).await? else {
        return Ok(None);
    };
    if row.confirmed_at.is_some() {
        return Ok(None);
    }
    let Some(step) = matching_step(&row, master, code)? else {
        return Ok(None);
    };
    let (codes, hashes) = issue_recovery_codes(user_id)?;
    if store.confirm_totp(user_id, step, &hashes, now_ms()).await? {
        Ok(Some(codes))
    } else {
        Ok(None)
    }
}

/// Replaces a user's recovery codes with a new set (the old set stops working in the same
/// transaction), after a current TOTP code re-authenticated the user: `Ok(codes)` to show
/// once, or why the code was refused (a recovery code does not count here).
pub async fn regenerate_recovery_codes(
    store: &Store,
    master: &MasterKeys,
    user_id: &str,
    code: &str,
) -> anyhow::Result<Result<Vec<String>, CodeOutcome>> {
    match verify(store, master, user_id, code, false).await? {
        CodeOutcome::Totp => {}
        other => return Ok(Err(other)),
    }
    let (codes, hashes) = issue_recovery_codes(user_id)?;
    if store.replace_recovery_codes(user_id, &hashes).await? {
        Ok(Ok(codes))
    } else {
        // MFA was reset between the check and the replacement.
        Ok(Err(CodeOutcome::Wrong))
    }
}

/// A fresh set of recovery codes and the hashes to store.
fn issue_recovery_codes(user_id: &str) -> anyhow::Result<(Vec<String>, Vec<Vec<u8>>)> {
    let codes = new_recovery_codes()?;
    let hashes = codes
        .iter()
        .map(|c| recovery_hash(user_id, &c.replace('-', "")))
        .collect();
    Ok((codes, hashes))
}

/// Recovery codes for a user who has none left (a first passkey without TOTP): the codes to
/// show once, or `None` when the user still has unused ones.
pub async fn recovery_codes_if_none(
    store: &Store,
    user_id: &str,
) -> anyhow::Result<Option<Vec<String>>> {
    if store.recovery_codes_left(user_id).await? > 0 {
        return Ok(None);
    }
    let (codes, hashes) = issue_recovery_codes(user_id)?;
    Ok(store
        .put_recovery_codes_if_none(user_id, &hashes)
        .await?
        .then_some(codes))
}

/// Whether the user has confirmed MFA.
pub async fn enrolled(store: &Store, user_id: &str) -> anyhow::Result<bool> {
    Ok(store
        .totp(user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn new_recovery_codes() -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        // 16 characters × 5 bits = 80 bits.
        let bytes = crypto::random_bytes(16)?;
        let chars: Vec<char> = bytes
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
        out.push(groups.join("-"));
    }
    Ok(out)
}

/// Upper-case, without separators; `None` unless 16 base32 characters remain.
fn normalise_recovery(code: &str) -> Option<String> {
    let s: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (s.len() == 16 && s.bytes().all(|b| BASE32.contains(&b))).then_some(s)
}

fn recovery_hash(user_id: &str, normalised: &str) -> Vec<u8> {
    crypto::sha256(format!("{user_id}:{normalised}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_normalise() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 19);
            let n = normalise_recovery(&c.to_lowercase()).unwrap();
            assert_eq!(n, c.replace('-', ""));
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        assert!(normalise_recovery("123456").is_none());
    }

    #[test]
    fn totp_round_trip() {
        let t = totp(&[1u8; 20], "a:b@x.io").unwrap();
        let code = t.generate(1_000_000).to_string();
        assert_eq!(t.check(&code, 1_000_000), Some(1_000_000 / 30));
        assert!(
            t.to_url()
                .unwrap()
                .starts_with("otpauth://totp/Tansu:ab%40x.io")
        );
    }
}
