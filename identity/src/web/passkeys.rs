//! Passkeys at sign-in: passwordless with a discoverable credential (`POST /login/passkey`),
//! a passkey as the second factor (`POST /login/mfa/passkey`), the options both start with
//! (`POST /login/passkey/options`), the passkey a tenant's `passkeys_required` policy makes a
//! member without one register during the sign-in (`POST /login/passkey/enrol`), and the page
//! script that talks to the authenticator (`GET /passkeys.js`). Otherwise passkeys are
//! registered on the account page ([`super::account_passkeys`]).
//!
//! Security decisions (the ceremonies themselves: [`crate::passkeys`]):
//! - Every form is CSRF-checked (double submit) and carries the authorization request, which
//!   is validated again. A sign-in ceremony is bound to this browser's CSRF cookie, a second
//!   factor's to its pending sign-in step (itself bound to the cookie).
//! - The credential is looked up in the tenant the request names (none: the platform's): a
//!   passkey of another tenant's user is refused like an unknown one. The tenant is then
//!   settled as for a password (membership and status checked after every factor).
//! - A second factor accepts only the user's passkeys of the sign-in's tenant: one registered
//!   in another tenant is refused like an unknown one. While the tenant waits for the second
//!   factor (the picker), the passkey used settles it, checked like a picked tenant.
//! - Refusals count against the IP lockout key (and, for a second factor, the account key
//!   of the step), like wrong passwords; a cloned authenticator (the counter did not grow) is
//!   refused and recorded as `passkey.cloned`.
//! - A registration during a sign-in is allowed only once every other factor the user has
//!   is passed, for a tenant that requires passkeys, to a user without one; its ceremony is
//!   bound to the pending step.
//! - The script is a file of this service: the pages that use it allow exactly it and the
//!   options endpoints in their CSP (no inline script, nothing from another origin).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tansu_shared::problem::Problem;

use crate::AppState;
use crate::crypto;
use crate::events;
use crate::passkeys::{self, FactorScope, Started, Verified};
use crate::store::mfa::LoginStepRow;
use crate::store::now_ms;
use crate::store::passkeys::PasskeyRow;
use crate::web::authorize::{AuthRequest, AuthorizeError, parse_request};
use crate::web::page::{
    CSRF_COOKIE, SIGN_IN_FORM_EXPIRED, cookie_value, escape, read_csrf_form, unavailable,
};
use crate::web::password::login_page;
use crate::web::sign_in::{NO_TENANT_ACCESS, lockout_for, login_tenant, record_failure};
use crate::web::step_forms::{Submitted, count_failure, locked, mfa_event};
use crate::web::steps::{EXPIRED, Known, Stage, advance, first_step, has_second_factor, show};

/// The page script.
const SCRIPT: &str = include_str!("passkeys.js");

