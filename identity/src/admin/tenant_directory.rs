//! The tenant directory for the gateway: `GET /admin/tenant-directory/{id or slug}` answers
//! `{"id", "slug", "status", "allowed_origins"}` of an active or suspended tenant, 404 for an unknown or deleted
//! one. The gateway caches the answers for a few seconds to resolve `{tenant}.{base_domain}`,
//! `/t/{tenant}/…` and tokens' `tid`, and to refuse suspended tenants itself.
//!
//! Who may call it ([`Action::ReadTenantDirectory`]): a platform client's own token (no user,
//! no `tid`) with scope `tenants.read`, or a platform administrator. A tenant's own clients never may, even with the scope: the
//! directory tells whether any tenant exists, which a tenant must not learn about others.

use axum::Json;
use axum::extract::{Path, State};
use tansu_shared::Problem;
use tansu_shared::tenant_directory::DirectoryAnswer;

use crate::AppState;
use crate::admin::store_failed;
use crate::http::{Action, Caller};
use crate::tenants::STATUS_DELETED;

pub(crate) async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    Path(reference): Path<String>,
) -> Result<Json<DirectoryAnswer>, Problem> {
    caller.may(&Action::ReadTenantDirectory)?;
    let row = state
        .store
        .tenant_by_ref(&reference)
        .await
        .map_err(|e| store_failed(&e))?
        .filter(|t| t.status != STATUS_DELETED)
        .ok_or_else(Problem::not_found)?;
    let allowed_origins = crate::tenants::policy_of(&row).allowed_origins;
    Ok(Json(DirectoryAnswer {
        id: Some(row.id),
        slug: Some(row.slug),
        status: row.status,
        allowed_origins,
    }))
}
