//! Getting back in and proving an address, by links sent by mail ([`crate::account`]):
//! "forgot password" (`GET|POST /account/password/forgot`), the reset link's page
//! (`GET|POST /account/password/reset`), the verification link's page
//! (`GET|POST /account/email/verify`) and a new verification link for the signed-in user
//! (`POST /account/email/verification`).
//!
//! Security decisions:
//! - A reset request answers the same page whatever the address; the lookup and the mail run
//!   after the answer. Requests per client IP are limited (`link_requests_per_ip` in a window
//!   of `link_ip_lock_secs`, counted apart from failed sign-ins: 429 for everyone from that IP
//!   until the window ends, so it tells nothing either, and it never locks a sign-in).
//! - Opening a link (GET) uses nothing: mail scanners that fetch links cannot spend them. The
//!   form it shows (CSRF double submit) uses the link, once.
//! - A reset sets the password through `Store::set_password`: every session ends and every
//!   refresh-token family is revoked in the same transaction; the new password follows the
//!   account's tenants' rules (the longest minimum length).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use crate::AppState;
use crate::account::{self, EMAIL_VERIFICATION, PASSWORD_RESET};
use crate::messages::Lang;
use crate::oauth::params::Params;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;
use crate::tenants;
use crate::web::account::{csrf_field, notice, overview_page, password_policy, session_tenant};
use crate::web::authorize::current_session;
use crate::web::page::{Brand, account_page_titled, branded_account_page};
use crate::web::page::{FORM_EXPIRED, escape};
use crate::web::page::{not_signed_in, unavailable};

/// A query or form value, percent-encoded.
pub(crate) fn query_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A query parameter (`None` when absent or the query is malformed).
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let q = Params::parse(uri.query().unwrap_or("").as_bytes()).ok()?;
    q.get(name).map(str::to_owned)
}

async fn tenant_named(state: &AppState, reference: Option<&str>) -> Option<TenantRow> {
    let r = reference.filter(|r| !r.is_empty() && r.len() <= 64)?;
    let t = state.store.tenant_by_ref(r).await.ok().flatten()?;
    (t.status == tenants::STATUS_ACTIVE).then_some(t)
}

/// `GET /account/password/forgot[?tenant=]`.
pub async fn forgot_form(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let tenant = query_param(&uri, "tenant").unwrap_or_default();
    forgot_page(&state, &headers, &tenant, None, StatusCode::OK).await
}

async fn forgot_page(
    state: &AppState,
    headers: &HeaderMap,
    tenant: &str,
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let action = format!("{}account/password/forgot", state.config.issuer);
    let message = notice(message);
    let brand = tenant_named(state, Some(tenant))
        .await
        .map(|t| Brand::of(&t));
    let t = Lang::of(headers);
    let title = (t.get("forgot.title"), brand.as_ref());
    branded_account_page(state, headers, status, title, |csrf| {
        format!(
            "<h1>{title}</h1>{message}<p>{help}</p>\
             <form method=\"post\" action=\"{action}\">{csrf}\
             <input type=\"hidden\" name=\"tenant\" value=\"{tenant}\">\
             <label for=\"email\">{email}</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
             <button type=\"submit\">{send}</button></form>",
            title = escape(t.get("forgot.title")),
            help = escape(t.get("forgot.help")),
            email = escape(t.get("account.email")),
            send = escape(t.get("account.send_link")),
            action = escape(&action),
            csrf = csrf_field(csrf),
            tenant = escape(tenant),
        )
    })
}

