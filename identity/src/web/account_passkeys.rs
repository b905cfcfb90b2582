//! The account's passkeys (`GET /account/passkeys`): register one (`POST
//! /account/passkeys/options`, then `POST /account/passkeys`), rename one (`POST
//! /account/passkeys/rename`) or remove one (`POST /account/passkeys/remove`).
//!
//! Security decisions:
//! - Every form needs the browser session and is CSRF-checked ([`AccountForm`]); a passkey
//!   named in a form is looked up among the signed-in user's own, in the session's tenant.
//! - A passkey is registered for the tenant the session signed in for (none: the platform
//!   identity) and signs in there only ([`crate::passkeys`]).
//! - A registration needs the current password again (a stolen session alone cannot add a
//!   way in); wrong ones count against `p:<user id>` as on the other account forms. The
//!   ceremony is bound to the session.
//! - A first passkey of a user without recovery codes comes with a set, shown once (as a TOTP
//!   enrolment does): they stand in for a lost passkey at the second step.
//! - Every change is a security event (`passkey.change`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::AppState;
use crate::clients::rfc3339;
use crate::events;
use crate::passkeys::{self, Verified};
use crate::store::users::{SessionRow, UserRow};
use crate::web::account::{csrf_field, nav, notice, reauthenticate, session_tenant};
use crate::web::account_form::AccountForm;
use crate::web::authorize::current_session;
use crate::web::page::{Brand, branded_account_page, escape, not_signed_in, unavailable};

/// `GET /account/passkeys`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    page(&state, &headers, &session, &user, None, StatusCode::OK).await
}