/// `GET /passkeys.js`.
pub async fn script() -> Response {
    let mut r = SCRIPT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Lets a page run the passkey script: its CSP allows this service's script file and the
/// two options endpoints, nothing else. No change when passkeys are unavailable.
pub(crate) fn allow_script(state: &AppState, response: &mut Response) {
    if !state.passkeys.available() {
        return;
    }
    let issuer = &state.config.issuer;
    // A source expression ends at a space, `;` or `,`: an issuer with one names no script.
    if issuer.contains([' ', ';', ',', '\'']) {
        return;
    }
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
         script-src {issuer}passkeys.js; \
         connect-src {issuer}login/passkey/options {issuer}account/passkeys/options; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The `<script>` element of the page script.
pub(crate) fn script_tag(state: &AppState) -> String {
    format!(
        "<script src=\"{}\" defer></script>",
        escape(&format!("{}passkeys.js", state.config.issuer))
    )
}

/// The fields and button every passkey form shares; the script shows the form when the
/// browser has WebAuthn.
pub(crate) fn ceremony_form(
    state: &AppState,
    (kind, action, options): (&str, &str, &str),
    fields: &str,
    label: &str,
) -> String {
    let issuer = &state.config.issuer;
    format!(
        "<form method=\"post\" action=\"{action}\" class=\"passkey\" data-passkey=\"{kind}\" \
         data-options=\"{options}\" hidden>{fields}\
         <input type=\"hidden\" name=\"ceremony\" value=\"\">\
         <input type=\"hidden\" name=\"credential\" value=\"\">\
         <button type=\"button\" class=\"secondary\" data-passkey-start>{label}</button>\
         <p role=\"status\" data-passkey-status></p></form>{script}",
        action = escape(&format!("{issuer}{action}")),
        options = escape(&format!("{issuer}{options}")),
        script = script_tag(state),
    )
}

/// The login page's "sign in with a passkey" form ("" when passkeys are unavailable).
pub(crate) fn sign_in_form(state: &AppState, req: &AuthRequest, csrf: &str) -> String {
    if !state.passkeys.available() {
        return String::new();
    }
    let fields = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"request\" value=\"{}\">",
        escape(csrf),
        escape(&req.raw)
    );
    let target = ("sign-in", "login/passkey", "login/passkey/options");
    ceremony_form(state, target, &fields, "Sign in with a passkey")
}

/// The passkeys a pending sign-in's second factor may use: those of its tenant once settled.
async fn step_passkeys(state: &AppState, step: &LoginStepRow) -> anyhow::Result<Vec<PasskeyRow>> {
    let scope = if step.tenant_resolved {
        FactorScope::Tenant(step.tenant_id.as_deref())
    } else {
        FactorScope::Unsettled
    };
    passkeys::factor_passkeys(&state.store, &step.user_id, scope).await
}

/// The tenant a passkey used as the second factor settles a sign-in to whose tenant was not
/// settled yet: the passkey's own, checked like a picked one (membership, status), and the
/// request's tenant when it names one.
async fn settle_tenant(
    state: &AppState,
    req: &AuthRequest,
    user: &crate::store::users::UserRow,
    row: &PasskeyRow,
) -> Result<String, &'static str> {
    let hint = req.tenant.as_deref().or(row.tenant_id.as_deref());
    match login_tenant(state, user, hint).await? {
        Some(t) if Some(&t.id) == row.tenant_id.as_ref() => Ok(t.id),
        _ => Err(NO_TENANT_ACCESS),
    }
}

/// The second-factor page's "use a passkey" form (`hidden`: the step's fields), "" when the
/// user has no passkey for this sign-in.
pub(crate) async fn factor_form(state: &AppState, step: &LoginStepRow, hidden: &str) -> String {
    if !state.passkeys.available() {
        return String::new();
    }
    match step_passkeys(state, step).await {
        Ok(p) if !p.is_empty() => {
            let target = ("factor", "login/mfa/passkey", "login/passkey/options");
            ceremony_form(state, target, hidden, "Use a passkey")
        }
        Ok(_) => String::new(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "reading a user's passkeys failed");
            String::new()
        }
    }
}

/// The sign-in's "add a passkey" form (`hidden`: the step's fields), for a tenant whose
/// policy requires passkeys.
pub(crate) fn enrol_form(state: &AppState, hidden: &str) -> String {
    if !state.passkeys.available() {
        return "<p class=\"error\" role=\"alert\">Passkeys are unavailable on this server: \
                ask your administrator.</p>"
            .to_owned();
    }
    let fields = format!("{hidden}<input type=\"hidden\" name=\"register\" value=\"yes\">");
    let target = ("register", "login/passkey/enrol", "login/passkey/options");
    ceremony_form(state, target, &fields, "Add a passkey")
}

/// Whether a pending sign-in may register a passkey: its tenant requires passkeys, the user
/// has none, and every other factor the user has is passed (a password alone must not add a
/// way in to an account with a second factor).
async fn enrol_allowed(state: &AppState, step: &LoginStepRow) -> anyhow::Result<bool> {
    let Some(tenant) = step.tenant_id.as_deref().filter(|_| step.tenant_resolved) else {
        return Ok(false);
    };
    let required = crate::web::steps::tenant_policy(state, tenant)
        .await
        .is_some_and(|p| p.passkeys_required);
    if !required || !step_passkeys(state, step).await?.is_empty() {
        return Ok(false);
    }
    Ok(has_second_factor(&step.amr) || !crate::mfa::enrolled(&state.store, &step.user_id).await?)
}

