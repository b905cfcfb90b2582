//! The password step (`POST /login`) and the login form. Unknown account and wrong password
//! give the same answer; failures count against the (account, IP) and IP lockout keys.

use crate::AppState;
use crate::http::meta::client_ip;
use crate::store::now_ms;
use crate::web::authorize::AuthRequest;
use crate::web::authorize::AuthorizeError;
use crate::web::authorize::parse_request;
use crate::web::page::SIGN_IN_FORM_EXPIRED;
use crate::web::page::branded_page;
use crate::web::page::csrf_token;
use crate::web::page::escape;
use crate::web::page::html;
use crate::web::page::read_csrf_form;
use crate::web::sign_in::lockout_for;
use crate::web::sign_in::record_failure;
use crate::web::sign_in::sign_in_event;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `POST /login`: the login form's submission.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let email = form.get("email").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    // Locks are keyed by what was typed, known account or not: they reveal nothing.
    let ip = client_ip(&headers);
    let typed: String = email.to_lowercase().chars().take(320).collect();
    let account_key = format!("a:{typed}|{ip}");
    let ip_key = format!("i:{ip}");
    // An empty or over-long email names no account (and is not looked up).
    let lookup = if email.is_empty() || email.len() > 320 {
        ""
    } else {
        email
    };
    let (failures_pending, found) = match state
        .store
        .sign_in_lookup(&account_key, &ip_key, now_ms(), lookup)
        .await
    {
        Ok((gate, found)) if gate.locked_until.is_none() => (gate.failures_pending, found),
        Ok(_) => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "locked").increment(1);
            tracing::info!(ip = %ip, "sign-in refused: temporarily locked");
            sign_in_event(
                &state,
                &headers,
                None,
                crate::events::LOCKOUT,
                "anonymous".into(),
                "denied",
                &typed,
            )
            .await;
            return login_page(
                &state,
                &headers,
                &req,
                Some("Too many failed attempts. Wait a few minutes and retry."),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in lookup failed");
            return AuthorizeError::Page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable right now; retry later.",
            )
            .into_response();
        }
    };
    let lockout = lockout_for(
        &state,
        found.as_ref().map_or(&[][..], |a| a.tenants.as_slice()),
    );
    let (user, known) = match found {
        Some(a) => {
            let known = crate::web::steps::Known {
                enrolled: Some(a.mfa_enrolled),
                tenants: Some(a.tenants),
            };
            (Some(a.user), known)
        }
        None => (None, crate::web::steps::Known::default()),
    };
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
        .await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            metrics::counter!("identity_sign_ins_total", "outcome" => "failure").increment(1);
            tracing::info!(ip = %ip, "sign-in failed");
            let failures = record_failure(&state, lockout, &account_key, &ip_key).await;
            sign_in_event(
                &state,
                &headers,
                None,
                crate::events::SIGN_IN,
                "anonymous".into(),
                "failure",
                &typed,
            )
            .await;
            if failures >= lockout.threshold {
                sign_in_event(
                    &state,
                    &headers,
                    None,
                    crate::events::LOCKOUT,
                    "system".into(),
                    "engaged",
                    &typed,
                )
                .await;
            }
            let delay = state
                .config
                .login_failure_delay_ms
                .saturating_mul(u64::try_from(failures).unwrap_or(0))
                .min(2000);
            if delay > 0 {
                // Progressive delay: slows guessing; the lock stops it.
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            return login_page(
                &state,
                &headers,
                &req,
                Some("Invalid email or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    // The second factor, the tenant choice and a forced enrolment come next, if needed.
    let mut step = crate::web::steps::first_step(&headers, &user, account_key);
    step.failures_pending = failures_pending;
    crate::web::steps::advance(&state, &headers, &req, &user, (step, known), None).await
}

pub(crate) fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return AuthorizeError::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now.",
        )
        .into_response();
    };
    let action = format!("{}login", state.config.issuer);
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p>to continue to <strong>{client}</strong></p>{error_html}\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required value=\"{hint}\"></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>{federation}\
         {passkey}<p><a href=\"{forgot}\">Forgot your password?</a></p>{register}",
        federation = crate::web::federation::login_fragment(state, req),
        passkey = crate::web::passkeys::sign_in_form(state, req, &csrf),
        forgot = escape(&match &req.tenant {
            Some(t) => format!(
                "{}account/password/forgot?tenant={}",
                state.config.issuer,
                crate::web::recovery::query_escape(t)
            ),
            None => format!("{}account/password/forgot", state.config.issuer),
        }),
        register = if state.config.registration_open() {
            format!(
                "<p>New here? <a href=\"{}\">Create a shop</a></p>",
                escape(&format!("{}register?{}", state.config.issuer, req.raw))
            )
        } else {
            String::new()
        },
        client = escape(&req.client.name),
        action = escape(&action),
        csrf = escape(&csrf),
        request = escape(&req.raw),
        hint = escape(req.login_hint.as_deref().unwrap_or("")),
    );
    let mut response = html(status, &branded_page("Sign in", &body, req.brand.as_ref()));
    crate::web::passkeys::allow_script(state, &mut response);
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}
