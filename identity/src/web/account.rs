//! The self-service account of the signed-in user: the overview (`GET /account`), a new
//! address (`POST /account/email`) and a new password (`GET|POST /account/password`). "Export
//! my data" and "delete my account" are in [`crate::web::account_data`], sessions and granted
//! clients in [`crate::web::account_sessions`], forgotten passwords and address proofs in
//! [`crate::web::recovery`].
//!
//! Their words come from [`crate::messages`] in the request's language.
//!
//! Security decisions:
//! - Every page needs the browser session; every form is CSRF-protected (double submit), like
//!   the other account pages.
//! - A new password, a new address and a deletion need the current password again (a stolen
//!   session alone does none of them); wrong ones count against the key `p:<user id>` with the
//!   service's lockout threshold and duration.
//! - A new password goes through `Store::set_password`, as an administrator's reset does:
//!   every other session ends and every refresh-token family is revoked in the same
//!   transaction; this browser stays signed in. The address is told (a notice by mail).
//! - A new address takes effect only once a link sent to it is opened; the answer does not
//!   tell whether another account has it (then nothing is sent).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::AppState;
use crate::clients::rfc3339;
use crate::events::{self, Event, Meta, USER_CHANGE};
use crate::messages::Lang;
use crate::store::now_ms;
use crate::store::tenants::TenantRow;
use crate::store::users::{SessionRow, UserRow};
use crate::tenants::{self, TenantPolicy};
use crate::web::account_form::AccountForm;
use crate::web::authorize::current_session;
use crate::web::page::escape;
use crate::web::page::{Brand, branded_account_page};
use crate::web::page::{not_signed_in, unavailable};

/// The account pages' navigation in the request's language, `current` marked.
pub(crate) fn nav(state: &AppState, headers: &HeaderMap, current: &str) -> String {
    let lang = Lang::of(headers);
    let mut items = String::new();
    for (path, label) in [
        ("account", "account.nav.account"),
        ("account/password", "account.nav.password"),
        ("account/sessions", "account.nav.sessions"),
        ("account/mfa", "account.nav.mfa"),
        ("account/passkeys", "account.nav.passkeys"),
        ("account/invitations", "account.nav.invitations"),
    ] {
        let here = if path == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        items.push_str(&format!(
            "<li><a href=\"{}\"{here}>{}</a></li>",
            escape(&format!("{}{path}", state.config.issuer)),
            escape(lang.get(label)),
        ));
    }
    format!(
        "<nav aria-label=\"{}\"><ul class=\"nav\">{items}</ul></nav>",
        escape(lang.get("account.nav"))
    )
}

/// A notice (`role=status`) or an error (`role=alert`) paragraph.
pub(crate) fn notice(message: Option<(&str, bool)>) -> String {
    match message {
        Some((m, true)) => format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)),
        Some((m, false)) => format!("<p class=\"notice\" role=\"status\">{}</p>", escape(m)),
        None => String::new(),
    }
}

pub(crate) fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// The tenant of this session, read now (`None`: the platform, or it is gone).
pub(crate) async fn session_tenant(state: &AppState, session: &SessionRow) -> Option<TenantRow> {
    let id = session.tenant_id.as_deref()?;
    state.store.tenant_by_id(id).await.ok().flatten()
}

/// The password rules for an account: the defaults, with the longest minimum of its tenants.
pub(crate) async fn password_policy(state: &AppState, user_id: &str) -> TenantPolicy {
    let mut policy = TenantPolicy::default();
    if let Ok(ts) = state.store.tenants_of_user(user_id).await {
        for t in &ts {
            policy.password_min_length = policy
                .password_min_length
                .max(tenants::policy_of(t).password_min_length);
        }
    }
    policy
}

/// `GET /account`.
pub async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    overview_page(&state, &headers, &session, &user, None).await
}

