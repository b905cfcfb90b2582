//! Secrets of a tenant: names and versions (values are write-only here, never shown; sorted by
//! name or latest version), add, rotate (a new version) and revoke every version (confirmed).

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{Items, Secret, SecretStored, SecretValue};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::SECRETS;
use crate::page::AdminSession;
use crate::scope::{chosen_tenant, form_tenant, section_url, tenant_api, tenant_scope};
use crate::widgets::{ListSort, Sorts, badge, choose_tenant, hidden, sort_links, tq, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/secrets", get(secrets).post(put_secret))
        .route(
            "/secrets/{name}/revoke",
            get(revoke_confirm).post(revoke_secret),
        )
}

const SECRET_SORTS: Sorts = &[("name", "Name"), ("latest", "Latest version")];

#[derive(Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
}

impl ListQuery {
    fn of(tid: &str) -> Self {
        Self {
            tenant: tid.to_owned(),
            ..Self::default()
        }
    }
}

async fn secrets(admin: AdminSession, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    secrets_page(&admin, &q, Outcome::none()).await
}

async fn secrets_page(
    admin: &AdminSession,
    q: &ListQuery,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let sort = ListSort::parse(&q.sort, &q.order, SECRET_SORTS, false)
        .ok_or_else(|| PageError::invalid_sort(admin, SECRETS, SECRET_SORTS))?;
    let mut scope = tenant_scope(admin, &q.tenant, SECRETS).await?;
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, choose_tenant()).into_any();
        return Ok(admin.render_with(SECRETS.active, SECRETS.title, content, outcome.status, None));
    }
    let mut list: Items<Secret> = admin
        .identity()
        .get(&tenant_api(&tid, "secrets", "", ""))
        .await
        .map_err(|e| PageError::api(admin, SECRETS.active, SECRETS.title, e))?;
    // `latest`: the creation time of a secret's latest version.
    sort.apply(&mut list.items, |s, key| match key {
        "latest" => s
            .versions
            .last()
            .map(|v| v.created_at.clone())
            .unwrap_or_default(),
        _ => s.name.clone(),
    });
    let links = sort_links(&section_url(admin, SECRETS, &tid), SECRET_SORTS, &sort);
    let content = (
        outcome.message,
        header,
        view(admin.base(), admin.csrf(), &tid, &list.items, links),
    )
        .into_any();
    Ok(admin.render_with(SECRETS.active, SECRETS.title, content, outcome.status, None))
}

#[derive(Deserialize)]
struct SecretForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    confirm: String,
}

/// Stores a secret's first version, or a new one (rotation).
async fn put_secret(form: CsrfForm<SecretForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, SECRETS.active)?;
    let name = f.name.trim();
    let outcome = if name.is_empty() || f.value.is_empty() {
        Outcome::refused("A name and a value are required.".into())
    } else {
        let value = SecretValue {
            value: f.value.clone(),
        };
        let stored = admin
            .identity()
            .call::<_, SecretStored>(
                Method::PUT,
                &tenant_api(&tid, "secrets", name, ""),
                Some(&value),
            )
            .await;
        outcome(admin, SECRETS, "Storing the secret", stored, |s| {
            format!("Secret {} stored as version {}.", s.name, s.version)
        })?
    };
    secrets_page(admin, &ListQuery::of(&tid), outcome).await
}

#[derive(Deserialize)]
struct ItemQuery {
    #[serde(default)]
    tenant: String,
}

async fn revoke_confirm(
    admin: AdminSession,
    Path(name): Path<String>,
    Query(q): Query<ItemQuery>,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(&admin, &q.tenant, SECRETS).await?;
    Ok(Confirm {
        path: format!("secrets/{}/revoke", urlencode(&name)),
        fields: vec![("tenant", tid.clone())],
        title: "Revoke secret".into(),
        question: format!(
            "Revoke every version of the secret {name}? Nothing can read it afterwards."
        ),
        button: "Revoke secret",
        cancel: format!("{}{}", SECRETS.active, tq(&tid)),
    }
    .page(&admin, SECRETS))
}

async fn revoke_secret(
    Path(name): Path<String>,
    form: CsrfForm<SecretForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, SECRETS.active)?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("secrets/{}/revoke", urlencode(&name)),
        &[("tenant", tid.as_str())],
    )?;
    let revoked = admin
        .identity()
        .act(Method::POST, &tenant_api(&tid, "secrets", &name, "revoke"))
        .await;
    let outcome = outcome(admin, SECRETS, "Revoking the secret", revoked, |_| {
        format!("Secret {name} revoked.")
    })?;
    secrets_page(admin, &ListQuery::of(&tid), outcome).await
}

fn view(base: &str, csrf: &str, tenant: &str, items: &[Secret], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|sec| {
            let live = sec.versions.iter().filter(|v| !v.revoked).count();
            let latest = sec
                .versions
                .last()
                .map(|v| v.created_at.clone())
                .unwrap_or_default();
            let version_list = sec
                .versions
                .iter()
                .map(|v| format!("v{}{}", v.version, if v.revoked { " (revoked)" } else { "" }))
                .collect::<Vec<_>>()
                .join(", ");
            let revoke = (live > 0).then(|| {
                let href = format!("{base}secrets/{}/revoke{}", urlencode(&sec.name), tq(tenant));
                view! { <a class="button secondary" href=href>"Revoke…"</a> }
            });
            let rotate = view! {
                <form method="post" action=format!("{base}secrets") class="inline">
                    {hidden("csrf", csrf)}
                    {hidden("tenant", tenant)}
                    {hidden("name", &sec.name)}
                    <input type="password" name="value" aria-label="New value" placeholder="new value" autocomplete="off" required=true/>
                    <button class="secondary" type="submit">"Rotate"</button>
                </form>
            };
            view! {
                <tr>
                    <td><code>{sec.name.clone()}</code></td>
                    <td>{version_list}</td>
                    <td>{latest}</td>
                    <td>{badge(if live > 0 { "active" } else { "revoked" })}</td>
                    <td>{rotate} " " {revoke}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">"Values are write-only here: lists show names and versions, never values."</p>
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Name"</th><th>"Versions"</th><th>"Latest"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Add a secret"</h2>
        <form class="card" method="post" action=format!("{base}secrets")>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="secret-name">"Name (A-Z a-z 0-9 - _ .)"</label>
            <input type="text" id="secret-name" name="name" required=true maxlength="128"/>
            <label for="secret-value">"Value"</label>
            <input type="password" id="secret-value" name="value" required=true autocomplete="off"/>
            <p><button type="submit" id="add-secret">"Store secret"</button></p>
        </form>
    }
    .into_any()
}
