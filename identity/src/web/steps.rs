//! The steps of a browser sign-in after the password: the second factor (TOTP or a
//! recovery code), the tenant picker, and the MFA enrolment a tenant's `mfa_required` policy
//! forces (the forms are [`super::step_forms`]).
//!
//! Security decisions:
//! - Between the password and the session there is no session: a pending sign-in row
//!   (`login_steps`) names the user, the typed account's lockout key, the tenant once chosen and
//!   the methods passed so far. Its token travels in the step's form; the row keeps only its
//!   SHA-256 and is bound to the SHA-256 of the browser's CSRF cookie. Each token is single-use
//!   (a submission deletes the row first; a re-shown form gets a new token) and the whole
//!   sign-in expires [`STEP_LIFETIME_MS`] after the password.
//! - Every step form is CSRF-protected (double submit) and carries the authorization request,
//!   validated again on each submission.
//! - Wrong or replayed codes count as failed sign-ins for the same (account, IP) and IP keys as
//!   wrong passwords, so the same lock stops code guessing.
//! - The picker lists only the user's active tenants, and a choice is checked again (membership
//!   and status) on submission: a user cannot pick a tenant they are not a member of.
//! - The second factor comes before the picker, so a stolen password alone does not reveal the
//!   user's tenants (a tenant named by the request or the only membership is settled first, so
//!   MFA events land in that tenant's log).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::AppState;
use crate::crypto;
use crate::events;
use crate::mfa::{self};
use crate::passkeys::FactorScope;
use crate::store::mfa::LoginStepRow;
use crate::store::tenants::TenantRow;
use crate::store::users::{SessionRow, UserRow};
use crate::store::{new_id, now_ms};
use crate::tenants::{STATUS_ACTIVE, TenantPolicy};
use crate::web::authorize::{AuthRequest, InSession, continue_in_session};
use crate::web::page::UNAVAILABLE;
use crate::web::page::unavailable;
use crate::web::page::{
    CSRF_COOKIE, SESSION_COOKIE, branded_page, cookie_value, csrf_token, escape, html, set_cookie,
};
use crate::web::password::login_page;
use crate::web::sign_in::sign_in;

/// How long a sign-in may take from the password to the session.
pub const STEP_LIFETIME_MS: i64 = 10 * 60 * 1000;

pub(crate) const EXPIRED: &str = "Your sign-in has expired. Start again from the application.";

/// Whether the methods include a second factor.
pub(crate) fn has_second_factor(amr: &str) -> bool {
    amr.split(' ').any(|m| m == "mfa")
}

/// The email typed at the password step, from the lockout key `a:<email>|<ip>`.
pub(crate) fn typed_email(account_key: &str) -> &str {
    account_key
        .strip_prefix("a:")
        .and_then(|k| k.rsplit_once('|'))
        .map_or("", |(e, _)| e)
}

/// The policy of a tenant (the default for an unknown one).
pub async fn tenant_policy(state: &AppState, tenant_id: &str) -> Option<TenantPolicy> {
    match state.store.tenant_by_id(tenant_id).await {
        Ok(Some(t)) => Some(crate::tenants::policy_of(&t)),
        _ => None,
    }
}

/// A new pending sign-in for a user whose password was right.
pub fn first_step(headers: &HeaderMap, user: &UserRow, account_key: String) -> LoginStepRow {
    let now = now_ms();
    LoginStepRow {
        token_hash: Vec::new(),
        csrf_hash: crypto::sha256(cookie_value(headers, CSRF_COOKIE).unwrap_or("").as_bytes()),
        user_id: user.id.clone(),
        account_key,
        tenant_resolved: false,
        tenant_id: None,
        amr: "pwd".into(),
        created_at: now,
        expires_at: now + STEP_LIFETIME_MS,
        failures_pending: true,
    }
}

pub(crate) enum Stage {
    /// The second factor.
    Code,
    /// The tenant picker: (id, name) of the user's active tenants.
    Pick(Vec<(String, String)>),
    /// Enrolment forced by the tenant's policy; `reuse` keeps a pending secret (a retry).
    Enrol { reuse: bool },
    /// A passkey, which the tenant's policy requires (the user has one).
    Passkey,
    /// Registering a passkey, which the tenant's policy requires (the user has none).
    PasskeyEnrol,
}

/// Whether the methods include a passkey, or a recovery code standing in for a lost one
/// (`pwd mfa`: the only second factor without its own method).
pub(crate) fn passkey_or_recovery(amr: &str) -> bool {
    amr.split(' ').any(|m| m == "hwk") || amr == "pwd mfa"
}

/// What the sign-in already read of the user; `advance` reads the rest (`Default`: nothing).
#[derive(Default)]
pub(crate) struct Known {
    /// Whether the user has a confirmed TOTP.
    pub(crate) enrolled: Option<bool>,
    /// The user's tenants, ordered by id ([`crate::store::Store::tenants_of_user`]).
    pub(crate) tenants: Option<Vec<TenantRow>>,
}