/// The tenant id of a request's tenant (id or slug); `None`: the request names none.
async fn request_tenant(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
) -> Result<Option<String>, Response> {
    let Some(hint) = &req.tenant else {
        return Ok(None);
    };
    match state.store.tenant_by_ref(hint).await {
        Ok(Some(t)) => Ok(Some(t.id)),
        Ok(None) => Err(login_page(
            state,
            headers,
            req,
            Some(NO_TENANT_ACCESS),
            StatusCode::FORBIDDEN,
        )),
        Err(e) => Err(unavailable(&e)),
    }
}

fn csrf_binding(headers: &HeaderMap) -> Vec<u8> {
    crypto::sha256(cookie_value(headers, CSRF_COOKIE).unwrap_or("").as_bytes())
}

pub(crate) fn options_answer(started: anyhow::Result<Option<Started>>) -> Response {
    match started {
        Ok(Some(Started { token, mut options })) => {
            options["ceremony"] = token.into();
            let mut r = axum::Json(options).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => Problem::new(
            StatusCode::CONFLICT,
            "passkeys-unavailable",
            "Passkeys are unavailable here",
        )
        .into_response(),
        Err(e) => match e.downcast_ref::<crate::store::StoreError>() {
            Some(store) => crate::admin::store_failed(store).into_response(),
            None => Problem::internal(&format!("{e:#}")).into_response(),
        },
    }
}

/// `POST /login/passkey/options` with `csrf`, `request` and, for a second factor, `step`:
/// the options of a new ceremony (JSON: `publicKey` and its `ceremony` token).
pub async fn options(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let step_token = form.get("step").unwrap_or("");
    if step_token.is_empty() {
        let tenant = match request_tenant(&state, &headers, &req).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let binding = csrf_binding(&headers);
        let started =
            passkeys::begin_sign_in(&state.store, &state.passkeys, tenant.as_deref(), &binding)
                .await;
        return options_answer(started);
    }
    let token_hash = crypto::sha256(step_token.as_bytes());
    let step = match state.store.login_step(&token_hash, now_ms()).await {
        Ok(Some(s)) if bool::from(s.csrf_hash.ct_eq(&csrf_binding(&headers))) => s,
        Ok(_) => return Problem::bad_request(EXPIRED).into_response(),
        Err(e) => return crate::admin::store_failed(&e).into_response(),
    };
    let register = form.get("register") == Some("yes");
    let started = async {
        let rp = &state.passkeys;
        if !register {
            let passkeys = step_passkeys(&state, &step).await?;
            return passkeys::begin_factor(&state.store, rp, &step.user_id, &passkeys, &token_hash)
                .await;
        }
        if !enrol_allowed(&state, &step).await? {
            return Ok(None);
        }
        let Some(user) = state.store.user_by_id(&step.user_id).await? else {
            return Ok(None);
        };
        let who = (user.id.as_str(), user.email.as_str(), user.name.as_str());
        let tenant = step.tenant_id.as_deref();
        passkeys::begin_registration(&state.store, rp, who, tenant, &token_hash).await
    };
    options_answer(started.await)
}

const NOT_ACCEPTED: &str = "This passkey was not accepted here.";
const CLONED: &str = "This passkey cannot be used: it may have been copied. Use another way \
     to sign in, and tell your administrator.";

/// Records a cloned authenticator.
async fn cloned_event(state: &AppState, headers: &HeaderMap, row: &PasskeyRow, at: &str) {
    let event = events::Event {
        tenant_id: row.tenant_id.as_deref(),
        kind: events::PASSKEY_CLONED,
        actor: format!("user:{}", row.user_id),
        outcome: "denied",
        details: serde_json::json!({"passkey": row.id, "counter": row.counter, "at": at}),
    };
    events::record(&state.events, &events::Meta::from_headers(headers), event).await;
}

/// `POST /login/passkey` with `csrf`, `request`, `ceremony` and `credential`: a passwordless
/// sign-in; it continues like a password's (tenant, policy, session).
pub async fn login_passkey(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let tenant = match request_tenant(&state, &headers, &req).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ip = crate::http::client_ip(&headers);
    let ip_key = format!("i:{ip}");
    let refuse = |message, status| login_page(&state, &headers, &req, Some(message), status);
    match state.store.locked_until(&[&ip_key], now_ms()).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "locked").increment(1);
            return refuse(
                "Too many failed attempts. Wait a few minutes and retry.",
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(e) => return unavailable(&e),
    }
    let binding = csrf_binding(&headers);
    let ceremony = (form.get("ceremony").unwrap_or(""), binding.as_slice());
    let credential = form.get("credential").unwrap_or("");
    let verified = match passkeys::finish_sign_in(
        &state.store,
        &state.passkeys,
        ceremony,
        tenant.as_deref(),
        credential,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return unavailable(&format!("{e:#}")),
    };
    let (reason, row) = match verified {
        Verified::Passkey(row) => match state.store.user_by_id(&row.user_id).await {
            Ok(Some(user)) if !user.disabled => {
                let account_key = format!("a:{}|{ip}", user.email.to_lowercase());
                let mut step = first_step(&headers, &user, account_key);
                step.amr = "hwk mfa".into();
                tracing::info!(user_id = %user.id, passkey = %row.id, "passkey verified");
                return advance(
                    &state,
                    &headers,
                    &req,
                    &user,
                    (step, Known::default()),
                    None,
                )
                .await;
            }
            Ok(_) => ("disabled", Some(row)),
            Err(e) => return unavailable(&e),
        },
        Verified::Expired => {
            return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
        }
        Verified::Cloned(row) => {
            cloned_event(&state, &headers, &row, "sign_in").await;
            ("cloned", Some(row))
        }
        Verified::Unknown => ("unknown", None),
        _ => ("invalid", None),
    };
    metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
    let actor = row
        .as_ref()
        .map_or_else(|| "anonymous".to_owned(), |r| format!("user:{}", r.user_id));
    let event = events::Event {
        tenant_id: tenant.as_deref(),
        kind: events::SIGN_IN,
        actor,
        outcome: "failure",
        details: serde_json::json!({"method": "passkey", "reason": reason}),
    };
    events::record(&state.events, &events::Meta::from_headers(&headers), event).await;
    let lockout = lockout_for(&state, &[]);
    record_failure(&state, lockout, &format!("a:passkey|{ip}"), &ip_key).await;
    let message = if reason == "cloned" {
        CLONED
    } else {
        NOT_ACCEPTED
    };
    refuse(message, StatusCode::UNAUTHORIZED)
}

