//! External OIDC providers of a tenant: the list (sorted here: identity returns it whole),
//! add, edit (the client secret is write-only: "set" or "none"), the sign-in settings (accounts
//! created on a first sign-in, whether the provider's verified addresses are trusted, the claims
//! read, upstream groups to tenant roles, allowed and home-realm domains), test the discovery
//! document (the result shown), disable/enable and delete (confirmed).

mod sign_in;

use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;

use tansu_shared::admin_api::{DiscoveryCheck, NewProvider, Page, Provider, ProviderUpdate};
use tansu_shared::routes::Routes;

use self::sign_in::{SignInForm, SignInValues, save_sign_in, sign_in_form};
use crate::AppState;
use crate::action::{Confirm, Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::PROVIDERS;
use crate::page::AdminSession;
use crate::scope::{chosen_tenant, form_tenant, section_url, tenant_api, tenant_scope};
use crate::widgets::{ListSort, Sorts, badge, choose_tenant, hidden, sort_links, tq, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/admin/providers", get(providers).post(create_provider))
        .route(
            "/admin/providers/{id}",
            get(edit_provider).post(update_provider),
        )
        .route("/admin/providers/{id}/sign-in", post(save_sign_in))
        .route("/admin/providers/{id}/test", post(test_provider))
        .route(
            "/admin/providers/{id}/status",
            get(status_confirm).post(change_status),
        )
        .route(
            "/admin/providers/{id}/delete",
            get(delete_confirm).post(delete_provider),
        )
}

pub(crate) const PROVIDER_SORTS: Sorts = &[
    ("name", "Name"),
    ("issuer", "Issuer"),
    ("enabled", "Status"),
];

#[derive(Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    to: String,
}

impl ListQuery {
    fn of(tid: &str) -> Self {
        Self {
            tenant: tid.to_owned(),
            ..Self::default()
        }
    }
}

async fn providers(admin: AdminSession, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    providers_page(&admin, &q, Outcome::none()).await
}

async fn providers_page(
    admin: &AdminSession,
    q: &ListQuery,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let sort = ListSort::parse(&q.sort, &q.order, PROVIDER_SORTS, false)
        .ok_or_else(|| PageError::invalid_sort(admin, PROVIDERS, PROVIDER_SORTS))?;
    let mut scope = tenant_scope(admin, &q.tenant, PROVIDERS).await?;
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, choose_tenant()).into_any();
        return Ok(admin.render_with(
            PROVIDERS.active,
            PROVIDERS.title,
            content,
            outcome.status,
            None,
        ));
    }
    let path = format!("{}?limit=500", tenant_api(&tid, "providers", "", ""));
    let mut list: Page<Provider> = admin
        .identity()
        .get(&path)
        .await
        .map_err(|e| PageError::api(admin, PROVIDERS.active, PROVIDERS.title, e))?;
    sort.apply(&mut list.items, |p, key| match key {
        "issuer" => p.issuer.clone(),
        "enabled" => p.enabled.to_string(),
        _ => p.name.clone(),
    });
    let links = sort_links(&section_url(admin, PROVIDERS, &tid), PROVIDER_SORTS, &sort);
    let content = (
        outcome.message,
        header,
        view(admin.base(), admin.csrf(), &tid, &list.items, links),
    )
        .into_any();
    Ok(admin.render_with(
        PROVIDERS.active,
        PROVIDERS.title,
        content,
        outcome.status,
        None,
    ))
}

/// The fields of every provider form (each form sends those it needs).
#[derive(Deserialize)]
struct ProviderForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    remove_secret: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    confirm: String,
}

impl ProviderForm {
    fn scopes(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_owned).collect()
    }

    fn secret(&self) -> Option<String> {
        Some(self.client_secret.clone()).filter(|s| !s.is_empty())
    }
}