pub(crate) async fn overview_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionRow,
    user: &UserRow,
    message: Option<(&str, bool)>,
) -> Response {
    // Confirmed here: by mail, or by the own provider of the tenant this session is for.
    let verified = match state.store.email_proof(&user.id).await {
        Ok(p) => p
            .filter(|p| p.counts_for(session.tenant_id.as_deref()))
            .map(|p| p.at),
        Err(e) => return unavailable(&e),
    };
    let tenant = session_tenant(state, session).await;
    let t = Lang::of(headers);
    let tenant_name = tenant.as_ref().map_or_else(
        || t.get("account.the_platform").to_owned(),
        |t| t.name.clone(),
    );
    let issuer = &state.config.issuer;
    let nav = nav(state, headers, "account");
    let message = notice(message);
    let brand = tenant.as_ref().map(Brand::of);
    let title = (t.get("account.title"), brand.as_ref());
    let links = crate::web::federation_account::linked(state, &user.id).await;
    branded_account_page(state, headers, StatusCode::OK, title, |csrf| {
        let address = match verified {
            Some(at) => format!(
                "{} <span class=\"badge ok\">{}</span>",
                escape(&user.email),
                escape(&t.fill(
                    "account.confirmed",
                    &[("date", rfc3339(at).get(..10).unwrap_or_default())]
                ))
            ),
            None => format!(
                "{} <span class=\"badge\">{}</span>\
                 <form method=\"post\" action=\"{}\" class=\"inline\">{}\
                 <button type=\"submit\" class=\"secondary\">{}</button></form>",
                escape(&user.email),
                escape(t.get("account.not_confirmed")),
                escape(&format!("{issuer}account/email/verification")),
                csrf_field(csrf),
                escape(t.get("account.send_confirmation")),
            ),
        };
        let w = |id: &str| escape(t.get(id));
        format!(
            "{nav}<h1>{title}</h1>{message}<dl class=\"facts\">\
             <dt>{email}</dt><dd>{address}</dd><dt>{name_label}</dt><dd>{name}</dd>\
             <dt>{signed_in_to}</dt><dd>{tenant_name}</dd></dl>\
             <h2>{change_title}</h2><p>{change_help}</p>\
             <form method=\"post\" action=\"{change}\">{csrf}\
             <label for=\"email\">{new_email}</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required>\
             <label for=\"current\">{current}</label>\
             <input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">{send}</button></form>\
             {linked}<h2>{data}</h2><p><a href=\"{export}\" download>{export_label}</a></p>\
             <p><a href=\"{delete}\">{delete_label}</a></p>",
            title = w("account.title"),
            email = w("account.email"),
            name_label = w("account.name"),
            signed_in_to = w("account.signed_in_to"),
            tenant_name = escape(&tenant_name),
            change_title = w("account.change_email"),
            change_help = w("account.change_email.help"),
            new_email = w("account.new_email"),
            current = w("account.current_password"),
            send = w("account.send_link"),
            data = w("account.data"),
            export_label = w("account.export"),
            delete_label = w("account.delete"),
            name = escape(&user.name),
            change = escape(&format!("{issuer}account/email")),
            csrf = csrf_field(csrf),
            export = escape(&format!("{issuer}account/export")),
            linked = crate::web::federation_account::section(state, &links, csrf),
            delete = escape(&format!("{issuer}account/delete")),
        )
    })
}

/// `POST /account/email` with `email` and `current`: a link to the new address, which moves
/// the account there once opened. The answer is the same whether or not another account has
/// the address (then nothing is sent).
pub async fn change_email(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let refuse = |m: &'static str| (m, true);
    let email = form.get("email").unwrap_or("").trim().to_lowercase();
    let message = match reauthenticate(&state, &user, form.get("current").unwrap_or("")).await {
        Err(r) => return r,
        Ok(Some((m, _))) => refuse(m),
        Ok(None) if !tenants::valid_email(&email) => refuse("Enter a valid email address."),
        Ok(None) if email == user.email => refuse("This is your address already."),
        Ok(None) => {
            let taken = match state.store.user_by_email(&email).await {
                Ok(u) => u.is_some(),
                Err(e) => return unavailable(&e),
            };
            let tenant = session_tenant(&state, &session).await;
            if !taken
                && let Err(e) = state
                    .mailer()
                    .send_link_to(crate::account::EMAIL_CHANGE, &user, &email, tenant.as_ref())
                    .await
            {
                return unavailable(&e);
            }
            let details = serde_json::json!({"action": "email.change_requested", "user": user.id});
            record(
                &state,
                &headers,
                tenant.as_ref().map(|t| t.id.as_str()),
                &user,
                "success",
                details,
            )
            .await;
            (
                "A link is on its way to the new address: open it to move your account there.",
                false,
            )
        }
    };
    overview_page(&state, &headers, &session, &user, Some(message)).await
}

/// `GET /account/password`.
pub async fn password_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, _)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    let brand = session_tenant(&state, &session)
        .await
        .map(|t| Brand::of(&t));
    password_page(&state, &headers, brand.as_ref(), None, StatusCode::OK)
}

fn password_page(
    state: &AppState,
    headers: &HeaderMap,
    brand: Option<&Brand>,
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let action = format!("{}account/password", state.config.issuer);
    let nav = nav(state, headers, "account/password");
    let message = notice(message);
    let t = Lang::of(headers);
    let title = (t.get("password.title"), brand);
    branded_account_page(state, headers, status, title, |csrf| {
        let w = |id: &str| escape(t.get(id));
        format!(
            "{nav}<h1>{title}</h1>{message}<p>{help}</p>\
             <form method=\"post\" action=\"{action}\">{csrf}\
             <label for=\"current\">{current}</label>\
             <input id=\"current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>\
             <label for=\"password\">{new}</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
             <label for=\"confirm\">{again}</label>\
             <input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">{submit}</button></form>",
            title = w("password.title"),
            help = w("password.help"),
            current = w("account.current_password"),
            new = w("password.new"),
            again = w("password.again"),
            submit = w("password.submit"),
            action = escape(&action),
            csrf = csrf_field(csrf),
        )
    })
}

