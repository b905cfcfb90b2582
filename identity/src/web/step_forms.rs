//! The forms of the sign-in steps ([`super::steps`]): the second factor (`POST /login/mfa`),
//! the tenant picker (`POST /login/tenant`) and the forced enrolment (`POST /login/enrol`).
//! Each reads a CSRF-checked form, spends the step's single-use token and counts failures
//! against the same lockout as the password.

use crate::AppState;
use crate::crypto;
use crate::events;
use crate::mfa::{self, CodeOutcome};
use crate::oauth::params::Params;
use crate::store::mfa::LoginStepRow;
use crate::store::now_ms;
use crate::store::users::UserRow;
use crate::web::authorize::{AuthRequest, AuthorizeError, parse_request};
use crate::web::page::unavailable;
use crate::web::page::{CSRF_COOKIE, SIGN_IN_FORM_EXPIRED, cookie_value};
use crate::web::sign_in::{record_failure, sign_in_event};
use crate::web::steps::EXPIRED;
use crate::web::steps::Known;
use crate::web::steps::Stage;
use crate::web::steps::advance;
use crate::web::steps::has_second_factor;
use crate::web::steps::show;
use crate::web::steps::typed_email;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// A submitted step form: its fields, the request, the claimed (now consumed) step and user.
pub struct Submitted {
    pub(crate) form: Params,
    pub(crate) req: AuthRequest,
    pub(crate) step: LoginStepRow,
    pub(crate) user: UserRow,
}

impl Submitted {
    /// [`advance`] from this submitted step (`step`: it, updated), reading what it needs.
    pub(crate) async fn advance(
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

/// A submitted step form as an extractor (its rejection is the page [`read_step_form`] answers).
impl axum::extract::FromRequest<AppState> for Submitted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        read_step_form(state, &parts.headers, body).await
    }
}

pub(crate) async fn read_step_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Submitted, Response> {
    let page_error = |status, message| AuthorizeError::Page(status, message).into_response();
    let form = crate::web::page::read_csrf_form(headers, body, SIGN_IN_FORM_EXPIRED).await?;
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

pub(crate) async fn mfa_event(
    state: &AppState,
    headers: &HeaderMap,
    step: &LoginStepRow,
    kind: &str,
    outcome: &str,
    details: serde_json::Value,
) {
    events::record(
        &state.events,
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
pub(crate) async fn locked(
    state: &AppState,
    headers: &HeaderMap,
    s: &Submitted,
    stage: Stage,
) -> Option<Response> {
    let ip_key = format!("i:{}", crate::http::client_ip(headers));
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
pub(crate) async fn count_failure(state: &AppState, headers: &HeaderMap, s: &Submitted) {
    let ip_key = format!("i:{}", crate::http::client_ip(headers));
    let lockout = crate::web::sign_in::lockout_of_user(state, &s.user.id).await;
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
pub async fn login_mfa(
    State(state): State<AppState>,
    headers: HeaderMap,
    s: Submitted,
) -> Response {
    if has_second_factor(&s.step.amr) {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
    }
    if let Some(r) = locked(&state, &headers, &s, Stage::Code).await {
        return r;
    }
    let code = s.form.get("code").unwrap_or("");
    let outcome = match mfa::verify(&state.store, state.keys.master(), &s.user.id, code, true).await
    {
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
    s: Submitted,
) -> Response {
    // The picker comes after the second factor: no probing of memberships with a password.
    let unsettled = crate::passkeys::FactorScope::Unsettled;
    let enrolled = match mfa::enrolled(&state.store, &s.user.id).await {
        Ok(totp) => {
            crate::passkeys::has_second_factor(&state.store, &s.user.id, totp, unsettled).await
        }
        Err(e) => Err(e),
    };
    let code_pending = match enrolled {
        Ok(e) => e && !has_second_factor(&s.step.amr),
        Err(e) => return unavailable(&e),
    };
    if s.step.tenant_resolved || code_pending {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
    }
    let chosen = s.form.get("tenant").unwrap_or("");
    // Membership and status are checked again: the list on the page proves nothing.
    let tenant = match crate::web::sign_in::login_tenant(&state, &s.user, Some(chosen)).await {
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
    s: Submitted,
) -> Response {
    if let Some(r) = locked(&state, &headers, &s, Stage::Enrol { reuse: true }).await {
        return r;
    }
    let code = s.form.get("code").unwrap_or("");
    match mfa::confirm_enrolment(&state.store, state.keys.master(), &s.user.id, code).await {
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
