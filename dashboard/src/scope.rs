//! Which tenant a per-tenant page or form is about — checked by the dashboard before identity
//! is asked, so a tenant admin's pages never even ask about another tenant: a tenant admin's
//! pages are always about their own tenant (any other tenant id, in the query or in a form
//! field, answers 404); platform admins pick one.

use leptos::prelude::{AnyView, IntoAny};
use tansu_shared::admin_api::{Page, Tenant};

use crate::error::PageError;
use crate::page::{AdminSession, Section};
use crate::widgets::{self, tenant_line, tenant_picker, urlencode};

/// The tenant a per-tenant page is about and, for platform admins, the picker.
pub struct TenantScope {
    pub tenant: Option<Tenant>,
    picker: Option<AnyView>,
}

impl TenantScope {
    /// The chosen tenant's id (empty: none chosen yet).
    pub fn id(&self) -> String {
        self.tenant
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default()
    }

    /// The picker and the tenant line above a page's content.
    pub fn header(&mut self) -> AnyView {
        let line = self.tenant.as_ref().map(tenant_line);
        (self.picker.take(), line).into_any()
    }
}

/// Tenant admins: their own tenant (another requested id: 404). Platform admins: the
/// requested tenant (unknown: 404) or none yet, with the picker listing the tenants.
pub async fn tenant_scope(
    admin: &AdminSession,
    requested: &str,
    sec: Section,
) -> Result<TenantScope, PageError> {
    let requested = requested.trim();
    if let Some(own) = admin.own_tenant() {
        if !requested.is_empty() && requested != own {
            return Err(PageError::not_found(admin, sec.active));
        }
        let t = get_tenant(admin, own, sec.active).await?;
        return Ok(TenantScope {
            tenant: Some(t),
            picker: None,
        });
    }
    let list: Page<Tenant> = admin
        .identity()
        .get("admin/tenants?limit=500")
        .await
        .map_err(|e| PageError::api(admin, sec.active, "Tenants", e))?;
    let tenant = if requested.is_empty() {
        None
    } else {
        Some(get_tenant(admin, requested, sec.active).await?)
    };
    Ok(TenantScope {
        picker: Some(tenant_picker(admin.url(sec.active), &list.items, requested)),
        tenant,
    })
}

/// [`tenant_scope`] where a tenant must be chosen (an item's page): none is 404.
pub async fn chosen_tenant(
    admin: &AdminSession,
    requested: &str,
    sec: Section,
) -> Result<(String, TenantScope), PageError> {
    let scope = tenant_scope(admin, requested, sec).await?;
    match scope.id() {
        id if id.is_empty() => Err(PageError::not_found(admin, sec.active)),
        id => Ok((id, scope)),
    }
}

pub async fn get_tenant(
    admin: &AdminSession,
    tid: &str,
    active: &str,
) -> Result<Tenant, PageError> {
    admin
        .identity()
        .get(&format!("admin/tenants/{}", urlencode(tid)))
        .await
        .map_err(|e| PageError::api(admin, active, "Tenant", e))
}

/// The tenant a form acts on: its `tenant` field, which a tenant admin's must be their own.
pub fn form_tenant(admin: &AdminSession, field: &str, active: &str) -> Result<String, PageError> {
    let t = field.trim();
    match admin.own_tenant() {
        Some(own) if t != own => Err(PageError::not_found(admin, active)),
        _ if t.is_empty() => Err(PageError::not_found(admin, active)),
        _ => Ok(t.to_owned()),
    }
}

/// Identity's path of something of a tenant: `admin/tenants/<tid>/<kind>[/<id>][/<action>]`.
pub fn tenant_api(tid: &str, kind: &str, id: &str, action: &str) -> String {
    let mut p = format!("admin/tenants/{}/{kind}", urlencode(tid));
    if !id.is_empty() {
        p.push_str(&format!("/{}", urlencode(id)));
    }
    if !action.is_empty() {
        p.push('/');
        p.push_str(action);
    }
    p
}

/// A section's page of a tenant: `…/<section>?tenant=<id>`.
pub fn section_url(admin: &AdminSession, sec: Section, tid: &str) -> String {
    format!("{}{}", admin.url(sec.active), widgets::tq(tid))
}