async fn create_provider(form: CsrfForm<ProviderForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    let new = NewProvider {
        name: f.name.trim().to_owned(),
        issuer: f.issuer.trim().to_owned(),
        client_id: f.client_id.trim().to_owned(),
        client_secret: f.secret(),
        scopes: Some(f.scopes()),
        enabled: None,
        sign_in: None,
    };
    let added = admin
        .identity()
        .call::<_, Provider>(
            Method::POST,
            &tenant_api(&tid, "providers", "", ""),
            Some(&new),
        )
        .await;
    let outcome = outcome(admin, PROVIDERS, "Adding the provider", added, |p| {
        format!("Provider {} added.", p.name)
    })?;
    providers_page(admin, &ListQuery::of(&tid), outcome).await
}

async fn get_provider(admin: &AdminSession, tid: &str, id: &str) -> Result<Provider, PageError> {
    admin
        .identity()
        .get(&tenant_api(tid, "providers", id, ""))
        .await
        .map_err(|e| PageError::api(admin, PROVIDERS.active, PROVIDERS.title, e))
}

async fn edit_provider(
    admin: AdminSession,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    edit_page(&admin, &q.tenant, &id, Outcome::none(), None).await
}

/// The edit page of a provider: its form and its sign-in settings' form (`typed`: the
/// settings form as submitted, shown again when it was refused).
async fn edit_page(
    admin: &AdminSession,
    tenant: &str,
    id: &str,
    outcome: Outcome,
    typed: Option<&SignInForm>,
) -> Result<Response, PageError> {
    let (tid, mut scope) = chosen_tenant(admin, tenant, PROVIDERS).await?;
    let p = get_provider(admin, &tid, id).await?;
    let settings = match typed {
        Some(f) => SignInValues::typed(f),
        None => SignInValues::of(&p.sign_in),
    };
    let content = (
        outcome.message,
        scope.header(),
        provider_form(admin.base(), admin.csrf(), &tid, Some(&p)),
        sign_in_form(admin.base(), admin.csrf(), &tid, &p, &settings),
    )
        .into_any();
    Ok(admin.render_with(
        PROVIDERS.active,
        "Edit provider",
        content,
        outcome.status,
        None,
    ))
}

/// `PATCH` of the tenant's provider `id` at identity.
async fn patch_provider(
    admin: &AdminSession,
    tid: &str,
    id: &str,
    update: &ProviderUpdate,
) -> Result<Provider, crate::api::ApiError> {
    admin
        .identity()
        .call::<_, Provider>(
            Method::PATCH,
            &tenant_api(tid, "providers", id, ""),
            Some(update),
        )
        .await
}

async fn update_provider(
    Path(id): Path<String>,
    form: CsrfForm<ProviderForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    let secret = f.secret();
    let update = ProviderUpdate {
        name: Some(f.name.trim().to_owned()),
        issuer: Some(f.issuer.trim().to_owned()),
        client_id: Some(f.client_id.trim().to_owned()),
        remove_secret: (secret.is_none() && f.remove_secret == "yes").then_some(true),
        client_secret: secret,
        scopes: Some(f.scopes()),
        enabled: None,
        sign_in: None,
    };
    let saved = patch_provider(admin, &tid, &id, &update).await;
    let outcome = outcome(admin, PROVIDERS, "Saving the provider", saved, |p| {
        format!("Provider {} saved.", p.name)
    })?;
    providers_page(admin, &ListQuery::of(&tid), outcome).await
}

async fn test_provider(
    Path(id): Path<String>,
    form: CsrfForm<ProviderForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    let p = get_provider(admin, &tid, &id).await?;
    let result: DiscoveryCheck = admin
        .identity()
        .call(
            Method::POST,
            &tenant_api(&tid, "providers", &id, "test"),
            None::<&()>,
        )
        .await
        .map_err(|e| PageError::api(admin, PROVIDERS.active, PROVIDERS.title, e))?;
    let outcome = Outcome::shown(discovery_result(&p.name, &result));
    providers_page(admin, &ListQuery::of(&tid), outcome).await
}

/// Disable or enable: the value of `to`, and its button.
fn toggle_action(to: &str) -> Option<(&'static str, &'static str)> {
    match to {
        "disable" => Some(("disable", "Disable")),
        "enable" => Some(("enable", "Enable")),
        _ => None,
    }
}

