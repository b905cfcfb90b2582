//! The signed-in user's sessions and the apps they granted access (`GET /account/sessions`),
//! each with its own "sign out" (`POST /account/sessions`) or "revoke" (`POST
//! /account/clients`).
//!
//! Security decisions:
//! - Only the user's own rows are listed and acted on: a session or client id from the form
//!   is looked up among the user's, so another account's cannot be named.
//! - Signing a session out ends it and revokes the refresh-token families issued in it;
//!   revoking an app deletes the consent and revokes every family of the user at it — in one
//!   transaction each. Both are security events.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::AppState;
use crate::clients::rfc3339;
use crate::store::now_ms;
use crate::store::users::{SessionRow, UserRow};
use crate::web::account::{csrf_field, nav, notice, record, session_tenant};
use crate::web::account_form::AccountForm;
use crate::web::authorize::current_session;
use crate::web::page::{Brand, branded_account_page, not_signed_in, unavailable};
use crate::web::page::{SESSION_COOKIE, escape, set_cookie};

/// `GET /account/sessions`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((session, user)) = current_session(&state, &headers).await else {
        return not_signed_in();
    };
    page(&state, &headers, &session, &user, None).await
}

/// A time as people read it: `2026-12-06 12:50 UTC`.
fn when(ms: i64) -> String {
    let t = rfc3339(ms);
    format!("{} UTC", t.get(..16).unwrap_or(&t).replace('T', " "))
}

fn method_names(amr: &str) -> String {
    let names: Vec<&str> = amr
        .split([' ', ','])
        .filter(|m| !m.is_empty())
        .map(|m| match m {
            "pwd" => "password",
            "otp" => "authenticator code",
            "mfa" => "two-step",
            other => other,
        })
        .collect();
    names.join(", ")
}

async fn page(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionRow,
    user: &UserRow,
    message: Option<(&str, bool)>,
) -> Response {
    let now = now_ms();
    let (sessions, clients) = match (
        state.store.sessions_of_user(&user.id, now).await,
        state.store.granted_clients(&user.id, now).await,
    ) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => return unavailable(&e),
    };
    let mut session_rows = String::new();
    for s in &sessions {
        let tenant = match &s.tenant_id {
            Some(t) => match state.store.tenant_by_id(t).await {
                Ok(Some(t)) => escape(&t.name),
                Ok(None) => "a removed tenant".into(),
                Err(e) => return unavailable(&e),
            },
            None => "the platform".into(),
        };
        let current = if s.id == session.id {
            " <span class=\"badge ok\">this browser</span>"
        } else {
            ""
        };
        session_rows.push_str(&format!(
            "<tr><td>{since}{current}</td><td>{tenant}</td><td>{methods}</td><td>{until}</td>\
             <td><form method=\"post\" action=\"{action}\">{{csrf}}\
             <input type=\"hidden\" name=\"session\" value=\"{id}\">\
             <button type=\"submit\" class=\"secondary\" aria-label=\"Sign out the session of {since}\">Sign out</button></form></td></tr>",
            since = escape(&when(s.auth_time)),
            methods = escape(&method_names(&s.amr)),
            until = escape(&when(s.expires_at)),
            action = escape(&format!("{}account/sessions", state.config.issuer)),
            id = escape(&s.id),
        ));
    }
    let mut client_rows = String::new();
    for c in &clients {
        let scopes = if c.scopes.is_empty() {
            "—".to_owned()
        } else {
            escape(&c.scopes)
        };
        client_rows.push_str(&format!(
            "<tr><td>{name}</td><td>{scopes}</td><td>{live}</td>\
             <td><form method=\"post\" action=\"{action}\">{{csrf}}\
             <input type=\"hidden\" name=\"client\" value=\"{id}\">\
             <button type=\"submit\" class=\"secondary\" aria-label=\"Revoke the access of {name}\">Revoke</button></form></td></tr>",
            name = escape(&c.name),
            live = c.live_grants,
            action = escape(&format!("{}account/clients", state.config.issuer)),
            id = escape(&c.client_id),
        ));
    }
    let sessions_table = format!(
        "<table><caption>Signed-in sessions</caption><thead><tr><th scope=\"col\">Signed in</th>\
         <th scope=\"col\">For</th><th scope=\"col\">With</th><th scope=\"col\">Ends</th>\
         <th scope=\"col\"><span class=\"visually-hidden\">Action</span></th></tr></thead>\
         <tbody>{session_rows}</tbody></table>"
    );
    let clients_table = if client_rows.is_empty() {
        "<p>No app holds access to your account.</p>".to_owned()
    } else {
        format!(
            "<table><caption>Apps with access</caption><thead><tr><th scope=\"col\">App</th>\
             <th scope=\"col\">Granted scopes</th><th scope=\"col\">Live grants</th>\
             <th scope=\"col\"><span class=\"visually-hidden\">Action</span></th></tr></thead>\
             <tbody>{client_rows}</tbody></table>"
        )
    };
    let nav = nav(state, headers, "account/sessions");
    let message = notice(message);
    let brand = session_tenant(state, session).await.map(|t| Brand::of(&t));
    branded_account_page(
        state,
        headers,
        StatusCode::OK,
        ("Sessions and apps", brand.as_ref()),
        |csrf| {
            format!(
                "{nav}<h1>Sessions and apps</h1>{message}<h2>Sessions</h2>\
             <div class=\"scroll\">{}</div><h2>Apps</h2><div class=\"scroll\">{}</div>",
                sessions_table.replace("{csrf}", &csrf_field(csrf)),
                clients_table.replace("{csrf}", &csrf_field(csrf)),
            )
        },
    )
}