/// Continues a password-verified sign-in: shows the next step's page, or finishes (creates
/// the session and continues the authorization). With the step comes what the caller already
/// read of the user (`Known`: the rest is read here). `recovery` are freshly issued recovery
/// codes to show once on finishing.
pub(crate) async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    user: &UserRow,
    (mut step, known): (LoginStepRow, Known),
    recovery: Option<Vec<String>>,
) -> Response {
    // The tenant row when it was read just now (its policy needs no second read).
    let mut resolved: Option<TenantRow> = None;
    let totp = match known.enrolled {
        Some(known) => Ok(known),
        None => mfa::enrolled(&state.store, &user.id).await,
    };
    let totp = match totp {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    // Whether a second factor is due before the tenant is settled: the picker, or a refusal,
    // waits for it (the passkeys of every tenant count, as they may settle it).
    if !step.tenant_resolved {
        let unsettled = FactorScope::Unsettled;
        let waits =
            match crate::passkeys::has_second_factor(&state.store, &user.id, totp, unsettled).await
            {
                Ok(e) => e && !has_second_factor(&step.amr),
                Err(e) => return unavailable(&e),
            };
        match resolve_tenant(state, user, req.tenant.as_deref(), known.tenants).await {
            Ok(Resolved::Tenant(t)) => {
                step.tenant_id = t.as_ref().map(|t| t.id.clone());
                step.tenant_resolved = true;
                resolved = t;
            }
            // The picker waits for the second factor: it lists the user's tenants. A refusal
            // waits too: before every factor succeeds, the answer reveals no membership.
            Ok(Resolved::Pick(_)) | Err(_) if waits => {
                return show(
                    state,
                    headers,
                    req,
                    user,
                    step,
                    Stage::Code,
                    None,
                    StatusCode::OK,
                )
                .await;
            }
            Ok(Resolved::Pick(tenants)) => {
                let stage = Stage::Pick(tenants);
                return show(state, headers, req, user, step, stage, None, StatusCode::OK).await;
            }
            Err(message) => {
                metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
                tracing::info!("sign-in refused: no usable tenant");
                return login_page(state, headers, req, Some(message), StatusCode::FORBIDDEN);
            }
        }
    }
    // The tenant is settled: its passkeys (and the user's TOTP) are the second factors.
    let scope = FactorScope::Tenant(step.tenant_id.as_deref());
    let enrolled =
        match crate::passkeys::has_second_factor(&state.store, &user.id, totp, scope).await {
            Ok(e) => e,
            Err(e) => return unavailable(&e),
        };
    if enrolled && !has_second_factor(&step.amr) {
        return show(
            state,
            headers,
            req,
            user,
            step,
            Stage::Code,
            None,
            StatusCode::OK,
        )
        .await;
    }
    let policy = match (&step.tenant_id, resolved) {
        (Some(_), Some(t)) => Some(crate::tenants::policy_of(&t)),
        (Some(t), None) => tenant_policy(state, t).await,
        (None, _) => None,
    };
    if policy.as_ref().is_some_and(|p| p.passkeys_required) && !passkey_or_recovery(&step.amr) {
        let stage = match crate::passkeys::factor_passkeys(&state.store, &user.id, scope).await {
            Ok(p) if p.is_empty() => Stage::PasskeyEnrol,
            Ok(_) => Stage::Passkey,
            Err(e) => return unavailable(&e),
        };
        return show(state, headers, req, user, step, stage, None, StatusCode::OK).await;
    }
    if policy.as_ref().is_some_and(|p| p.mfa_required) && !enrolled && !has_second_factor(&step.amr)
    {
        let stage = Stage::Enrol { reuse: false };
        return show(state, headers, req, user, step, stage, None, StatusCode::OK).await;
    }
    if policy
        .as_ref()
        .is_some_and(|p| p.email_verification_required)
    {
        match state.store.email_proof(&user.id).await {
            Ok(Some(proof)) if proof.counts_for(step.tenant_id.as_deref()) => {}
            Ok(_) => {
                // After every factor: the refusal tells only the account's owner.
                state.verify_email_later(user.id.clone(), step.tenant_id.clone());
                tracing::info!(user_id = %user.id, "sign-in refused: address not confirmed");
                return login_page(
                    state,
                    headers,
                    req,
                    Some(EMAIL_UNCONFIRMED),
                    StatusCode::FORBIDDEN,
                );
            }
            Err(e) => return unavailable(&e),
        }
    }
    finish(state, headers, req, user, &step, policy.as_ref(), recovery).await
}

/// The sign-in refusal of an account whose tenant wants a confirmed address.
pub(crate) const EMAIL_UNCONFIRMED: &str = "Confirm your email address first: a link is on its \
     way to it. Open the link, then sign in again.";

pub(crate) enum Resolved {
    /// The tenant (`None`: the platform identity), read with its policy.
    Tenant(Option<TenantRow>),
    Pick(Vec<(String, String)>),
}

/// The tenant of a sign-in: the `tenant` hint (id or slug), else the only membership, else the
/// picker over the active ones; `None` for a user without memberships (a platform identity).
/// One read of the user's tenants (`known`, when the sign-in read them already) answers all of it.
pub(crate) async fn resolve_tenant(
    state: &AppState,
    user: &UserRow,
    hint: Option<&str>,
    known: Option<Vec<TenantRow>>,
) -> Result<Resolved, &'static str> {
    let tenants = match known {
        Some(t) => t,
        None => state
            .store
            .tenants_of_user(&user.id)
            .await
            .map_err(|_| UNAVAILABLE)?,
    };
    // A platform administrator signs in to the platform unless the request names a tenant:
    // a membership (an accepted invitation) never takes the platform console away.
    if hint.is_none() && user.platform_admin {
        return Ok(Resolved::Tenant(None));
    }
    if hint.is_some() || tenants.len() < 2 {
        return crate::web::sign_in::pick_login_tenant(tenants, hint).map(Resolved::Tenant);
    }
    let mut active: Vec<TenantRow> = tenants
        .into_iter()
        .filter(|t| t.status == STATUS_ACTIVE)
        .collect();
    match active.len() {
        0 => Err(crate::web::sign_in::NO_TENANT_ACCESS),
        1 => Ok(Resolved::Tenant(active.pop())),
        _ => Ok(Resolved::Pick(
            active.into_iter().map(|t| (t.id, t.name)).collect(),
        )),
    }
}

