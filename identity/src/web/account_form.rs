//! The extractor of the account pages' forms: a form with a matching CSRF token, sent by a
//! signed-in user whose account is enabled. Anything else is answered with the page saying why
//! (413, 400, 403 for a stale or foreign form, 401 when not signed in).

use axum::extract::{FromRequest, Request};
use axum::response::Response;

use crate::AppState;
use crate::oauth::params::Params;
use crate::store::users::{SessionRow, UserRow};
use crate::web::authorize::current_session;
use crate::web::page::{FORM_EXPIRED, not_signed_in, read_csrf_form};

pub struct AccountForm {
    pub form: Params,
    pub session: SessionRow,
    pub user: UserRow,
}

impl FromRequest<AppState> for AccountForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let form = read_csrf_form(&parts.headers, body, FORM_EXPIRED).await?;
        let (session, user) = current_session(state, &parts.headers)
            .await
            .ok_or_else(not_signed_in)?;
        Ok(Self {
            form,
            session,
            user,
        })
    }
}