/// `POST /account/password/forgot` with `email` (and `tenant`).
pub async fn forgot(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match crate::web::page::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tenant_ref = form.get("tenant").unwrap_or("").to_owned();
    let ip_key = format!("reset:{}", crate::http::meta::client_ip(&headers));
    let cfg = &state.config.account;
    let window_ms =
        i64::try_from(cfg.link_ip_lock_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
    match state
        .store
        .count_request(&ip_key, now_ms(), window_ms)
        .await
    {
        Ok(c) if c.requests <= i64::from(cfg.link_requests_per_ip) => {}
        Ok(_) => {
            let m = Lang::of(&headers).get("forgot.too_many");
            return forgot_page(
                &state,
                &headers,
                &tenant_ref,
                Some((m, true)),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
        Err(e) => return unavailable(&e),
    }
    let email = form.get("email").unwrap_or("").trim().to_lowercase();
    if tenants::valid_email(&email) {
        let task_state = state.clone();
        let meta = crate::events::Meta::from_headers(&headers);
        tokio::spawn(async move {
            let state = task_state;
            let tenant = tenant_named(&state, Some(&tenant_ref)).await;
            match state
                .mailer()
                .request_password_reset(&email, tenant.as_ref())
                .await
            {
                Ok(Some(under)) => {
                    let event = crate::events::Event {
                        tenant_id: under.as_deref(),
                        kind: crate::events::USER_CHANGE,
                        actor: "system".into(),
                        outcome: "success",
                        details: serde_json::json!({"action": "password.reset_link_sent", "email": email}),
                    };
                    crate::events::record(&state.events, &meta, event).await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "a password reset link could not be queued")
                }
            }
        });
    }
    forgot_page(
        &state,
        &headers,
        form.get("tenant").unwrap_or(""),
        Some((Lang::of(&headers).get("forgot.requested"), false)),
        StatusCode::OK,
    )
    .await
}

const LINK_INVALID: &str = "This link does not work any more: it was used, it expired, or it \
     was never ours.";

fn invalid_link(state: &AppState, headers: &HeaderMap, forgot: bool) -> Response {
    let again = if forgot {
        format!(
            "<p><a href=\"{}\">Ask for a new link</a></p>",
            escape(&format!("{}account/password/forgot", state.config.issuer))
        )
    } else {
        "<p>Sign in and ask for a new link on your account page.</p>".to_owned()
    };
    account_page_titled(
        state,
        headers,
        StatusCode::BAD_REQUEST,
        "Link not valid",
        |_| {
            format!(
                "<h1>Link not valid</h1>{}{again}",
                notice(Some((LINK_INVALID, true)))
            )
        },
    )
}

/// `GET /account/password/reset?token=`: the new password's form (the link is not used yet).
pub async fn reset_form(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let token = query_param(&uri, "token").unwrap_or_default();
    match account::peek(&state.store, PASSWORD_RESET, &token).await {
        Ok(Some(link)) => {
            let brand = tenant_named(&state, link.tenant_id.as_deref()).await;
            let brand = brand.as_ref().map(Brand::of);
            reset_page(
                &state,
                &headers,
                (&token, brand.as_ref()),
                None,
                StatusCode::OK,
            )
        }
        Ok(None) => invalid_link(&state, &headers, true),
        Err(e) => unavailable(&e),
    }
}

fn reset_page(
    state: &AppState,
    headers: &HeaderMap,
    (token, brand): (&str, Option<&Brand>),
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let action = format!("{}account/password/reset", state.config.issuer);
    let message = notice(message);
    let title = ("Choose a new password", brand);
    branded_account_page(state, headers, status, title, |csrf| {
        format!(
            "<h1>Choose a new password</h1>{message}<p>Every session of the account is signed \
             out and every app must sign in again.</p>\
             <form method=\"post\" action=\"{action}\">{csrf}\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <label for=\"password\">New password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
             <label for=\"confirm\">New password again</label>\
             <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">Set the password</button></form>",
            action = escape(&action),
            csrf = csrf_field(csrf),
            token = escape(token),
        )
    })
}

/// `POST /account/password/reset` with `token`, `password` and `confirm`.
pub async fn reset(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match crate::web::page::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = form.get("token").unwrap_or("");
    let link = match account::peek(&state.store, PASSWORD_RESET, token).await {
        Ok(Some(l)) => l,
        Ok(None) => return invalid_link(&state, &headers, true),
        Err(e) => return unavailable(&e),
    };
    let user = match state.store.user_by_id(&link.user_id).await {
        Ok(Some(u)) if !u.disabled && u.email == link.email => u,
        Ok(_) => return invalid_link(&state, &headers, true),
        Err(e) => return unavailable(&e),
    };
    let new = form.get("password").unwrap_or("");
    let tenant = tenant_named(&state, link.tenant_id.as_deref()).await;
    let brand = tenant.as_ref().map(Brand::of);
    let refuse = |m: &str| {
        reset_page(
            &state,
            &headers,
            (token, brand.as_ref()),
            Some((m, true)),
            StatusCode::BAD_REQUEST,
        )
    };
    if form.get("confirm") != Some(new) {
        return refuse("The passwords differ.");
    }
    let policy = password_policy(&state, &user.id).await;
    let problems = tenants::password_problems(new, &user.email, &user.name, &policy);
    if !problems.is_empty() {
        return refuse(&problems.join("; "));
    }
    let hash = match state.passwords.hash(new).await {
        Ok(h) => h,
        Err(e) => return unavailable(&e),
    };
    // The link is used now, once: of two concurrent submissions one sets the password.
    match account::redeem(&state.store, PASSWORD_RESET, token).await {
        Ok(Some(_)) => {}
        Ok(None) => return invalid_link(&state, &headers, true),
        Err(e) => return unavailable(&e),
    }
    match state
        .store
        .set_password(&user.id, &hash, None, now_ms())
        .await
    {
        Ok(true) => {}
        Ok(false) => return invalid_link(&state, &headers, true),
        Err(e) => return unavailable(&e),
    }
    // The reset proves the address too.
    if let Err(e) = state
        .store
        .mark_email_verified(&user.id, &link.email, now_ms())
        .await
    {
        tracing::warn!(error = %e, "recording the proven address failed");
    }
    let details = serde_json::json!({"action": "password.reset", "user": user.id});
    crate::web::account::record(
        &state,
        &headers,
        link.tenant_id.as_deref(),
        &user,
        "success",
        details,
    )
    .await;
    tracing::info!(user_id = %user.id, "password reset by link");
    if let Err(e) = state
        .mailer()
        .password_changed(&user, tenant.as_ref())
        .await
    {
        tracing::warn!(error = %format!("{e:#}"), "queueing the password-changed notice failed");
    }
    let brand = tenant.as_ref().map(Brand::of);
    let title = ("Password changed", brand.as_ref());
    branded_account_page(&state, &headers, StatusCode::OK, title, |_| {
        "<h1>Your password was changed</h1><p>Every session was signed out. Go back to the app \
         and sign in with your new password.</p>"
            .to_owned()
    })
}

/// `GET /account/email/verify?token=`: confirms with a button (the link is not used yet).
pub async fn verify_form(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let token = query_param(&uri, "token").unwrap_or_default();
    let link = match account::peek_address_link(&state.store, &token).await {
        Ok(Some(l)) => l,
        Ok(None) => return invalid_link(&state, &headers, false),
        Err(e) => return unavailable(&e),
    };
    let action = format!("{}account/email/verify", state.config.issuer);
    let brand = tenant_named(&state, link.tenant_id.as_deref()).await;
    let brand = brand.as_ref().map(Brand::of);
    branded_account_page(
        &state,
        &headers,
        StatusCode::OK,
        ("Confirm your address", brand.as_ref()),
        |csrf| {
            format!(
                "<h1>Confirm your address</h1><p>Confirm that <strong>{email}</strong> is yours.</p>\
             <form method=\"post\" action=\"{action}\">{csrf}\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <button type=\"submit\">Confirm</button></form>",
                email = escape(&link.email),
                action = escape(&action),
                csrf = csrf_field(csrf),
                token = escape(&token),
            )
        },
    )
}

/// `POST /account/email/verify` with `token`.
pub async fn verify(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match crate::web::page::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match account::verify_email(&state.store, form.get("token").unwrap_or("")).await {
        Ok(true) => account_page_titled(
            &state,
            &headers,
            StatusCode::OK,
            "Address confirmed",
            |_| {
                "<h1>Address confirmed</h1><p>Thank you: your address is confirmed. You can close \
             this page or go back to the app.</p>"
                    .to_owned()
            },
        ),
        Ok(false) => invalid_link(&state, &headers, false),
        Err(e) => unavailable(&e),
    }
}

/// `POST /account/email/verification`: a new verification link for the signed-in user.
pub async fn send_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(r) = crate::web::page::read_csrf_form(&headers, body, FORM_EXPIRED).await {
        return r;
    }
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let tenant = session_tenant(&state, &session).await;
    let message = match state
        .mailer()
        .send_link(EMAIL_VERIFICATION, &user, tenant.as_ref())
        .await
    {
        Ok(true) => ("A confirmation link is on its way to your address.", false),
        Ok(false) => (
            "Several links were sent in the last hour: use one of them, or retry later.",
            true,
        ),
        Err(e) => return unavailable(&e),
    };
    overview_page(&state, &headers, &session, &user, Some(message)).await
}
