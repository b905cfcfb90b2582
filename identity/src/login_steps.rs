//! The steps of a browser sign-in after the password (issue #4): the second factor (TOTP or a
//! recovery code), the tenant picker, and the MFA enrolment a tenant's `mfa_required` policy
//! forces; plus MFA enrolment for a signed-in user (`GET|POST /account/mfa`).
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

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::authorize::{
    AuthRequest, AuthorizeError, CSRF_COOKIE, FORM_EXPIRED, InSession, SESSION_COOKIE,
    SIGN_IN_FORM_EXPIRED, continue_in_session, cookie_value, csrf_token, current_session, escape,
    html, login_page, page, parse_request, record_failure, set_cookie, sign_in, sign_in_event,
};
use crate::crypto;
use crate::events;
use crate::mfa::{self, CodeOutcome};
use crate::oauth::token::Params;
use crate::store::mfa::LoginStepRow;
use crate::store::tenants::TenantRow;
use crate::store::users::{SessionRow, UserRow};
use crate::store::{new_id, now_ms};
use crate::tenants::{STATUS_ACTIVE, TenantPolicy};

/// How long a sign-in may take from the password to the session.
pub const STEP_LIFETIME_MS: i64 = 10 * 60 * 1000;

const UNAVAILABLE: &str = "Sign-in is unavailable right now; retry later.";
const EXPIRED: &str = "Your sign-in has expired. Start again from the application.";

pub(crate) fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-in step failed");
    AuthorizeError::Page(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE).into_response()
}

/// Whether the methods include a second factor.
fn has_second_factor(amr: &str) -> bool {
    amr.split(' ').any(|m| m == "mfa")
}

/// The email typed at the password step, from the lockout key `a:<email>|<ip>`.
fn typed_email(account_key: &str) -> &str {
    account_key
        .strip_prefix("a:")
        .and_then(|k| k.rsplit_once('|'))
        .map_or("", |(e, _)| e)
}