/// A provider's confirmation page: the tenant (checked), the provider, and the question.
async fn provider_confirm(
    admin: &AdminSession,
    tenant: &str,
    id: &str,
    action: &str,
    extra: Vec<(&'static str, String)>,
    question: impl FnOnce(&Provider) -> String,
    button: &'static str,
) -> Result<Response, PageError> {
    let (tid, _) = chosen_tenant(admin, tenant, PROVIDERS).await?;
    let p = get_provider(admin, &tid, id).await?;
    let mut fields = vec![("tenant", tid.clone())];
    fields.extend(extra);
    Ok(Confirm {
        path: format!("admin/providers/{}/{action}", urlencode(id)),
        fields,
        title: button.into(),
        question: question(&p),
        button,
        cancel: format!("{}{}", PROVIDERS.active, tq(&tid)),
    }
    .page(admin, PROVIDERS))
}

async fn status_confirm(
    admin: AdminSession,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (to, label) =
        toggle_action(q.to.trim()).ok_or_else(|| PageError::not_found(&admin, PROVIDERS.active))?;
    let question = move |p: &Provider| {
        if to == "disable" {
            format!(
                "Disable the provider {}? Its users cannot sign in through it until it is enabled again.",
                p.name
            )
        } else {
            format!("Enable the provider {}?", p.name)
        }
    };
    provider_confirm(
        &admin,
        &q.tenant,
        &id,
        "status",
        vec![("to", to.into())],
        question,
        label,
    )
    .await
}

async fn change_status(
    Path(id): Path<String>,
    form: CsrfForm<ProviderForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    let (to, _) =
        toggle_action(&f.to).ok_or_else(|| PageError::not_found(admin, PROVIDERS.active))?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("admin/providers/{}/status", urlencode(&id)),
        &[("tenant", tid.as_str()), ("to", to)],
    )?;
    let changed = admin
        .identity()
        .call::<_, Provider>(
            Method::POST,
            &tenant_api(&tid, "providers", &id, to),
            None::<&()>,
        )
        .await;
    let outcome = outcome(admin, PROVIDERS, "Changing the provider", changed, |p| {
        let now = if p.enabled { "enabled" } else { "disabled" };
        format!("Provider {} is now {now}.", p.name)
    })?;
    providers_page(admin, &ListQuery::of(&tid), outcome).await
}

async fn delete_confirm(
    admin: AdminSession,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let question = |p: &Provider| {
        format!(
            "Delete the provider {}? Its configuration and stored client secret are removed.",
            p.name
        )
    };
    provider_confirm(
        &admin,
        &q.tenant,
        &id,
        "delete",
        Vec::new(),
        question,
        "Delete provider",
    )
    .await
}

async fn delete_provider(
    Path(id): Path<String>,
    form: CsrfForm<ProviderForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    Confirm::required(
        admin,
        &f.confirm,
        &format!("admin/providers/{}/delete", urlencode(&id)),
        &[("tenant", tid.as_str())],
    )?;
    let deleted = admin
        .identity()
        .act(Method::DELETE, &tenant_api(&tid, "providers", &id, ""))
        .await;
    let outcome = outcome(admin, PROVIDERS, "Deleting the provider", deleted, |_| {
        "The provider was deleted.".to_owned()
    })?;
    providers_page(admin, &ListQuery::of(&tid), outcome).await
}

