//! [`AdminSession`]: the signed-in administrator a page is drawn for, with what every page
//! needs — the frame, the URLs and identity's admin API called with the admin's own token.
//! Handlers receive it from its extractor (in `extract.rs`), which has already checked the
//! session and the admin role.

use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::AnyView;

use crate::AppState;
use crate::api::Identity;
pub use crate::frame::Section;
use crate::frame::{self, Frame};
use crate::http::html;
use crate::session::Session;

/// A signed-in administrator (role `Owner` or `Admin`): of the platform (`tenant` is none) or
/// of one tenant.
#[derive(Clone)]
pub struct AdminSession {
    pub state: AppState,
    pub session: Session,
}

/// A signed-in platform administrator (the platform-only pages: tenants, clients, keys).
#[derive(Clone)]
pub struct PlatformAdmin(pub AdminSession);

impl std::ops::Deref for PlatformAdmin {
    type Target = AdminSession;

    fn deref(&self) -> &AdminSession {
        &self.0
    }
}

impl AdminSession {
    /// Identity's admin API with this admin's access token.
    pub fn identity(&self) -> Identity<'_> {
        Identity::new(&self.state, &self.session.access_token)
    }

    /// The tenant of a tenant admin; `None` for platform admins.
    pub fn own_tenant(&self) -> Option<&str> {
        self.session.tenant.as_deref()
    }

    pub fn is_platform(&self) -> bool {
        self.session.tenant.is_none()
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// The public base URL (ends with `/`).
    pub fn base(&self) -> &str {
        self.state.base()
    }

    /// A public URL of a service-relative path.
    pub fn url(&self, path: &str) -> String {
        self.state.url(path)
    }

    /// A page in the frame (200).
    pub fn render(&self, active: &str, title: &str, content: AnyView) -> Response {
        self.render_with(active, title, content, StatusCode::OK, None)
    }

    /// A page in the frame with `status`; with `refresh`, reloading itself after that many
    /// seconds (a long operation's progress while it runs).
    pub fn render_with(
        &self,
        active: &str,
        title: &str,
        content: AnyView,
        status: StatusCode,
        refresh: Option<u64>,
    ) -> Response {
        let s = &self.session;
        let who = if s.email.is_empty() {
            &s.name
        } else {
            &s.email
        };
        let frame = Frame {
            base: self.base(),
            active,
            user: format!(
                "{who} · {}",
                s.tenant.as_deref().map_or("platform", |_| "tenant admin")
            ),
            csrf: &s.csrf,
            platform: s.tenant.is_none(),
            refresh,
        };
        html(status, frame::page(&frame, title, content))
    }
}