/// `POST /login/mfa/passkey`: a passkey as the second factor of a pending sign-in.
pub async fn login_mfa_passkey(
    State(state): State<AppState>,
    headers: HeaderMap,
    s: Submitted,
) -> Response {
    // A passkey after another second factor, when the tenant requires passkeys.
    if s.step.amr.split(' ').any(|m| m == "hwk") {
        return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response();
    }
    if let Some(r) = locked(&state, &headers, &s, Stage::Code).await {
        return r;
    }
    let ceremony = (
        s.form.get("ceremony").unwrap_or(""),
        s.step.token_hash.as_slice(),
    );
    let verified = async {
        let passkeys = step_passkeys(&state, &s.step).await?;
        let credential = s.form.get("credential").unwrap_or("");
        let rp = &state.passkeys;
        passkeys::finish_factor(&state.store, rp, ceremony, &s.user.id, passkeys, credential).await
    };
    let mut step = s.step.clone();
    let reason = match verified.await {
        Ok(Verified::Passkey(row)) => {
            let details = serde_json::json!({"method": "passkey", "passkey": row.id});
            mfa_event(
                &state,
                &headers,
                &step,
                events::MFA_VERIFY,
                "success",
                details,
            )
            .await;
            step.amr = "pwd hwk mfa".into();
            if !step.tenant_resolved {
                match settle_tenant(&state, &s.req, &s.user, &row).await {
                    Ok(tenant) => {
                        step.tenant_id = Some(tenant);
                        step.tenant_resolved = true;
                    }
                    Err(message) => {
                        metrics::counter!("identity_sign_ins_total", "outcome" => "failure")
                            .increment(1);
                        tracing::info!(user_id = %s.user.id, "sign-in refused: no usable tenant");
                        let status = StatusCode::FORBIDDEN;
                        return login_page(&state, &headers, &s.req, Some(message), status);
                    }
                }
            }
            return s.advance(&state, &headers, step, None).await;
        }
        Ok(Verified::Cloned(row)) => {
            cloned_event(&state, &headers, &row, "second_factor").await;
            "cloned"
        }
        Ok(Verified::Expired) => "expired",
        Ok(Verified::Unknown) => "unknown",
        Ok(_) => "invalid",
        Err(e) => return unavailable(&format!("{e:#}")),
    };
    metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
    let details = serde_json::json!({"method": "passkey", "reason": reason});
    mfa_event(
        &state,
        &headers,
        &step,
        events::MFA_VERIFY,
        "failure",
        details,
    )
    .await;
    count_failure(&state, &headers, &s).await;
    let message = if reason == "cloned" {
        CLONED
    } else {
        NOT_ACCEPTED
    };
    let status = StatusCode::UNAUTHORIZED;
    show(
        &state,
        &headers,
        &s.req,
        &s.user,
        step,
        Stage::Code,
        Some(message),
        status,
    )
    .await
}

