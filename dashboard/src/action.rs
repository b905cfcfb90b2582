//! "Confirm, then act": every form action of the dashboard.
//!
//! A destructive action (suspend, disable, revoke, reset, delete, rotate) is asked first: its
//! GET shows a [`Confirm`] page whose form POSTs the same fields with `confirm=yes`; a POST
//! without it is answered with a redirect to that page ([`Confirm::required`]) and does
//! nothing. Then the action is identity's call, and its answer becomes the [`Outcome`] shown
//! above the page the action returns to ([`outcome`]): a success message, or identity's
//! refusal in its own words (422).

use axum::http::StatusCode;
use axum::response::Response;
use leptos::prelude::AnyView;

use crate::api::ApiError;
use crate::error::PageError;
use crate::frame::notice;
use crate::page::{AdminSession, Section};
use crate::widgets::confirm_form;

/// The outcome of a form action, shown above the page it returns to.
pub struct Outcome {
    pub message: Option<AnyView>,
    pub status: StatusCode,
}

impl Outcome {
    pub fn none() -> Self {
        Self {
            message: None,
            status: StatusCode::OK,
        }
    }

    pub fn ok(text: String) -> Self {
        Self::shown(notice("success", text))
    }

    /// A view of the result (a discovery test's answer), 200.
    pub fn shown(view: AnyView) -> Self {
        Self {
            message: Some(view),
            status: StatusCode::OK,
        }
    }

    /// Refused (invalid input, identity's 4xx): the message and 422.
    pub fn refused(text: String) -> Self {
        Self {
            message: Some(notice("error", text)),
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

/// What identity's answer to an action (`what`, e.g. "Creating the tenant") means for the
/// admin: success, a 4xx refusal shown with the page (404 stays a 404 page), or an error page.
pub fn outcome<T>(
    admin: &AdminSession,
    sec: Section,
    what: &str,
    answer: Result<T, ApiError>,
    success: impl FnOnce(&T) -> String,
) -> Result<Outcome, PageError> {
    match answer {
        Ok(v) => Ok(Outcome::ok(success(&v))),
        Err(ApiError::Status(404, _)) => Err(PageError::not_found(admin, sec.active)),
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            Ok(Outcome::refused(format!("{what} failed: {detail}")))
        }
        Err(e) => Err(PageError::api(admin, sec.active, sec.title, e)),
    }
}

/// The form of an action that only needs its confirmation.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Confirmed {
    #[serde(default)]
    pub confirm: String,
}

/// A destructive action's confirmation: the page asking it, and the check of its POST.
pub struct Confirm {
    /// The action's service-relative path (encoded), where the form POSTs.
    pub path: String,
    /// The action's fields (the tenant, `to`, …), carried by the form and by the redirect to
    /// this page.
    pub fields: Vec<(&'static str, String)>,
    pub title: String,
    pub question: String,
    pub button: &'static str,
    /// Where "Cancel" goes (service-relative, with its query).
    pub cancel: String,
}

impl Confirm {
    /// The question page (a GET of the action's path).
    pub fn page(self, admin: &AdminSession, sec: Section) -> Response {
        let content = confirm_form(
            admin.url(&self.path),
            admin.csrf(),
            self.fields,
            self.question,
            self.button,
            admin.url(&self.cancel),
        );
        admin.render(sec.active, &self.title, content)
    }

    /// A POST of the action goes on only with `confirm=yes`; without it, back to the question
    /// (`path` with `fields` as its query), and nothing happens.
    pub fn required(
        admin: &AdminSession,
        confirm: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), PageError> {
        if confirm == "yes" {
            return Ok(());
        }
        let mut url = admin.url(path);
        if !fields.is_empty() {
            url.push('?');
            url.push_str(&serde_urlencoded::to_string(fields).unwrap_or_default());
        }
        Err(PageError::Redirect(url))
    }
}
