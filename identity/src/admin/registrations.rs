//! Registration as JSON: `POST /registrations` (self-service, open when
//! `registration_enabled`, default: dev mode) and `POST /admin/registrations` (platform
//! administrators, always). Both run [`crate::registration::register`]; refusals are
//! problem+json.

use crate::AppState;
use crate::events::Meta;
use crate::http::{Action, Caller};
use crate::registration::{RegistrationInput, register};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::admin_api::Registered;
use zeroize::Zeroizing;

/// A new tenant and its owner.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationBody {
    email: String,
    password: String,
    shop_name: String,
    #[serde(default)]
    slug: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl From<RegistrationBody> for RegistrationInput {
    fn from(b: RegistrationBody) -> Self {
        Self {
            email: b.email,
            password: Zeroizing::new(b.password),
            shop_name: b.shop_name,
            slug: b.slug,
            name: b.name.unwrap_or_default(),
        }
    }
}

pub(crate) async fn json_registration(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    actor: Option<String>,
) -> Result<Response, Problem> {
    // JSON only: a cross-site form cannot send it without a CORS preflight.
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail("send application/json"));
    }
    let b: RegistrationBody = crate::admin::json_body(body).await?;
    let done = register(
        &state.registrar(),
        b.into(),
        &Meta::from_headers(headers),
        actor,
    )
    .await
    .map_err(|e| e.problem())?;
    state.registered(&done).await;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            tenant_id: done.tenant.id,
            slug: done.tenant.slug,
            user_id: done.user.id,
        }),
    )
        .into_response())
}

/// `POST /registrations` (self-service, when open).
pub(crate) async fn self_service(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    if !state.config.registration_open() {
        return Err(Problem::not_found());
    }
    json_registration(&state, &headers, body, None).await
}

/// `POST /admin/registrations` (platform administrators).
pub(crate) async fn by_admin(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.may(&Action::CreateTenant)?;
    json_registration(&state, &headers, body, Some(caller.event_actor())).await
}
