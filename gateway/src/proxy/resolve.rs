//! Step 4: the tenant a request is for — the host's or the path's, else the token's `tid` —
//! checked against the directory (unknown: 404, suspended: 403) and against the token (a token
//! of another tenant: 403), and the tenant's own budget.

use std::sync::Arc;

use http::StatusCode;
use http::header::HeaderMap;
use tansu_shared::auth::credential;
use tansu_shared::problem::Problem;

use super::admission::{Addressed, check_budget};
use super::{Gateway, RouteEntry, tenant_mismatch, unknown_tenant};
use crate::ratelimit::{Decision, Key};
use crate::tenant::{self, TenantInfo, TenantStatus};

/// The tenant a request is for, and what its token says.
pub(super) struct Resolved {
    pub(super) info: Option<Arc<TenantInfo>>,
    /// The token's `tid`: verified when the route checks tokens, else only decoded.
    token_tid: Option<String>,
    verified: bool,
}

impl Resolved {
    /// The origins the tenant allows, when a tenant is known.
    pub(super) fn allowed_origins(&self) -> Option<&[String]> {
        self.info.as_deref().map(|t| t.allowed_origins.as_slice())
    }
}

impl Gateway {
    pub(super) async fn resolve(
        &self,
        route: &RouteEntry,
        headers: &HeaderMap,
        addressed: &Addressed<'_>,
    ) -> Result<Resolved, Problem> {
        // The token's tenant: verified when the route checks tokens, else only decoded. A
        // DPoP-bound token names its tenant too; its proof is the service's to check.
        let (token_tid, verified) = match credential(headers).map(|c| c.map(|c| c.token())) {
            Ok(Some(token)) => match &route.verifier {
                Some(v) => (v.verify(token).await.map_err(|e| e.to_problem())?.tid, true),
                None => (tenant::unverified_tid(token), false),
            },
            Ok(None) => (None, false),
            Err(e) if route.verifier.is_some() => return Err(e.to_problem()),
            Err(_) => (None, false),
        };
        let named = addressed.host_tenant.as_deref().or(addressed.path_tenant);
        let info = match (named, token_tid.as_deref()) {
            (Some(slug), tid) => {
                let info = self
                    .directory
                    .by_slug(slug)
                    .await
                    .map_err(directory_unavailable)?
                    .ok_or_else(unknown_tenant)?;
                if tid.is_some_and(|tid| tid != info.id) {
                    return Err(tenant_mismatch(
                        "the token was issued for another tenant than the one addressed",
                    ));
                }
                Some(info)
            }
            (None, Some(tid)) => {
                if !tenant::is_valid_id(tid) {
                    return Err(unknown_tenant());
                }
                Some(
                    self.directory
                        .by_id(tid)
                        .await
                        .map_err(directory_unavailable)?
                        .ok_or_else(unknown_tenant)?,
                )
            }
            (None, None) => None,
        };
        if let Some(t) = &info
            && t.status == TenantStatus::Suspended
        {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "tenant-suspended",
                "Tenant suspended",
            ));
        }
        Ok(Resolved {
            info,
            token_tid,
            verified,
        })
    }

    /// Only the tenant's own verified credential spends its budget: anyone can name a tenant
    /// (host, path, an unverified token's `tid`), and must not use up its budget.
    pub(super) async fn tenant_budget(
        &self,
        tenant: &Resolved,
        budget: Option<Decision>,
    ) -> Result<Option<Decision>, Problem> {
        if let (Some(limiter), Some(t)) = (&self.limiter, &tenant.info)
            && tenant.verified
            && tenant.token_tid.as_deref() == Some(t.id.as_str())
        {
            let keys = [Key::Tenant(&t.id)];
            return Ok(Some(check_budget(limiter.as_ref(), &keys, budget).await?));
        }
        Ok(budget)
    }
}

fn directory_unavailable(e: String) -> Problem {
    tracing::warn!(error = %e, "tenant directory unavailable");
    Problem::retry_later("the tenant directory is unavailable")
}