/// Checks the current password again, counting wrong ones against `p:<user id>`: `None` when
/// it is right, else the page's message and status.
pub(crate) async fn reauthenticate(
    state: &AppState,
    user: &UserRow,
    password: &str,
) -> Result<Option<(&'static str, StatusCode)>, Response> {
    let key = format!("p:{}", user.id);
    match state.store.locked_until(&[&key], now_ms()).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Ok(Some((
                "Too many wrong passwords. Wait a few minutes and retry.",
                StatusCode::TOO_MANY_REQUESTS,
            )));
        }
        Err(e) => return Err(unavailable(&e)),
    }
    if state
        .passwords
        .verify(password, Some(&user.password_hash))
        .await
    {
        return Ok(None);
    }
    let threshold = i64::from(state.config.login_lockout_threshold);
    let lock_ms = i64::try_from(state.config.login_lockout_ms).unwrap_or(i64::MAX / 2);
    if let Err(e) = state
        .store
        .record_login_failure(&key, now_ms(), threshold, lock_ms)
        .await
    {
        tracing::warn!(error = %e, "recording a wrong password failed");
    }
    Ok(Some((
        "The current password is wrong.",
        StatusCode::UNAUTHORIZED,
    )))
}

/// Records a change the user made to their own account (`user.change`).
pub(crate) async fn record(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: Option<&str>,
    user: &UserRow,
    outcome: &str,
    details: serde_json::Value,
) {
    record_event(
        state,
        headers,
        tenant_id,
        user,
        USER_CHANGE,
        outcome,
        details,
    )
    .await;
}

/// Records a security event of `kind` whose actor is the signed-in user.
pub(crate) async fn record_event(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: Option<&str>,
    user: &UserRow,
    kind: &str,
    outcome: &str,
    details: serde_json::Value,
) {
    let event = Event {
        tenant_id,
        kind,
        actor: format!("user:{}", user.id),
        outcome,
        details,
    };
    events::record(&state.events, &Meta::from_headers(headers), event).await;
}

/// `POST /account/password` with `current`, `password` and `confirm`.
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let tenant = session_tenant(&state, &session).await;
    let brand = tenant.as_ref().map(Brand::of);
    let refuse =
        |m: &str, status| password_page(&state, &headers, brand.as_ref(), Some((m, true)), status);
    let tid = tenant.as_ref().map(|t| t.id.as_str());
    match reauthenticate(&state, &user, form.get("current").unwrap_or("")).await {
        Err(r) => return r,
        Ok(Some((m, status))) => {
            record(
                &state,
                &headers,
                tid,
                &user,
                "failure",
                serde_json::json!({"action": "password.change", "reason": "reauthentication"}),
            )
            .await;
            return refuse(m, status);
        }
        Ok(None) => {}
    }
    let new = form.get("password").unwrap_or("");
    if form.get("confirm") != Some(new) {
        return refuse("The new passwords differ.", StatusCode::BAD_REQUEST);
    }
    let policy = password_policy(&state, &user.id).await;
    let problems = tenants::password_problems(new, &user.email, &user.name, &policy);
    if !problems.is_empty() {
        return refuse(&problems.join("; "), StatusCode::BAD_REQUEST);
    }
    let hash = match state.passwords.hash(new).await {
        Ok(h) => h,
        Err(e) => return unavailable(&e),
    };
    match state
        .store
        .set_password(&user.id, &hash, Some(&session.id), now_ms())
        .await
    {
        Ok(true) => {}
        Ok(false) => return not_signed_in(),
        Err(e) => return unavailable(&e),
    }
    record(
        &state,
        &headers,
        tid,
        &user,
        "success",
        serde_json::json!({"action": "password.change", "user": user.id}),
    )
    .await;
    tracing::info!(user_id = %user.id, "password changed by its owner");
    if let Err(e) = state
        .mailer()
        .password_changed(&user, tenant.as_ref())
        .await
    {
        tracing::warn!(error = %format!("{e:#}"), "queueing the password-changed notice failed");
    }
    password_page(
        &state,
        &headers,
        brand.as_ref(),
        Some((
            "Your password was changed. Every other session was signed out.",
            false,
        )),
        StatusCode::OK,
    )
}
