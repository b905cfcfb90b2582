//! [`PageError`]: every way a page or a form ends early, answered once in [`IntoResponse`]:
//! sign in first, no access, a refused CSRF token, a confirmation to ask first, or an error
//! page in the frame (not found, platform only, an invalid request, identity's refusal).
//! Handlers return `Result<Response, PageError>` and use `?`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leptos::prelude::AnyView;

use crate::AppState;
use crate::api::ApiError;
use crate::frame::{self, notice};
use crate::http::{html, redirect};
use crate::page::{AdminSession, Section};
use crate::session::Session;
use crate::widgets::Sorts;

pub enum PageError {
    /// `303` elsewhere: sign-in, or a destructive action's confirmation page.
    Redirect(String),
    /// `403`: signed in without the `Owner` or `Admin` role (the page offers sign-out).
    NoAccess {
        base: String,
        csrf: String,
        email: String,
    },
    /// `403`: a form without the session's CSRF token (or without a session).
    Csrf { base: String },
    /// A page outside the frame (sign-in failures).
    Bare {
        status: StatusCode,
        base: String,
        message: String,
    },
    /// An error page in the frame.
    Framed(Box<Framed>),
}

pub struct Framed {
    admin: AdminSession,
    active: String,
    title: String,
    content: AnyView,
    status: StatusCode,
}

impl PageError {
    /// Not signed in: to sign-in, then back to `return_to` (a service-relative path).
    pub fn sign_in(state: &AppState, return_to: &str) -> Self {
        let q = serde_urlencoded::to_string([("return_to", crate::http::safe_return(return_to))])
            .unwrap_or_default();
        Self::Redirect(format!("{}?{q}", state.url("login")))
    }

    pub fn no_access(state: &AppState, s: &Session) -> Self {
        Self::NoAccess {
            base: state.base().to_owned(),
            csrf: s.csrf.clone(),
            email: s.email.clone(),
        }
    }

    pub fn csrf(state: &AppState) -> Self {
        Self::Csrf {
            base: state.base().to_owned(),
        }
    }

    /// An error page of the section `active` in the frame.
    pub fn framed(
        admin: &AdminSession,
        active: &str,
        title: &str,
        content: AnyView,
        status: StatusCode,
    ) -> Self {
        Self::Framed(Box::new(Framed {
            admin: admin.clone(),
            active: active.to_owned(),
            title: title.to_owned(),
            content,
            status,
        }))
    }

    /// `404`: no such tenant or item — also every other tenant's, for a tenant admin, so
    /// nothing about other tenants can be learned.
    pub fn not_found(admin: &AdminSession, active: &str) -> Self {
        Self::framed(
            admin,
            active,
            "Not found",
            notice("error", "There is no such tenant or item.".into()),
            StatusCode::NOT_FOUND,
        )
    }

    /// `403`: a platform page asked for by a tenant admin.
    pub fn platform_only(admin: &AdminSession, active: &str) -> Self {
        Self::framed(
            admin,
            active,
            "Platform administrators only",
            notice(
                "error",
                "This page is for platform administrators: tenants, OAuth clients and signing keys are the platform's. Tenant administrators manage their own tenant from the other pages.".into(),
            ),
            StatusCode::FORBIDDEN,
        )
    }

    /// `400` with a message.
    pub fn invalid(admin: &AdminSession, active: &str, title: &str, message: String) -> Self {
        Self::framed(
            admin,
            active,
            title,
            notice("error", message),
            StatusCode::BAD_REQUEST,
        )
    }

    /// `400`: a list's sort or order outside its allow-list (as identity refuses it).
    pub fn invalid_sort(admin: &AdminSession, sec: Section, allowed: Sorts) -> Self {
        let names: Vec<&str> = allowed.iter().map(|(k, _)| *k).collect();
        Self::invalid(
            admin,
            sec.active,
            "Invalid sort",
            format!("Sort by one of {} (order asc or desc).", names.join(", ")),
        )
    }

    /// An admin API failure on a page: a refused token signs in again; 404 and 403 keep their
    /// meaning; anything else is "identity failed" (502).
    pub fn api(admin: &AdminSession, active: &str, title: &str, e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized => Self::Redirect(admin.url("login")),
            ApiError::Status(404, _) => Self::not_found(admin, active),
            ApiError::Status(403, detail) => Self::framed(
                admin,
                active,
                title,
                notice("error", format!("Not allowed: {detail}")),
                StatusCode::FORBIDDEN,
            ),
            other => {
                tracing::warn!(error = %other, "admin API call failed");
                Self::framed(
                    admin,
                    active,
                    title,
                    notice("error", other.to_string()),
                    StatusCode::BAD_GATEWAY,
                )
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Redirect(to) => redirect(&to),
            PageError::NoAccess { base, csrf, email } => html(
                StatusCode::FORBIDDEN,
                frame::no_access(&base, &csrf, &email),
            ),
            PageError::Csrf { base } => html(
                StatusCode::FORBIDDEN,
                frame::bare(
                    "Request refused",
                    "The form was missing a valid security token (CSRF). Reload the page and try again.",
                    Some((base, "Back to the dashboard")),
                ),
            ),
            PageError::Bare {
                status,
                base,
                message,
            } => html(
                status,
                frame::bare(
                    "Something went wrong",
                    &message,
                    Some((base, "Back to the dashboard")),
                ),
            ),
            PageError::Framed(f) => {
                let Framed {
                    admin,
                    active,
                    title,
                    content,
                    status,
                } = *f;
                admin.render_with(&active, &title, content, status, None)
            }
        }
    }
}
