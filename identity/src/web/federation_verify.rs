//! The first sign-in through a provider whose address is not trusted
//! ([`crate::federation::trusted_email`]): the account is created only once the address is
//! proven by mail (Keycloak's first-broker-login "verify email"). [`send`] mails a link and
//! answers "check your mail"; `GET /federation/{provider}/verify?token` shows the confirmation
//! button, `POST /federation/{provider}/verify` creates the account (its address verified),
//! links the upstream identity and continues the sign-in.
//!
//! Security decisions:
//! - Until the link is followed no account row exists: the verified upstream identity and the
//!   pending authorization request wait in a `federation_pending` row (kind `verify`), so
//!   nothing can collide with, or later be taken over by, the owner of the mailbox. An account
//!   that proves an address by mail while carrying a link whose address was not trusted cannot
//!   exist: such a link is only ever stored together with the proof.
//! - The link carries 256 random bits; only their SHA-256 is stored. It works once (the row is
//!   taken), until it expires (`account.password_reset_lifetime_secs`, 30 min: it creates an
//!   account), and only under the provider of its tenant (another provider's path refuses and
//!   spends it).
//! - It works only in the browser that signed in at the provider (the SHA-256 of a fresh random
//!   `SameSite=Lax` cookie, named after the link, is in the row): neither the holder of the upstream identity without
//!   the mailbox, nor the mailbox owner clicking a link someone else's sign-in sent them, can
//!   create the account. The `GET` only shows a button (mail scanners fetch links); the `POST`
//!   is CSRF-protected.
//! - At most `account.link_requests_per_hour` links per address and tenant per hour: further
//!   sign-ins are told to wait and send nothing.
//! - Every step is a `federation.verify` security event (`pending`, `denied`, `success`); the
//!   token is never logged.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::crypto;
use crate::events;
use crate::federation::{FEDERATION_VERIFY, UpstreamIdentity};
use crate::mail::templates::{self, EMAIL_VERIFICATION, Values};
use crate::store::federation::KIND_VERIFY;
use crate::store::now_ms;
use crate::store::providers::ProviderRow;
use crate::store::tenants::TenantRow;
use crate::web::authorize::{AuthRequest, AuthorizeError, parse_request};
use crate::web::federation::{
    FEDERATION_EXPIRED, event, hold_identity, request_tenant, tenant_provider,
};
use crate::web::federation_link::{Proof, details, provision};
use crate::web::page::{
    SIGN_IN_FORM_EXPIRED, branded_page, cookie_value, csrf_token, escape, html, read_csrf_form,
    set_cookie, unavailable,
};
use crate::web::password::login_page;

const TOO_MANY: &str = "Too many confirmation links were sent to this address in the last \
     hour. Use one of them, or try again later.";
const TAKEN: &str = "An account with this address exists now, so this sign-in cannot create \
     one. Sign in with your password.";

/// The link's lifetime (ms): an account's short-lived links' (`password_reset_lifetime_secs`).
fn lifetime_ms(state: &AppState) -> i64 {
    i64::try_from(
        state
            .config
            .account
            .password_reset_lifetime_secs
            .saturating_mul(1000),
    )
    .unwrap_or(30 * 60 * 1000)
}

