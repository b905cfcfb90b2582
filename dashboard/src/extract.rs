//! The extractors that say in a handler's signature who may call it:
//!
//! - [`AdminSession`]: a signed-in `Owner` or `Admin` (else sign-in, or the "no access" page);
//! - [`PlatformAdmin`]: the same, of the platform (a tenant admin gets the 403 page);
//! - [`CsrfForm<T, W>`]: a form POST whose `csrf` field matches the session's token (else
//!   403, before anything else is looked at), by a `W` (an [`AdminSession`] or a
//!   [`PlatformAdmin`]), with its fields parsed as `T`;
//! - [`CsrfSession`]: a CSRF-checked POST of any signed-in user (sign-out, which the "no
//!   access" page offers too).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::PageError;
use crate::frame::section_of;
use crate::http::read_cookie;
use crate::page::{AdminSession, PlatformAdmin};
use crate::session::{SESSION_COOKIE, Session, same};

/// Where sign-in returns to: the page asked for, or its section's page when the path names an
/// item (`/users/{uid}/status`) or a download.
fn return_to(parts: &Parts) -> String {
    let path = parts.uri.path();
    let item = parts
        .extensions
        .get::<MatchedPath>()
        .is_none_or(|m| m.as_str().contains('{'))
        || path.contains('.');
    if item {
        format!("/{}", section_of(path))
    } else {
        path.to_owned()
    }
}

fn admin_of(
    state: &AppState,
    session: Option<Session>,
    return_to: &str,
) -> Result<AdminSession, PageError> {
    match session {
        None => Err(PageError::sign_in(state, return_to)),
        Some(s) if !s.is_admin() => Err(PageError::no_access(state, &s)),
        Some(s) => Ok(AdminSession {
            state: state.clone(),
            session: s,
        }),
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let session = match read_cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) => state.sessions.get(&id).await,
            None => None,
        };
        admin_of(state, session, &return_to(parts))
    }
}

/// Who a form or page is for, given a signed-in admin and the section of the request.
pub trait FromAdmin: Sized {
    fn from_admin(admin: AdminSession, section: &'static str) -> Result<Self, PageError>;
}

impl FromAdmin for AdminSession {
    fn from_admin(admin: AdminSession, _: &'static str) -> Result<Self, PageError> {
        Ok(admin)
    }
}

impl FromAdmin for PlatformAdmin {
    fn from_admin(admin: AdminSession, section: &'static str) -> Result<Self, PageError> {
        if admin.is_platform() {
            Ok(PlatformAdmin(admin))
        } else {
            Err(PageError::platform_only(&admin, section))
        }
    }
}

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let admin = AdminSession::from_request_parts(parts, state).await?;
        PlatformAdmin::from_admin(admin, section_of(parts.uri.path()))
    }
}

/// The session of a form whose `csrf` field is the session's token: its id and the session.
async fn csrf_checked(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(String, Session), PageError> {
    let fields: HashMap<String, String> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let id = read_cookie(headers, SESSION_COOKIE);
    let session = match id.as_deref() {
        Some(id) => state.sessions.get(id).await,
        None => None,
    };
    match (id, session, fields.get("csrf")) {
        (Some(id), Some(s), Some(token)) if same(token, &s.csrf) => Ok((id, s)),
        _ => Err(PageError::csrf(state)),
    }
}

/// A CSRF-checked POST of a signed-in user, admin or not.
pub struct CsrfSession {
    pub id: String,
    pub session: Session,
}

impl FromRequest<AppState> for CsrfSession {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::csrf(state))?;
        let (id, session) = csrf_checked(state, &headers, &body).await?;
        Ok(Self { id, session })
    }
}

/// A CSRF-checked form of a `W` (an admin, or a platform admin), its fields parsed as `T`.
pub struct CsrfForm<T, W = AdminSession> {
    pub admin: W,
    pub fields: T,
}

impl<T: DeserializeOwned, W: FromAdmin> FromRequest<AppState> for CsrfForm<T, W> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let headers = req.headers().clone();
        let section = section_of(req.uri().path());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::csrf(state))?;
        let (_, session) = csrf_checked(state, &headers, &body).await?;
        let admin = admin_of(state, Some(session), "/")?;
        let who = W::from_admin(admin.clone(), section)?;
        match serde_urlencoded::from_bytes::<T>(&body) {
            Ok(fields) => Ok(Self { admin: who, fields }),
            Err(e) => Err(PageError::framed(
                &admin,
                section,
                "Invalid form",
                crate::frame::notice("error", format!("The form is invalid: {e}")),
                StatusCode::BAD_REQUEST,
            )),
        }
    }
}