/// Stores the step under a fresh token and renders its page.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn show(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    user: &UserRow,
    mut step: LoginStepRow,
    stage: Stage,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, csrf_cookie)) = csrf_token(state, headers) else {
        return unavailable(&"no CSRF token");
    };
    step.csrf_hash = crypto::sha256(csrf.as_bytes());
    let token = match crypto::random_secret() {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    step.token_hash = crypto::sha256(token.as_bytes());
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"request\" value=\"{}\">\
         <input type=\"hidden\" name=\"step\" value=\"{}\">",
        escape(&csrf),
        escape(&req.raw),
        escape(&token)
    );
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let issuer = &state.config.issuer;
    let passkey_form = match stage {
        Stage::Code | Stage::Passkey => {
            crate::web::passkeys::factor_form(state, &step, &hidden).await
        }
        Stage::PasskeyEnrol => crate::web::passkeys::enrol_form(state, &hidden),
        _ => String::new(),
    };
    let (title, body) = match stage {
        Stage::Code => (
            "Verification code",
            format!(
                "<h1>Verification code</h1>{error_html}<p>Enter the 6-digit code from your \
                 authenticator app, or one of your recovery codes.</p>\
                 <form method=\"post\" action=\"{action}\">{hidden}\
                 <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required autofocus></label>\
                 <button type=\"submit\">Verify</button></form>{passkey_form}",
                action = escape(&format!("{issuer}login/mfa")),
            ),
        ),
        Stage::Passkey => (
            "Use your passkey",
            format!(
                "<h1>Use your passkey</h1>{error_html}<p>This tenant signs in with a passkey.</p>\
                 {passkey_form}<p>Lost it? Start again and enter one of your recovery codes in \
                 place of the second step.</p>"
            ),
        ),
        Stage::PasskeyEnrol => (
            "Add a passkey",
            format!(
                "<h1>Add a passkey</h1>{error_html}<p>This tenant signs in with a passkey: this \
                 device's screen lock or a security key. Add one to continue.</p>{passkey_form}"
            ),
        ),
        Stage::Pick(tenants) => {
            let buttons: String = tenants
                .iter()
                .map(|(id, name)| {
                    format!(
                        "<p><button type=\"submit\" name=\"tenant\" value=\"{}\">{}</button></p>",
                        escape(id),
                        escape(name)
                    )
                })
                .collect();
            (
                "Choose a tenant",
                format!(
                    "<h1>Choose a tenant</h1>{error_html}<p>Your account belongs to several \
                     tenants. Sign in to:</p><form method=\"post\" action=\"{action}\">{hidden}{buttons}</form>",
                    action = escape(&format!("{issuer}login/tenant")),
                ),
            )
        }
        Stage::Enrol { reuse } => {
            let enrolment = match mfa::begin_enrolment(
                &state.store,
                state.keys.master(),
                &user.id,
                &user.email,
                reuse,
            )
            .await
            {
                Ok(Some(e)) => e,
                // Enrolled meanwhile (another tab): ask for a code instead.
                Ok(None) => {
                    return Box::pin(show(
                        state,
                        headers,
                        req,
                        user,
                        step,
                        Stage::Code,
                        None,
                        StatusCode::OK,
                    ))
                    .await;
                }
                Err(e) => return unavailable(&e),
            };
            (
                "Set up two-step verification",
                format!(
                    "<h1>Set up two-step verification</h1>{error_html}\
                     <p>This tenant requires a second step at sign-in. {setup}</p>\
                     <form method=\"post\" action=\"{action}\">{hidden}\
                     <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required></label>\
                     <button type=\"submit\">Confirm</button></form>",
                    setup = enrolment_html(&enrolment),
                    action = escape(&format!("{issuer}login/enrol")),
                ),
            )
        }
    };
    if let Err(e) = state.store.insert_login_step(&step).await {
        return unavailable(&e);
    }
    let mut response = html(status, &branded_page(title, &body, req.brand.as_ref()));
    if !passkey_form.is_empty() {
        crate::web::passkeys::allow_script(state, &mut response);
    }
    if let Some(c) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn enrolment_html(e: &mfa::Enrolment) -> String {
    format!(
        "Scan this code with an authenticator app, then enter the 6-digit code it shows.</p>\
         <figure class=\"qr\">{svg}</figure>\
         <p>Or enter this key by hand: <code class=\"secret\">{secret}</code></p>\
         <p><a class=\"otpauth\" href=\"{uri}\">Open in an authenticator app</a>",
        svg = e.qr_svg,
        secret = escape(&e.secret_base32),
        uri = escape(&e.otpauth_uri),
    )
}