/// `POST /login/passkey/enrol`: registers the passkey a tenant's policy requires, during the
/// sign-in (its ceremony bound to the pending step), and continues.
pub async fn login_passkey_enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    s: Submitted,
) -> Response {
    match enrol_allowed(&state, &s.step).await {
        Ok(true) => {}
        Ok(false) => return AuthorizeError::Page(StatusCode::BAD_REQUEST, EXPIRED).into_response(),
        Err(e) => return unavailable(&format!("{e:#}")),
    }
    let verified = passkeys::finish_registration(
        &state.store,
        &state.passkeys,
        (s.form.get("ceremony").unwrap_or(""), &s.step.token_hash),
        (&s.user.id, s.step.tenant_id.as_deref()),
        s.form.get("credential").unwrap_or(""),
        "Passkey",
    )
    .await;
    let (outcome, details) = match &verified {
        Ok(Verified::Registered(row)) => (
            "success",
            serde_json::json!({"action": "register", "at": "sign_in", "passkey": row.id}),
        ),
        Ok(_) => (
            "failure",
            serde_json::json!({"action": "register", "at": "sign_in"}),
        ),
        Err(e) => return unavailable(&format!("{e:#}")),
    };
    mfa_event(
        &state,
        &headers,
        &s.step,
        events::PASSKEY_CHANGE,
        outcome,
        details,
    )
    .await;
    let mut step = s.step.clone();
    if outcome == "success" {
        step.amr = if has_second_factor(&step.amr) {
            format!("{} hwk", step.amr)
        } else {
            "pwd hwk mfa".into()
        };
        // A first second factor comes with recovery codes, shown once on finishing.
        let codes = match crate::mfa::recovery_codes_if_none(&state.store, &s.user.id).await {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("{e:#}")),
        };
        return s.advance(&state, &headers, step, codes).await;
    }
    let message = Some("The passkey could not be added. Try again.");
    let status = StatusCode::BAD_REQUEST;
    show(
        &state,
        &headers,
        &s.req,
        &s.user,
        step,
        Stage::PasskeyEnrol,
        message,
        status,
    )
    .await
}
