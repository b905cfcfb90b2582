//! What continues an authorization once the user is known: the consent page when it is
//! needed, else the code, issued in the session (a new session is stored with it).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{AuthRequest, AuthorizeError, client_redirect, error_redirect};
use crate::AppState;
use crate::crypto;
use crate::scopes;
use crate::store::events::EventRow;
use crate::store::grants::CodeRow;
use crate::store::now_ms;
use crate::store::users::{SessionRow, UserRow};
use crate::web::consent::{ask_consent, consent_needed};
use crate::web::page::redirect;

/// The session an authorization continues in.
pub(crate) enum InSession<'a> {
    /// A stored session (a returning user's cookie).
    Stored(&'a SessionRow),
    /// A sign-in's new session, not stored yet: it is stored with the sign-in's security
    /// event (and the code, when one is issued now), both or neither
    /// ([`crate::event_log::EventLog::append_sign_in`]).
    SignedIn(&'a SessionRow, Box<EventRow>),
}

impl InSession<'_> {
    fn session(&self) -> &SessionRow {
        match self {
            Self::Stored(s) | Self::SignedIn(s, _) => s,
        }
    }

    /// Stores a new session with its event and `code`; a stored session stores `code` only.
    pub(crate) async fn store(self, state: &AppState, code: Option<CodeRow>) -> anyhow::Result<()> {
        match (self, code) {
            (Self::Stored(_), None) => Ok(()),
            (Self::Stored(_), Some(code)) => Ok(state.store.insert_code(&code).await?),
            (Self::SignedIn(session, event), code) => {
                let session = session.clone();
                let new = crate::store::grants::NewSession { session, code };
                state.events.append_sign_in(*event, new).await
            }
        }
    }
}

/// The code for `req` in the session, as the redirect to the client.
pub(crate) async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    in_session: InSession<'_>,
    user: &UserRow,
) -> Result<Response, AuthorizeError> {
    let session = in_session.session();
    let code = crypto::random_secret().map_err(|_| {
        AuthorizeError::Page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable right now.",
        )
    })?;
    let now = now_ms();
    let lifetime =
        i64::try_from(state.config.authorization_code_lifetime_secs).unwrap_or(60) * 1000;
    let row = CodeRow {
        code_hash: crypto::sha256(code.as_bytes()),
        client_id: req.client.client_id.clone(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: scopes::for_user(&req.scopes, user.platform_admin).join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge.as_ref().map(|_| "S256".to_owned()),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + lifetime,
        used_at: None,
        issued_family_id: None,
        issued_access_jti: None,
        issued_access_exp: None,
    };
    if let Err(e) = in_session.store(state, Some(row)).await {
        tracing::error!(error = %e, "storing an authorization code failed");
        return Err(error_redirect(
            state,
            &req.redirect_uri,
            req.state.as_deref(),
            "temporarily_unavailable",
            "retry later",
        ));
    }
    Ok(redirect(&client_redirect(
        &state.config.issuer,
        &req.redirect_uri,
        req.state.as_deref(),
        &[("code", &code)],
    )))
}

/// Once the user is known: the consent page when it is needed, else the code.
///
/// Consent is asked for third-party clients (for scopes the user has not granted them yet) and
/// whenever the client sends `prompt=consent`; with `prompt=none` it is `consent_required`.
pub(crate) async fn continue_authorization(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    session: &SessionRow,
    user: &UserRow,
) -> Response {
    continue_in_session(state, headers, req, InSession::Stored(session), user)
        .await
        .unwrap_or_else(|failed| failed)
}

/// [`continue_authorization`] in a session that may be new: a new session is stored with the
/// code, or without one before the consent page. `Err`: the failure's page, and a new session
/// was not stored.
pub(crate) async fn continue_in_session(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    in_session: InSession<'_>,
    user: &UserRow,
) -> Result<Response, Response> {
    let needed = consent_needed(state, req, user)
        .await
        .map_err(IntoResponse::into_response)?;
    if !needed {
        return issue_code(state, req, in_session, user)
            .await
            .map_err(IntoResponse::into_response);
    }
    if let Err(e) = in_session.store(state, None).await {
        return Err(crate::web::page::unavailable(&e));
    }
    Ok(ask_consent(state, headers, req))
}