/// `POST /account/sessions` with `session`: signs that session of the user out.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let id = form.get("session").unwrap_or("");
    let now = now_ms();
    let target = match state.store.sessions_of_user(&user.id, now).await {
        Ok(list) => list.into_iter().find(|s| s.id == id),
        Err(e) => return unavailable(&e),
    };
    let Some(target) = target else {
        let m = "That session has already ended.";
        return page(&state, &headers, &session, &user, Some((m, true))).await;
    };
    if let Err(e) = state.store.revoke_session(&target.id, now).await {
        return unavailable(&e);
    }
    let tenant = session_tenant(&state, &session).await;
    let details = serde_json::json!({"action": "session.sign_out", "session": target.id});
    record(
        &state,
        &headers,
        tenant.as_ref().map(|t| t.id.as_str()),
        &user,
        "success",
        details,
    )
    .await;
    if target.id == session.id {
        let mut r = crate::web::page::html(
            StatusCode::OK,
            &crate::web::page::page(
                "Signed out",
                "<h1>Signed out</h1><p>This browser is signed out.</p>",
            ),
        );
        if let Some(c) = set_cookie(&state, SESSION_COOKIE, "", "Lax", 0) {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        return r;
    }
    page(
        &state,
        &headers,
        &session,
        &user,
        Some(("The session was signed out.", false)),
    )
    .await
}

/// `POST /account/clients` with `client`: takes back the access the user granted that app.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm {
        form,
        session,
        user,
    }: AccountForm,
) -> Response {
    let id = form.get("client").unwrap_or("");
    let now = now_ms();
    let known = match state.store.granted_clients(&user.id, now).await {
        Ok(list) => list.into_iter().any(|c| c.client_id == id),
        Err(e) => return unavailable(&e),
    };
    if !known {
        let m = "That app holds no access to your account.";
        return page(&state, &headers, &session, &user, Some((m, true))).await;
    }
    if let Err(e) = state.store.revoke_client_grant(&user.id, id, now).await {
        return unavailable(&e);
    }
    let tenant = session_tenant(&state, &session).await;
    let details = serde_json::json!({"action": "client.revoke", "client": id});
    record(
        &state,
        &headers,
        tenant.as_ref().map(|t| t.id.as_str()),
        &user,
        "success",
        details,
    )
    .await;
    page(
        &state,
        &headers,
        &session,
        &user,
        Some(("The app's access was revoked.", false)),
    )
    .await
}