pub(crate) fn recovery_html(codes: &[String]) -> String {
    let items: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", escape(c)))
        .collect();
    format!(
        "<h2>Recovery codes</h2><p>Keep these codes somewhere safe. Each works once, in place of \
         a code from the app. They will not be shown again.</p><ul class=\"recovery\">{items}</ul>"
    )
}

/// Creates the session (lifetime: the service's, capped by the tenant's `session_timeout_secs`)
/// and continues the authorization.
pub(crate) async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    user: &UserRow,
    step: &LoginStepRow,
    policy: Option<&TenantPolicy>,
    recovery: Option<Vec<String>>,
) -> Response {
    // A new session on every sign-in (no fixation of an earlier cookie).
    let token = match crypto::random_secret() {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    let now = now_ms();
    let lifetime = match policy.and_then(|p| p.session_timeout_secs) {
        Some(t) => t.min(state.config.session_lifetime_secs),
        None => state.config.session_lifetime_secs,
    };
    let session = SessionRow {
        id: new_id(),
        token_hash: crypto::sha256(token.as_bytes()),
        user_id: user.id.clone(),
        auth_time: now,
        amr: step.amr.clone(),
        created_at: now,
        expires_at: now + i64::try_from(lifetime).unwrap_or(3600) * 1000,
        revoked_at: None,
        tenant_id: step.tenant_id.clone(),
    };
    // The session is stored with its success event, both or neither (no cookie then).
    let event = sign_in(
        session.tenant_id.as_deref(),
        events::SIGN_IN,
        format!("user:{}", user.id),
        "success",
        typed_email(&step.account_key),
    );
    let event = events::row(&events::Meta::from_headers(headers), event);
    let signed_in = InSession::SignedIn(&session, Box::new(event));
    let mut response = match recovery {
        Some(codes) => {
            if let Err(e) = signed_in.store(state, None).await {
                return unavailable(&e);
            }
            let next = format!("{}connect/authorize?{}", state.config.issuer, req.raw);
            let body = format!(
                "<h1>Two-step verification is on</h1>{}<p><a class=\"continue\" href=\"{}\">Continue</a></p>",
                recovery_html(&codes),
                escape(&next)
            );
            html(
                StatusCode::OK,
                &branded_page("Two-step verification", &body, req.brand.as_ref()),
            )
        }
        None => match continue_in_session(state, headers, req, signed_in, user).await {
            Ok(r) => r,
            Err(failed) => return failed,
        },
    };
    if step.failures_pending
        && let Err(e) = state.store.clear_login_failures(&step.account_key).await
    {
        tracing::warn!(error = %e, "clearing sign-in failures failed");
    }
    metrics::counter!("identity_sign_ins_total", "outcome" => "success").increment(1);
    tracing::info!(user_id = %user.id, amr = %session.amr, "signed in");
    crate::web::device_cookie::after_sign_in(
        state,
        headers,
        user,
        step.tenant_id.clone(),
        &mut response,
    );
    if let Some(c) = set_cookie(state, SESSION_COOKIE, &token, "Lax", lifetime) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

// ------------------------------------------------------------ enrolment of a signed-in user