/// The policy of a tenant (the default for an unknown one).
pub async fn tenant_policy(state: &AppState, tenant_id: &str) -> Option<TenantPolicy> {
    match state.store.tenant_by_id(tenant_id).await {
        Ok(Some(t)) => Some(TenantPolicy::of(&t)),
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

enum Stage {
    /// The second factor.
    Code,
    /// The tenant picker: (id, name) of the user's active tenants.
    Pick(Vec<(String, String)>),
    /// Enrolment forced by the tenant's policy; `reuse` keeps a pending secret (a retry).
    Enrol { reuse: bool },
}

/// What the sign-in already read of the user; `advance` reads the rest (`Default`: nothing).
#[derive(Default)]
pub(crate) struct Known {
    /// Whether the user has a confirmed second factor.
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
    let enrolled = match known.enrolled {
        Some(known) => known,
        None => match mfa::enrolled(state, &user.id).await {
            Ok(e) => e,
            Err(e) => return unavailable(&e),
        },
    };
    let needs_code = enrolled && !has_second_factor(&step.amr);
    // The tenant row when it was read just now (its policy needs no second read).
    let mut resolved: Option<TenantRow> = None;
    if !step.tenant_resolved {
        match resolve_tenant(state, user, req.tenant.as_deref(), known.tenants).await {
            Ok(Resolved::Tenant(t)) => {
                step.tenant_id = t.as_ref().map(|t| t.id.clone());
                step.tenant_resolved = true;
                resolved = t;
            }
            // The picker waits for the second factor: it lists the user's tenants. A refusal
            // waits too: before every factor succeeds, the answer reveals no membership.
            Ok(Resolved::Pick(_)) | Err(_) if needs_code => {}
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
    if needs_code {
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
        (Some(_), Some(t)) => Some(TenantPolicy::of(&t)),
        (Some(t), None) => tenant_policy(state, t).await,
        (None, _) => None,
    };
    if policy.as_ref().is_some_and(|p| p.mfa_required) && !enrolled {
        let stage = Stage::Enrol { reuse: false };
        return show(state, headers, req, user, step, stage, None, StatusCode::OK).await;
    }
    finish(state, headers, req, user, &step, policy.as_ref(), recovery).await
}

enum Resolved {
    /// The tenant (`None`: the platform identity), read with its policy.
    Tenant(Option<TenantRow>),
    Pick(Vec<(String, String)>),
}

/// The tenant of a sign-in: the `tenant` hint (id or slug), else the only membership, else the
/// picker over the active ones; `None` for a user without memberships (a platform identity).
/// One read of the user's tenants (`known`, when the sign-in read them already) answers all of it.
async fn resolve_tenant(
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
        return crate::authorize::pick_login_tenant(tenants, hint).map(Resolved::Tenant);
    }
    let mut active: Vec<TenantRow> = tenants
        .into_iter()
        .filter(|t| t.status == STATUS_ACTIVE)
        .collect();
    match active.len() {
        0 => Err(crate::authorize::NO_TENANT_ACCESS),
        1 => Ok(Resolved::Tenant(active.pop())),
        _ => Ok(Resolved::Pick(
            active.into_iter().map(|t| (t.id, t.name)).collect(),
        )),
    }
}

/// Stores the step under a fresh token and renders its page.
#[allow(clippy::too_many_arguments)]
async fn show(
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
    let (title, body) = match stage {
        Stage::Code => (
            "Verification code",
            format!(
                "<h1>Verification code</h1>{error_html}<p>Enter the 6-digit code from your \
                 authenticator app, or one of your recovery codes.</p>\
                 <form method=\"post\" action=\"{action}\">{hidden}\
                 <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required autofocus></label>\
                 <button type=\"submit\">Verify</button></form>",
                action = escape(&format!("{issuer}login/mfa")),
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
            let enrolment = match mfa::begin_enrolment(state, &user.id, &user.email, reuse).await {
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
    let mut response = html(status, &page(title, &body));
    if let Some(c) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

fn enrolment_html(e: &mfa::Enrolment) -> String {
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
async fn finish(
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
            html(StatusCode::OK, &page("Two-step verification", &body))
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
    if let Some(c) = set_cookie(state, SESSION_COOKIE, &token, "Lax", lifetime) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// A submitted step form: its fields, the request, the claimed (now consumed) step and user.
struct Submitted {
    form: Params,
    req: AuthRequest,
    step: LoginStepRow,
    user: UserRow,
}

impl Submitted {
    /// [`advance`] from this submitted step (`step`: it, updated), reading what it needs.
    async fn advance(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        step: LoginStepRow,
        recovery: Option<Vec<String>>,
    ) -> Response {
        let known = (step, Known::default());
        advance(state, headers, &self.req, &self.user, known, recovery).await
    }
}

async fn read_step_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Submitted, Response> {
    let page_error = |status, message| AuthorizeError::Page(status, message).into_response();
    let form = crate::authorize::read_csrf_form(headers, body, SIGN_IN_FORM_EXPIRED).await?;
    let req = parse_request(state, form.get("request").unwrap_or(""))
        .await
        .map_err(IntoResponse::into_response)?;
    let token_hash = crypto::sha256(form.get("step").unwrap_or("").as_bytes());
    let step = match state.store.login_step(&token_hash, now_ms()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(page_error(StatusCode::BAD_REQUEST, EXPIRED)),
        Err(e) => return Err(unavailable(&e)),
    };
    let csrf_hash = crypto::sha256(cookie_value(headers, CSRF_COOKIE).unwrap_or("").as_bytes());
    if !bool::from(csrf_hash.ct_eq(&step.csrf_hash)) {
        return Err(page_error(StatusCode::BAD_REQUEST, EXPIRED));
    }
    // Single use: of two submissions of one form, one proceeds.
    match state.store.take_login_step(&token_hash).await {
        Ok(true) => {}
        Ok(false) => return Err(page_error(StatusCode::BAD_REQUEST, EXPIRED)),
        Err(e) => return Err(unavailable(&e)),
    }
    let user = match state.store.user_by_id(&step.user_id).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return Err(page_error(StatusCode::BAD_REQUEST, EXPIRED)),
        Err(e) => return Err(unavailable(&e)),
    };
    Ok(Submitted {
        form,
        req,
        step,
        user,
    })
}

async fn mfa_event(
    state: &AppState,
    headers: &HeaderMap,
    step: &LoginStepRow,
    kind: &str,
    outcome: &str,
    details: serde_json::Value,
) {
    events::record(
        state,
        &events::Meta::from_headers(headers),
        events::Event {
            tenant_id: step.tenant_id.as_deref(),
            kind,
            actor: format!("user:{}", step.user_id),
            outcome,
            details,
        },
    )
    .await;
}

/// Checks the lock of a step's keys; `Some(response)` when locked (or the check failed).
async fn locked(
    state: &AppState,
    headers: &HeaderMap,
    s: &Submitted,
    stage: Stage,
) -> Option<Response> {
    let ip_key = format!("i:{}", crate::authorize::client_ip(headers));
    match state
        .store
        .locked_until(&[&s.step.account_key, &ip_key], now_ms())
        .await
    {
        Ok(None) => None,
        Ok(Some(_)) => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "locked").increment(1);
            sign_in_event(
                state,
                headers,
                None,
                events::LOCKOUT,
                "anonymous".into(),
                "denied",
                typed_email(&s.step.account_key),
            )
            .await;
            Some(
                show(
                    state,
                    headers,
                    &s.req,
                    &s.user,
                    s.step.clone(),
                    stage,
                    Some("Too many failed attempts. Wait a few minutes and retry."),
                    StatusCode::TOO_MANY_REQUESTS,
                )
                .await,
            )
        }
        Err(e) => Some(unavailable(&e)),
    }
}

/// Counts a wrong code like a wrong password.
async fn count_failure(state: &AppState, headers: &HeaderMap, s: &Submitted) {
    let ip_key = format!("i:{}", crate::authorize::client_ip(headers));
    let lockout = crate::authorize::lockout_of_user(state, &s.user.id).await;
    let failures = record_failure(state, lockout, &s.step.account_key, &ip_key).await;
    if failures >= lockout.threshold {
        sign_in_event(
            state,
            headers,
            None,
            events::LOCKOUT,
            "system".into(),
            "engaged",
            typed_email(&s.step.account_key),
        )
        .await;
    }
}

/// `POST /login/mfa`: the second factor.
pub async fn login_mfa(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let s = match read_step_form(&state, &headers, body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if has_second_factor(&s.step.amr) {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
    }
    if let Some(r) = locked(&state, &headers, &s, Stage::Code).await {
        return r;
    }
    let code = s.form.get("code").unwrap_or("");
    let outcome = match mfa::verify(&state, &s.user.id, code, true).await {
        Ok(o) => o,
        Err(e) => return unavailable(&e),
    };
    let mut step = s.step.clone();
    match outcome {
        CodeOutcome::Totp => {
            mfa_event(
                &state,
                &headers,
                &step,
                events::MFA_VERIFY,
                "success",
                serde_json::json!({"method": "totp"}),
            )
            .await;
            step.amr = "pwd otp mfa".into();
        }
        CodeOutcome::Recovery => {
            let left = state
                .store
                .recovery_codes_left(&s.user.id)
                .await
                .unwrap_or(0);
            mfa_event(
                &state,
                &headers,
                &step,
                events::MFA_RECOVERY,
                "success",
                serde_json::json!({"left": left}),
            )
            .await;
            step.amr = "pwd mfa".into();
        }
        CodeOutcome::Wrong | CodeOutcome::Replayed => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
            let reason = if outcome == CodeOutcome::Replayed {
                "replayed"
            } else {
                "wrong"
            };
            mfa_event(
                &state,
                &headers,
                &step,
                events::MFA_VERIFY,
                "failure",
                serde_json::json!({"reason": reason}),
            )
            .await;
            count_failure(&state, &headers, &s).await;
            return show(
                &state,
                &headers,
                &s.req,
                &s.user,
                step,
                Stage::Code,
                Some("Invalid code."),
                StatusCode::UNAUTHORIZED,
            )
            .await;
        }
    }
    s.advance(&state, &headers, step, None).await
}

/// `POST /login/tenant`: the tenant picker's choice.
pub async fn login_pick_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let s = match read_step_form(&state, &headers, body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    // The picker comes after the second factor: no probing of memberships with a password.
    let code_pending = match mfa::enrolled(&state, &s.user.id).await {
        Ok(e) => e && !has_second_factor(&s.step.amr),
        Err(e) => return unavailable(&e),
    };
    if s.step.tenant_resolved || code_pending {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
    }
    let chosen = s.form.get("tenant").unwrap_or("");
    // Membership and status are checked again: the list on the page proves nothing.
    let tenant = match crate::authorize::login_tenant(&state, &s.user, Some(chosen)).await {
        Ok(Some(t)) => t.id,
        Ok(None) | Err(_) => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
            tracing::info!(user_id = %s.user.id, "tenant choice refused");
            return AuthorizeError::Page(
                StatusCode::FORBIDDEN,
                "This account cannot sign in to this tenant.",
            )
            .into_response();
        }
    };
    let mut step = s.step.clone();
    step.tenant_id = Some(tenant);
    step.tenant_resolved = true;
    s.advance(&state, &headers, step, None).await
}

/// `POST /login/enrol`: the first code of an enrolment the tenant's policy forced.
pub async fn login_enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let s = match read_step_form(&state, &headers, body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(r) = locked(&state, &headers, &s, Stage::Enrol { reuse: true }).await {
        return r;
    }
    let code = s.form.get("code").unwrap_or("");
    match mfa::confirm_enrolment(&state, &s.user.id, code).await {
        Ok(Some(codes)) => {
            mfa_event(
                &state,
                &headers,
                &s.step,
                events::MFA_ENROL,
                "success",
                serde_json::json!({"at": "sign_in"}),
            )
            .await;
            let mut step = s.step.clone();
            step.amr = "pwd otp mfa".into();
            s.advance(&state, &headers, step, Some(codes)).await
        }
        Ok(None) => {
            mfa_event(
                &state,
                &headers,
                &s.step,
                events::MFA_ENROL,
                "failure",
                serde_json::json!({"at": "sign_in"}),
            )
            .await;
            count_failure(&state, &headers, &s).await;
            show(
                &state,
                &headers,
                &s.req,
                &s.user,
                s.step.clone(),
                Stage::Enrol { reuse: true },
                Some("Invalid code."),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e) => unavailable(&e),
    }
}

// ------------------------------------------------------------ enrolment of a signed-in user

pub(crate) fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    content: impl FnOnce(&str) -> String,
) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return unavailable(&"no CSRF token");
    };
    let mut response = html(status, &page("Two-step verification", &content(&csrf)));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn not_signed_in() -> Response {
    AuthorizeError::Page(
        StatusCode::UNAUTHORIZED,
        "Sign in first, then open this page again.",
    )
    .into_response()
}

async fn enrolment_form(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRow,
    reuse: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let enrolment = match mfa::begin_enrolment(state, &user.id, &user.email, reuse).await {
        Ok(Some(e)) => e,
        Ok(None) => {
            return crate::account_recovery::enrolled_page(
                state,
                headers,
                user,
                None,
                StatusCode::OK,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    };
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let action = format!("{}account/mfa", state.config.issuer);
    account_page(state, headers, status, |csrf| {
        format!(
            "<h1>Set up two-step verification</h1>{error_html}<p>{setup}</p>\
             <form method=\"post\" action=\"{action}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <label>Code <input name=\"code\" autocomplete=\"one-time-code\" required></label>\
             <button type=\"submit\">Confirm</button></form>",
            setup = enrolment_html(&enrolment),
            action = escape(&action),
            csrf = escape(csrf),
        )
    })
}

/// `GET /account/mfa`: starts an enrolment for the signed-in user (a fresh secret each time
/// until confirmed), or says MFA is on.
pub async fn account_mfa(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    enrolment_form(&state, &headers, &user, false, None, StatusCode::OK).await
}

/// `POST /account/mfa`: confirms the enrolment with the first code; shows the recovery codes
/// once.
pub async fn account_mfa_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match crate::authorize::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let meta = events::Meta::from_headers(&headers);
    let event = |outcome: &'static str| events::Event {
        tenant_id: session.tenant_id.as_deref(),
        kind: events::MFA_ENROL,
        actor: format!("user:{}", user.id),
        outcome,
        details: serde_json::json!({"at": "account"}),
    };
    match mfa::confirm_enrolment(&state, &user.id, form.get("code").unwrap_or("")).await {
        Ok(Some(codes)) => {
            events::record(&state, &meta, event("success")).await;
            tracing::info!(user_id = %user.id, "MFA enrolled");
            account_page(&state, &headers, StatusCode::OK, |_| {
                format!(
                    "<h1>Two-step verification is on</h1>{}",
                    recovery_html(&codes)
                )
            })
        }
        Ok(None) => {
            events::record(&state, &meta, event("failure")).await;
            enrolment_form(
                &state,
                &headers,
                &user,
                true,
                Some("Invalid code."),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(e) => unavailable(&e),
    }
}
