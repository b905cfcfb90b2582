//! The device cookie of a sign-in ([`crate::devices`] has the rule): kept or given, and the
//! browser remembered for the account after the answer.

use axum::http::{HeaderMap, header};
use axum::response::Response;

use crate::AppState;
use crate::crypto;
use crate::devices::{self, DEVICE_LIFETIME_SECS};
use crate::store::users::UserRow;
use crate::web::page::{cookie_value, set_cookie};

pub const DEVICE_COOKIE: &str = "tansu_device";

/// After a sign-in of `user` (into `tenant_id`): renews the browser's device cookie (or gives
/// it one) on `response`, and in the background remembers the browser for the account and
/// queues the new-sign-in notice when the rule says so.
pub(crate) fn after_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRow,
    tenant_id: Option<String>,
    response: &mut Response,
) {
    let device = match cookie_value(headers, DEVICE_COOKIE).filter(|v| devices::well_formed(v)) {
        Some(v) => v.to_owned(),
        None => match crypto::random_secret() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "no device cookie for a sign-in");
                return;
            }
        },
    };
    if let Some(c) = set_cookie(state, DEVICE_COOKIE, &device, "Lax", DEVICE_LIFETIME_SECS) {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let about = devices::describe(user_agent, &crate::http::meta::client_ip(headers));
    let (state, user) = (state.clone(), user.clone());
    tokio::spawn(async move {
        let tenant = match tenant_id {
            Some(t) => state.store.tenant_by_id(&t).await.ok().flatten(),
            None => None,
        };
        let mailer = state.mailer();
        if let Err(e) = devices::signed_in(&mailer, &user, tenant.as_ref(), &device, &about).await {
            tracing::warn!(error = %format!("{e:#}"), "remembering a sign-in's browser failed");
        }
    });
}
