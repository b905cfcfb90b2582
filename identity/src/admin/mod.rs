//! The JSON admin API under `/admin`: one module per resource (clients, signing keys, tenants,
//! their users, invitations, roles and providers, the vault, security events and their
//! verification, the master key, statistics, and the internal tenant directory). The routes are
//! listed in [`crate::routes`].
//!
//! Every handler states what it needs with the [`Caller`] extractor and asks
//! [`crate::http::policy`] before it reads its body (written down in `docs/authorization.md`).
//! Errors are RFC 9457 problem+json ([`Problem`]).

// `Problem` is the handlers' error type, returned by the helpers too.
#![allow(clippy::result_large_err)]

pub(crate) mod clients;
pub(crate) mod events;
pub(crate) mod identities;
pub(crate) mod invitations;
pub(crate) mod keys;
pub(crate) mod mail_templates;
pub(crate) mod master_key;
pub(crate) mod member_roles;
pub mod openapi;
pub(crate) mod passkeys;
pub(crate) mod providers;
pub(crate) mod registrations;
pub(crate) mod roles;
pub(crate) mod stats;
pub(crate) mod tenant_directory;
pub(crate) mod tenants;
pub(crate) mod users;
pub(crate) mod vault;
pub(crate) mod verifications;

use axum::body::Body;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tansu_shared::Problem;

use crate::AppState;
use crate::events::Event;
use crate::http::{Action, Caller};
use crate::store::tenants::TenantRow;

const MAX_JSON_BYTES: usize = 64 * 1024;

/// The admin API's JSON body (at most 64 KiB).
pub(crate) async fn json_body<T: DeserializeOwned>(body: Body) -> Result<T, Problem> {
    tansu_shared::extract::read_json(body, MAX_JSON_BYTES).await
}

/// A failure of the machinery: 503 with `Retry-After` when the database is away for now
/// (restarting, failing over), else 500. Logged, never echoed.
pub(crate) fn store_failed<E: std::fmt::Display + 'static>(e: &E) -> Problem {
    if crate::store::is_unavailable(e) {
        tracing::warn!(error = %e, "database unavailable");
        return Problem::retry_later("the database is unavailable; retry");
    }
    Problem::internal(e)
}

/// Records a change an admin made, as a successful security event of `tenant_id` (`None`: a
/// platform-level change), with the request metadata the `Caller` carries.
pub(crate) async fn audit(
    state: &AppState,
    admin: &Caller,
    tenant_id: Option<&str>,
    kind: &str,
    details: serde_json::Value,
) {
    crate::events::record(
        &state.events,
        &admin.meta,
        Event {
            tenant_id,
            kind,
            actor: admin.event_actor(),
            outcome: "success",
            details,
        },
    )
    .await;
}

pub(crate) fn invalid(problems: Vec<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "Invalid request",
    )
    .with_detail(problems.join("; "))
    .with_extension("errors", problems)
}

/// The outcome of a store write addressing one row: 404 when the row was not there.
pub(crate) fn found<E: std::fmt::Display + 'static>(
    written: Result<bool, E>,
) -> Result<(), Problem> {
    match written {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::not_found()),
        Err(e) => Err(store_failed(&e)),
    }
}

pub(crate) fn conflict(detail: &str) -> Problem {
    Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").with_detail(detail.to_owned())
}

/// The tenant `tid`, once the policy allows `action` on it (404 when it does not exist).
pub(crate) async fn tenant_for(
    state: &AppState,
    caller: &Caller,
    action: &Action<'_>,
    tid: &str,
) -> Result<TenantRow, Problem> {
    caller.may(action)?;
    state
        .store
        .tenant_by_id(tid)
        .await
        .map_err(|e| store_failed(&e))?
        .ok_or_else(Problem::not_found)
}