fn view(base: &str, csrf: &str, tenant: &str, items: &[Provider], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|p| {
            let pid = urlencode(&p.id);
            let edit = format!("{base}admin/providers/{pid}{}", tq(tenant));
            let (to, label) = if p.enabled {
                ("disable", "Disable…")
            } else {
                ("enable", "Enable…")
            };
            let status = format!("{base}admin/providers/{pid}/status{}&to={to}", tq(tenant));
            let delete = format!("{base}admin/providers/{pid}/delete{}", tq(tenant));
            let secret = if p.has_secret { "set" } else { "none" };
            view! {
                <tr>
                    <td><strong>{p.name.clone()}</strong><br/><code class="muted">{p.id.clone()}</code></td>
                    <td><code>{p.issuer.clone()}</code></td>
                    <td><code>{p.client_id.clone()}</code><br/><span class="muted">{format!("secret: {secret}")}</span></td>
                    <td>{p.scopes.join(", ")}</td>
                    <td>{badge(if p.enabled { "enabled" } else { "disabled" })}</td>
                    <td>
                        <form method="post" action=format!("{base}admin/providers/{pid}/test") class="inline">
                            {hidden("csrf", csrf)}
                            {hidden("tenant", tenant)}
                            <button class="secondary" type="submit">"Test discovery"</button>
                        </form>
                        " " <a class="button secondary" href=edit>"Edit"</a>
                        " " <a class="button secondary" href=status>{label}</a>
                        " " <a class="button secondary" href=delete>"Delete…"</a>
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Provider"</th><th>"Issuer"</th><th>"Client"</th><th>"Scopes"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Add an OIDC provider"</h2>
        {provider_form(base, csrf, tenant, None)}
    }
    .into_any()
}

/// The add (no provider) or edit form.
fn provider_form(base: &str, csrf: &str, tenant: &str, p: Option<&Provider>) -> AnyView {
    let action = match p {
        Some(p) => format!("{base}admin/providers/{}", urlencode(&p.id)),
        None => format!("{base}admin/providers"),
    };
    let text = |f: fn(&Provider) -> &String| p.map(|p| f(p).clone()).unwrap_or_default();
    let scopes = p.map_or_else(|| "openid profile email".to_owned(), |p| p.scopes.join(" "));
    let has_secret = p.is_some_and(|p| p.has_secret);
    let secret_hint = if has_secret {
        "Client secret (set; leave empty to keep it)"
    } else {
        "Client secret (optional)"
    };
    let remove = has_secret.then(|| {
        view! {
            <label><input type="checkbox" name="remove_secret" value="yes"/>" Remove the stored secret"</label>
        }
    });
    let button = if p.is_some() {
        "Save provider"
    } else {
        "Add provider"
    };
    view! {
        <form class="card" method="post" action=action>
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <label for="provider-name">"Display name"</label>
            <input type="text" id="provider-name" name="name" required=true maxlength="200" value=text(|p| &p.name)/>
            <label for="issuer">"Issuer URL (https; its discovery document is /.well-known/openid-configuration)"</label>
            <input type="text" id="issuer" name="issuer" required=true maxlength="2048" value=text(|p| &p.issuer)/>
            <label for="client_id">"Client id"</label>
            <input type="text" id="client_id" name="client_id" required=true maxlength="256" value=text(|p| &p.client_id)/>
            <label for="client_secret">{secret_hint}</label>
            <input type="password" id="client_secret" name="client_secret" autocomplete="off"/>
            {remove}
            <label for="scopes">"Scopes (space separated, with openid)"</label>
            <input type="text" id="scopes" name="scopes" value=scopes/>
            <p><button type="submit" id="save-provider">{button}</button></p>
        </form>
    }
    .into_any()
}

fn discovery_result(name: &str, r: &DiscoveryCheck) -> AnyView {
    let row = |label: &'static str, v: Option<String>| {
        v.filter(|v| !v.is_empty())
            .map(|v| view! { <tr><th>{label}</th><td><code>{v}</code></td></tr> })
    };
    let headline = if r.ok {
        format!("Discovery of {name} works.")
    } else {
        format!(
            "Discovery of {name} failed: {}",
            r.reason.clone().unwrap_or_default()
        )
    };
    view! {
        <div class={if r.ok { "notice success" } else { "notice error" }} id="discovery-result" role="status">{headline}</div>
        <div class="table"><table><tbody>
            {row("Discovery URL", Some(r.discovery_url.clone()))}
            {row("HTTP status", r.http_status.map(|s| s.to_string()))}
            {row("Issuer", r.issuer.clone())}
            {row("Authorization endpoint", r.authorization_endpoint.clone())}
            {row("Token endpoint", r.token_endpoint.clone())}
            {row("JWKS", r.jwks_uri.clone())}
            {row("Time (ms)", Some(r.elapsed_ms.to_string()))}
        </tbody></table></div>
    }
    .into_any()
}
