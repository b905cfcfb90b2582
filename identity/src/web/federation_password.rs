//! The link of an upstream identity to the existing account of its address, once that account
//! proves itself (see [`super::federation_link`]): the page asking for its password, and
//! `POST /federation/link`. The form is CSRF-protected; its single-use token's row is bound to
//! the browser's CSRF cookie and expires like the sign-in; wrong passwords count against the
//! same lockout as the login form.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::crypto;
use crate::federation::{FEDERATION_LINK, PENDING_LIFETIME_MS, UpstreamIdentity};
use crate::http::client_ip;
use crate::store::federation::KIND_LINK;
use crate::store::now_ms;
use crate::store::providers::ProviderRow;
use crate::store::tenants::TenantRow;
use crate::store::users::UserRow;
use crate::web::authorize::{AuthRequest, parse_request};
use crate::web::federation::{
    FEDERATION_EXPIRED, event, hold_identity, request_tenant, tenant_provider,
};
use crate::web::federation_link::{details, enter, link, user_actor};
use crate::web::page::{
    CSRF_COOKIE, SIGN_IN_FORM_EXPIRED, branded_page, cookie_value, csrf_token, escape, html,
    read_csrf_form, unavailable,
};
use crate::web::sign_in::{lockout_of_user, record_failure};

/// The page that asks the existing account of the address for its password before linking.
pub(crate) async fn show_link(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    (tenant, p, id): (&TenantRow, &ProviderRow, &UpstreamIdentity),
    user: &UserRow,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some((csrf, csrf_cookie)) = csrf_token(state, headers) else {
        return unavailable(&"no CSRF token");
    };
    let token = match crypto::random_secret() {
        Ok(t) => t,
        Err(e) => return unavailable(&e),
    };
    let step = (KIND_LINK, token.as_str(), csrf.as_str());
    let user_id = Some(user.id.clone());
    let held = hold_identity(
        state,
        (tenant, p, id),
        req,
        step,
        user_id,
        PENDING_LIFETIME_MS,
    );
    if let Err(page) = held.await {
        return page;
    }
    let error_html = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Link your account</h1>{error_html}<p>An account with the address \
         <strong>{email}</strong> exists. Enter its password to link your {provider} sign-in to \
         it; after that, either signs you in.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\
         <input type=\"hidden\" name=\"link\" value=\"{token}\">\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus></label>\
         <button type=\"submit\">Link and sign in</button></form>",
        email = escape(&user.email),
        provider = escape(&p.name),
        action = escape(&format!("{}federation/link", state.config.issuer)),
        csrf = escape(&csrf),
        request = escape(&req.raw),
        token = escape(&token),
    );
    let mut response = html(
        status,
        &branded_page("Link your account", &body, req.brand.as_ref()),
    );
    if let Some(c) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `POST /federation/link`: the existing account's password, then the link and the sign-in.
pub async fn link_form(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let expired = || {
        crate::web::authorize::AuthorizeError::Page(StatusCode::BAD_REQUEST, FEDERATION_EXPIRED)
            .into_response()
    };
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let req = match parse_request(&state, form.get("request").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let token_hash = crypto::sha256(form.get("link").unwrap_or("").as_bytes());
    let row = match state
        .store
        .take_federation_pending(&token_hash, now_ms())
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => return expired(),
        Err(e) => return unavailable(&e),
    };
    let csrf_hash = crypto::sha256(cookie_value(&headers, CSRF_COOKIE).unwrap_or("").as_bytes());
    if row.kind != KIND_LINK || !bool::from(csrf_hash.ct_eq(&row.binding_hash)) {
        return expired();
    }
    let tenant = match request_tenant(&state, &req).await {
        Ok(Some(t)) if t.id == row.tenant_id => t,
        Ok(_) => return expired(),
        Err(r) => return r,
    };
    let p = match tenant_provider(&state, &tenant, &row.provider_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired(),
        Err(r) => return r,
    };
    let user = match state
        .store
        .user_by_id(row.user_id.as_deref().unwrap_or(""))
        .await
    {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => return expired(),
        Err(e) => return unavailable(&e),
    };
    let Some(id) = row
        .identity
        .as_deref()
        .and_then(|i| serde_json::from_str::<UpstreamIdentity>(i).ok())
    else {
        return expired();
    };
    let ctx = (&tenant, &p, &id);
    let ip = client_ip(&headers);
    let account_key = format!("a:{}|{ip}", user.email);
    let ip_key = format!("i:{ip}");
    match state
        .store
        .locked_until(&[&account_key, &ip_key], now_ms())
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => {
            let message = Some("Too many failed attempts. Wait a few minutes and retry.");
            let status = StatusCode::TOO_MANY_REQUESTS;
            return show_link(&state, &headers, &req, ctx, &user, message, status).await;
        }
        Err(e) => return unavailable(&e),
    }
    let password = form.get("password").unwrap_or("");
    if !state
        .passwords
        .verify(password, Some(user.password_hash.as_str()))
        .await
    {
        let lockout = lockout_of_user(&state, &user.id).await;
        record_failure(&state, lockout, &account_key, &ip_key).await;
        let d = details(
            &p,
            &id,
            serde_json::json!({"user": user.id, "reason": "wrong password"}),
        );
        event(
            &state,
            &headers,
            &tenant.id,
            FEDERATION_LINK,
            "anonymous".into(),
            "failure",
            d,
        )
        .await;
        let message = Some("Wrong password.");
        return show_link(
            &state,
            &headers,
            &req,
            ctx,
            &user,
            message,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    if let Err(e) = link(&state, &tenant, &p, &id, &user.id).await {
        return unavailable(&e);
    }
    if let Err(e) = state.store.clear_login_failures(&account_key).await {
        tracing::warn!(error = %e, "clearing sign-in failures failed");
    }
    let d = details(&p, &id, serde_json::json!({"user": user.id}));
    event(
        &state,
        &headers,
        &tenant.id,
        FEDERATION_LINK,
        user_actor(&user.id),
        "success",
        d,
    )
    .await;
    enter(&state, &headers, &req, ctx, user, "fed pwd").await
}
