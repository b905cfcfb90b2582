//! Tenants (platform admins): the list (cursor pages of 50, sorted by identity), create, and
//! suspend/activate (confirmed).

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{NewTenant, Page, Tenant};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::TENANTS;
use crate::page::PlatformAdmin;
use crate::scope::get_tenant;
use crate::widgets::{ListSort, Sorts, after_param, badge, hidden, pager, sort_links, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/tenants", get(tenants).post(create_tenant))
        .route(
            "/tenants/{tid}/status",
            get(status_confirm).post(change_status),
        )
}

pub(crate) const TENANT_SORTS: Sorts = &[
    ("created", "Created"),
    ("name", "Name"),
    ("slug", "Slug"),
    ("status", "Status"),
];

#[derive(Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    after: String,
}

async fn tenants(admin: PlatformAdmin, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    tenants_page(&admin, &q, Outcome::none()).await
}

async fn tenants_page(
    admin: &PlatformAdmin,
    q: &ListQuery,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let sort = ListSort::parse(&q.sort, &q.order, TENANT_SORTS, false)
        .ok_or_else(|| PageError::invalid_sort(admin, TENANTS, TENANT_SORTS))?;
    let path = format!(
        "admin/tenants?limit=50&{}{}",
        sort.query(),
        after_param(q.after.trim())
    );
    let list: Page<Tenant> = admin
        .identity()
        .get(&path)
        .await
        .map_err(|e| PageError::api(admin, TENANTS.active, TENANTS.title, e))?;
    let here = admin.url(TENANTS.active);
    let first = format!("{here}?{}", sort.query());
    let next = list
        .next_after
        .as_ref()
        .map(|n| format!("{first}{}", after_param(n)));
    let content = (
        outcome.message,
        view(
            admin.base(),
            admin.csrf(),
            &list.items,
            pager(first, next),
            sort_links(&here, TENANT_SORTS, &sort),
        ),
    )
        .into_any();
    Ok(admin.render_with(TENANTS.active, TENANTS.title, content, outcome.status, None))
}

#[derive(Deserialize)]
struct TenantForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    name: String,
}

async fn create_tenant(form: CsrfForm<TenantForm, PlatformAdmin>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let new = NewTenant {
        slug: f.slug.trim().to_owned(),
        name: f.name.trim().to_owned(),
        policy: None,
    };
    let created = admin
        .identity()
        .call::<_, Tenant>(Method::POST, "admin/tenants", Some(&new))
        .await;
    let outcome = outcome(admin, TENANTS, "Creating the tenant", created, |t| {
        format!("Tenant {} ({}) created.", t.name, t.slug)
    })?;
    tenants_page(admin, &ListQuery::default(), outcome).await
}

/// Suspend or activate: the value of `to`, and its button.
fn status_action(to: &str) -> Option<(&'static str, &'static str)> {
    match to {
        "suspend" => Some(("suspend", "Suspend")),
        "activate" => Some(("activate", "Activate")),
        _ => None,
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(default)]
    to: String,
}

async fn status_confirm(
    admin: PlatformAdmin,
    Path(tid): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, PageError> {
    let (to, label) =
        status_action(q.to.trim()).ok_or_else(|| PageError::not_found(&admin, TENANTS.active))?;
    let t = get_tenant(&admin, &tid, TENANTS.active).await?;
    let question = if to == "suspend" {
        format!(
            "Suspend tenant {} ({})? Its users cannot sign in and its clients get no tokens until it is activated again.",
            t.name, t.slug
        )
    } else {
        format!("Activate tenant {} ({})?", t.name, t.slug)
    };
    Ok(Confirm {
        path: format!("tenants/{}/status", urlencode(&tid)),
        fields: vec![("to", to.to_owned())],
        title: format!("{label} tenant"),
        question,
        button: label,
        cancel: TENANTS.active.into(),
    }
    .page(&admin, TENANTS))
}

#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    confirm: String,
}

async fn change_status(
    Path(tid): Path<String>,
    form: CsrfForm<StatusForm, PlatformAdmin>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let (to, _) =
        status_action(&f.to).ok_or_else(|| PageError::not_found(admin, TENANTS.active))?;
    let tenant = urlencode(&tid);
    Confirm::required(
        admin,
        &f.confirm,
        &format!("tenants/{tenant}/status"),
        &[("to", to)],
    )?;
    let changed = admin
        .identity()
        .call::<_, Tenant>(
            Method::POST,
            &format!("admin/tenants/{tenant}/{to}"),
            None::<&()>,
        )
        .await;
    let outcome = outcome(
        admin,
        TENANTS,
        "Changing the tenant's status",
        changed,
        |t| format!("Tenant {} is now {}.", t.slug, t.status),
    )?;
    tenants_page(admin, &ListQuery::default(), outcome).await
}

fn view(base: &str, csrf: &str, items: &[Tenant], pager: AnyView, sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|t| {
            let (to, label) = if t.status == "active" {
                ("suspend", "Suspend…")
            } else {
                ("activate", "Activate…")
            };
            let href = format!("{base}tenants/{}/status?to={to}", urlencode(&t.id));
            let users = format!("{base}users?tenant={}", urlencode(&t.id));
            view! {
                <tr>
                    <td><strong>{t.name.clone()}</strong><br/><code>{t.id.clone()}</code></td>
                    <td><code>{t.slug.clone()}</code></td>
                    <td>{badge(&t.status)}</td>
                    <td>{t.created_at.clone()}</td>
                    <td><a href=users>"Users"</a> " " <a class="button secondary" href=href>{label}</a></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Tenant"</th><th>"Slug"</th><th>"Status"</th><th>"Created"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        {pager}
        <h2>"Create a tenant"</h2>
        <form class="card" method="post" action=format!("{base}tenants")>
            {hidden("csrf", csrf)}
            <label for="slug">"Slug (a-z 0-9 -)"</label>
            <input type="text" id="slug" name="slug" required=true maxlength="63"/>
            <label for="name">"Name"</label>
            <input type="text" id="name" name="name" required=true maxlength="200"/>
            <p><button type="submit" id="create-tenant">"Create tenant"</button></p>
        </form>
    }
    .into_any()
}