/// Mails a link proving `email` and answers "check your mail" (see the module doc).
pub(crate) async fn send(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    (tenant, p, id): (&TenantRow, &ProviderRow, &UpstreamIdentity),
    email: &str,
) -> Response {
    let now = now_ms();
    let key = format!("fv:{}|{email}", tenant.id);
    match state.store.count_request(&key, now, 3_600_000).await {
        Ok(c) if c.requests <= i64::from(state.config.account.link_requests_per_hour) => {}
        Ok(_) => {
            let d = details(p, id, serde_json::json!({"reason": "too many links"}));
            let actor = "anonymous".to_owned();
            event(
                state,
                headers,
                &tenant.id,
                FEDERATION_VERIFY,
                actor,
                "denied",
                d,
            )
            .await;
            return login_page(
                state,
                headers,
                req,
                Some(TOO_MANY),
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        Err(e) => return unavailable(&e),
    }
    let (token, binding) = match (crypto::random_secret(), crypto::random_secret()) {
        (Ok(t), Ok(b)) => (t, b),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let lifetime = lifetime_ms(state);
    let step = (KIND_VERIFY, token.as_str(), binding.as_str());
    if let Err(page) = hold_identity(state, (tenant, p, id), req, step, None, lifetime).await {
        return page;
    }
    let minutes = u64::try_from(lifetime / 60_000).unwrap_or(30);
    let link = format!(
        "{}federation/{}/verify?token={token}",
        state.config.issuer, p.id
    );
    let values = Values {
        product: &tenant.name,
        email,
        link: &link,
        minutes,
        device: "",
    };
    let sent = match templates::render(&state.store, Some(&tenant.id), EMAIL_VERIFICATION, &values)
        .await
    {
        Ok(content) => {
            state
                .outbox
                .enqueue(Some(&tenant.id), EMAIL_VERIFICATION, email, &content)
                .await
        }
        Err(e) => Err(e.into()),
    };
    if let Err(e) = sent {
        return unavailable(&e);
    }
    let d = details(p, id, serde_json::json!({"reason": "address not trusted"}));
    let actor = "anonymous".to_owned();
    event(
        state,
        headers,
        &tenant.id,
        FEDERATION_VERIFY,
        actor,
        "pending",
        d,
    )
    .await;
    let body = format!(
        "<h1>Check your mail</h1><p>To finish signing in with {provider}, confirm that \
         <strong>{email}</strong> is your address: open the link we sent there, in this \
         browser, within {minutes} minutes.</p><p>Your account is created once you do.</p>",
        provider = escape(&p.name),
        email = escape(email),
    );
    let mut response = html(
        StatusCode::OK,
        &branded_page("Check your mail", &body, req.brand.as_ref()),
    );
    let secs = u64::try_from(lifetime / 1000).unwrap_or(1800);
    if let Some(c) = set_cookie(state, &binding_cookie(&token), &binding, "Lax", secs) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The cookie binding one mailed link to the browser that signed in, named after the link
/// (the first 8 bytes of its token's SHA-256): neither a later sign-in at a provider nor
/// another link in the same browser replaces it.
fn binding_cookie(token: &str) -> String {
    let hash = crypto::sha256(token.as_bytes());
    let id: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("tansu_fv_{id}")
}

fn expired() -> Response {
    AuthorizeError::Page(StatusCode::BAD_REQUEST, FEDERATION_EXPIRED).into_response()
}

/// A refused link: its security event (in the link's tenant when it is known).
async fn refused(state: &AppState, headers: &HeaderMap, tenant_id: Option<&str>, reason: &str) {
    let meta = events::Meta::from_headers(headers);
    let e = events::Event {
        tenant_id,
        kind: FEDERATION_VERIFY,
        actor: "anonymous".into(),
        outcome: "denied",
        details: serde_json::json!({"reason": reason}),
    };
    events::record(&state.events, &meta, e).await;
}

/// `GET /federation/{provider}/verify?token`: the button that confirms the address (nothing
/// is used yet).
pub async fn show(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or("");
    let Some((csrf, csrf_cookie)) = csrf_token(&state, &headers) else {
        return unavailable(&"no CSRF token");
    };
    let body = format!(
        "<h1>Confirm your address</h1><p>Confirm your address to create your account and \
         finish signing in.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <button type=\"submit\">Confirm and sign in</button></form>",
        action = escape(&format!(
            "{}federation/{provider_id}/verify",
            state.config.issuer
        )),
        csrf = escape(&csrf),
        token = escape(token),
    );
    let mut response = html(
        StatusCode::OK,
        &branded_page("Confirm your address", &body, None),
    );
    if let Some(c) = csrf_cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// `POST /federation/{provider}/verify` with `token`: the address is proven; the account is
/// created, linked and signed in.
pub async fn confirm(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match read_csrf_form(&headers, body, SIGN_IN_FORM_EXPIRED).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token_hash = crypto::sha256(form.get("token").unwrap_or("").as_bytes());
    let row = match state
        .store
        .take_federation_pending(&token_hash, now_ms())
        .await
    {
        Ok(Some(r)) if r.kind == KIND_VERIFY => r,
        Ok(_) => {
            refused(&state, &headers, None, "unknown, used or expired link").await;
            return expired();
        }
        Err(e) => return unavailable(&e),
    };
    let binding = crypto::sha256(
        cookie_value(&headers, &binding_cookie(form.get("token").unwrap_or("")))
            .unwrap_or("")
            .as_bytes(),
    );
    if row.provider_id != provider_id {
        refused(&state, &headers, Some(&row.tenant_id), "another provider").await;
        return expired();
    }
    if !bool::from(binding.ct_eq(&row.binding_hash)) {
        let reason = "not the browser that signed in";
        refused(&state, &headers, Some(&row.tenant_id), reason).await;
        return expired();
    }
    let req = match parse_request(&state, &row.request).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let tenant = match request_tenant(&state, &req).await {
        Ok(Some(t)) if t.id == row.tenant_id => t,
        Ok(_) => {
            refused(&state, &headers, Some(&row.tenant_id), "another tenant").await;
            return expired();
        }
        Err(r) => return r,
    };
    let p = match tenant_provider(&state, &tenant, &row.provider_id).await {
        Ok(Some(p)) if p.sign_in.auto_provision => p,
        Ok(_) => {
            refused(&state, &headers, Some(&tenant.id), "provider off").await;
            return expired();
        }
        Err(r) => return r,
    };
    let Some(id) = row
        .identity
        .as_deref()
        .and_then(|i| serde_json::from_str::<UpstreamIdentity>(i).ok())
    else {
        return expired();
    };
    let Some(email) = id.email.clone() else {
        return expired();
    };
    let ctx = (&tenant, &p, &id);
    // The provider's settings may have changed since the link was sent.
    if !crate::federation::domain_allowed(&p, &id) {
        refused(&state, &headers, Some(&tenant.id), "domain not allowed").await;
        return expired();
    }
    // Another sign-in of the same upstream identity finished first.
    match state
        .store
        .federated_identity(&tenant.id, &id.issuer, &id.subject)
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => {
            refused(&state, &headers, Some(&tenant.id), "linked meanwhile").await;
            return expired();
        }
        Err(e) => return unavailable(&e),
    }
    match state.store.user_by_email(&email).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            let d = details(&p, &id, serde_json::json!({"reason": "address taken"}));
            let actor = "anonymous".to_owned();
            event(
                &state,
                &headers,
                &tenant.id,
                FEDERATION_VERIFY,
                actor,
                "denied",
                d,
            )
            .await;
            return login_page(&state, &headers, &req, Some(TAKEN), StatusCode::CONFLICT);
        }
        Err(e) => return unavailable(&e),
    }
    let d = details(&p, &id, serde_json::json!({}));
    let actor = "anonymous".to_owned();
    event(
        &state,
        &headers,
        &tenant.id,
        FEDERATION_VERIFY,
        actor,
        "success",
        d,
    )
    .await;
    provision(&state, &headers, &req, ctx, email, Proof::Mail).await
}