async fn page(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionRow,
    user: &UserRow,
    message: Option<(&str, bool)>,
    status: StatusCode,
) -> Response {
    let rows = match state
        .store
        .passkeys_of(&user.id, session.tenant_id.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let tenant = session_tenant(state, session).await;
    let brand = tenant.as_ref().map(Brand::of);
    let issuer = &state.config.issuer;
    let nav = nav(state, headers, "account/passkeys");
    let message = notice(message);
    let mut response = branded_account_page(
        state,
        headers,
        status,
        ("Passkeys", brand.as_ref()),
        |csrf| {
            let items: String = rows
                .iter()
                .map(|p| {
                    let used = p.last_used_at.map_or_else(
                        || "never".to_owned(),
                        |t| rfc3339(t).get(..10).unwrap_or_default().to_owned(),
                    );
                    let synced = if p.backup_state { " · synced" } else { "" };
                    format!(
                        "<tr><td>{name}</td><td>{created}</td><td>{used}{synced}</td><td>\
                         <form method=\"post\" action=\"{rename}\" class=\"inline\">{csrf}\
                         <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                         <label class=\"visually-hidden\" for=\"name-{id}\">New name</label>\
                         <input id=\"name-{id}\" name=\"name\" value=\"{name}\" required maxlength=\"60\">\
                         <button type=\"submit\" class=\"secondary\">Rename</button></form> \
                         <form method=\"post\" action=\"{remove}\" class=\"inline\">{csrf}\
                         <input type=\"hidden\" name=\"id\" value=\"{id}\">\
                         <button type=\"submit\" class=\"secondary\">Remove</button></form></td></tr>",
                        name = escape(&p.name),
                        id = escape(&p.id),
                        created = escape(rfc3339(p.created_at).get(..10).unwrap_or_default()),
                        used = escape(&used),
                        rename = escape(&format!("{issuer}account/passkeys/rename")),
                        remove = escape(&format!("{issuer}account/passkeys/remove")),
                        csrf = csrf_field(csrf),
                    )
                })
                .collect();
            let table = if rows.is_empty() {
                "<p>You have no passkeys yet.</p>".to_owned()
            } else {
                format!(
                    "<table><thead><tr><th>Name</th><th>Added</th><th>Last used</th>\
                     <th>Actions</th></tr></thead><tbody>{items}</tbody></table>"
                )
            };
            let fields = format!(
                "{csrf}<label for=\"passkey-name\">Name</label>\
                 <input id=\"passkey-name\" name=\"name\" maxlength=\"60\" placeholder=\"This device\">\
                 <label for=\"passkey-current\">Current password</label>\
                 <input id=\"passkey-current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>",
                csrf = csrf_field(csrf),
            );
            let add = if state.passkeys.available() {
                let target = ("register", "account/passkeys", "account/passkeys/options");
                crate::web::passkeys::ceremony_form(state, target, &fields, "Add a passkey")
            } else {
                "<p>Passkeys are unavailable on this server.</p>".to_owned()
            };
            format!(
                "{nav}<h1>Passkeys</h1>{message}<p>A passkey signs you in with this device's \
                 screen lock or a security key, without a password.</p>{table}\
                 <h2>Add a passkey</h2>{add}"
            )
        },
    );
    crate::web::passkeys::allow_script(state, &mut response);
    response
}

async fn record(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionRow,
    user: &UserRow,
    outcome: &str,
    details: serde_json::Value,
) {
    let tenant = session.tenant_id.as_deref();
    let kind = events::PASSKEY_CHANGE;
    crate::web::account::record_event(state, headers, tenant, user, kind, outcome, details).await;
}

/// `POST /account/passkeys/options`: the options of a registration (JSON: `publicKey` and
/// its `ceremony` token), bound to this session.
pub async fn options(
    State(state): State<AppState>,
    AccountForm { session, user, .. }: AccountForm,
) -> Response {
    let started = passkeys::begin_registration(
        &state.store,
        &state.passkeys,
        (&user.id, &user.email, &user.name),
        session.tenant_id.as_deref(),
        &session.token_hash,
    )
    .await;
    crate::web::passkeys::options_answer(started)
}

/// `POST /account/passkeys` with `current`, `name`, `ceremony` and `credential`: registers
/// the passkey.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let show = |m: &'static str, error: bool, status: StatusCode| {
        let (state, headers, session, user) = (&state, &headers, &session, &user);
        async move { page(state, headers, session, user, Some((m, error)), status).await }
    };
    match reauthenticate(&state, &user, form.get("current").unwrap_or("")).await {
        Err(r) => return r,
        Ok(Some((m, status))) => {
            let details = serde_json::json!({"action": "register", "reason": "reauthentication"});
            record(&state, &headers, &session, &user, "failure", details).await;
            return show(m, true, status).await;
        }
        Ok(None) => {}
    }
    let verified = passkeys::finish_registration(
        &state.store,
        &state.passkeys,
        (form.get("ceremony").unwrap_or(""), &session.token_hash),
        (&user.id, session.tenant_id.as_deref()),
        form.get("credential").unwrap_or(""),
        form.get("name").unwrap_or(""),
    )
    .await;
    let reason = match verified {
        Ok(Verified::Registered(row)) => {
            let details = serde_json::json!({"action": "register", "passkey": row.id});
            record(&state, &headers, &session, &user, "success", details).await;
            tracing::info!(user_id = %user.id, passkey = %row.id, "passkey registered");
            // A first second factor comes with recovery codes, as a TOTP enrolment does.
            let codes = match crate::mfa::recovery_codes_if_none(&state.store, &user.id).await {
                Ok(c) => c,
                Err(e) => return unavailable(&format!("{e:#}")),
            };
            let Some(codes) = codes else {
                return show("The passkey was added.", false, StatusCode::OK).await;
            };
            let title = ("Passkeys", None);
            return branded_account_page(&state, &headers, StatusCode::OK, title, |_| {
                format!(
                    "{}<h1>Passkeys</h1>{}{}<p><a href=\"{}\">Back to your passkeys</a></p>",
                    nav(&state, &headers, "account/passkeys"),
                    notice(Some(("The passkey was added.", false))),
                    crate::web::steps::recovery_html(&codes),
                    escape(&format!("{}account/passkeys", state.config.issuer)),
                )
            });
        }
        Ok(Verified::Duplicate) => "duplicate",
        Ok(Verified::Expired) => "expired",
        Ok(_) => "invalid",
        Err(e) => return unavailable(&format!("{e:#}")),
    };
    let details = serde_json::json!({"action": "register", "reason": reason});
    record(&state, &headers, &session, &user, "failure", details).await;
    let message = match reason {
        "duplicate" => "This passkey is registered already.",
        "expired" => "The request expired. Try again.",
        _ => "The passkey could not be added. Try again.",
    };
    show(message, true, StatusCode::BAD_REQUEST).await
}

/// `POST /account/passkeys/rename` with `id` and `name`.
pub async fn rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let id = form.get("id").unwrap_or("");
    let name = passkeys::clean_name(form.get("name").unwrap_or(""));
    let tenant = session.tenant_id.as_deref();
    let (message, status) = match state
        .store
        .rename_passkey(id, &user.id, tenant, &name)
        .await
    {
        Ok(true) => {
            let details = serde_json::json!({"action": "rename", "passkey": id});
            record(&state, &headers, &session, &user, "success", details).await;
            (("The passkey was renamed.", false), StatusCode::OK)
        }
        Ok(false) => (("No such passkey.", true), StatusCode::NOT_FOUND),
        Err(e) => return unavailable(&e),
    };
    page(&state, &headers, &session, &user, Some(message), status).await
}

/// `POST /account/passkeys/remove` with `id`.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let id = form.get("id").unwrap_or("");
    let tenant = session.tenant_id.as_deref();
    let (message, status) = match state.store.delete_passkey(id, &user.id, tenant).await {
        Ok(true) => {
            let details = serde_json::json!({"action": "remove", "passkey": id});
            record(&state, &headers, &session, &user, "success", details).await;
            tracing::info!(user_id = %user.id, passkey = %id, "passkey removed");
            (("The passkey was removed.", false), StatusCode::OK)
        }
        Ok(false) => (("No such passkey.", true), StatusCode::NOT_FOUND),
        Err(e) => return unavailable(&e),
    };
    page(&state, &headers, &session, &user, Some(message), status).await
}
