//! OAuth clients (platform admins): the list (sorted here: identity returns it whole), create
//! (a confidential client's secret is shown once) and "rotate secret" (confirmed; the new
//! secret shown once).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{Client, ClientType, ClientWithSecret, NewClient, Page};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Confirm, Confirmed, Outcome};
use crate::api::ApiError;
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{CLIENTS, notice};
use crate::page::PlatformAdmin;
use crate::widgets::{ListSort, Sorts, hidden, sort_links, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new()
        .route("/clients", get(clients).post(create_client))
        .route(
            "/clients/{client_id}/secret",
            get(secret_confirm).post(rotate_secret),
        )
}

/// The client list's sorts (the complete list, sorted here).
const CLIENT_SORTS: Sorts = &[
    ("name", "Name"),
    ("client_id", "Client id"),
    ("client_type", "Type"),
];

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
}

async fn clients(admin: PlatformAdmin, Query(q): Query<ListQuery>) -> Result<Response, PageError> {
    let sort = ListSort::parse(&q.sort, &q.order, CLIENT_SORTS, false)
        .ok_or_else(|| PageError::invalid_sort(&admin, CLIENTS, CLIENT_SORTS))?;
    clients_page(&admin, &sort, Outcome::none()).await
}

async fn clients_page(
    admin: &PlatformAdmin,
    sort: &ListSort,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let mut list: Page<Client> = admin
        .identity()
        .get("admin/clients?limit=500")
        .await
        .map_err(|e| PageError::api(admin, CLIENTS.active, CLIENTS.title, e))?;
    sort.apply(&mut list.items, |c, key| match key {
        "client_id" => c.client_id.clone(),
        "client_type" => c.client_type.as_str().to_owned(),
        _ => c.name.clone(),
    });
    let links = sort_links(&admin.url(CLIENTS.active), CLIENT_SORTS, sort);
    let content = (
        outcome.message,
        view(admin.base(), admin.csrf(), &list.items, links),
    )
        .into_any();
    Ok(admin.render_with(CLIENTS.active, CLIENTS.title, content, outcome.status, None))
}

/// The list after a form action: the default order, the outcome above it.
async fn after_action(admin: &PlatformAdmin, outcome: Outcome) -> Result<Response, PageError> {
    clients_page(admin, &ListSort::default_of(CLIENT_SORTS), outcome).await
}

#[derive(Deserialize)]
struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    client_type: String,
    #[serde(default)]
    grant_types: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    redirect_uris: String,
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_owned).collect()
}

async fn create_client(form: CsrfForm<ClientForm, PlatformAdmin>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let name = f.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return after_action(
            admin,
            Outcome::refused("A name (up to 200 characters) is required.".into()),
        )
        .await;
    }
    let new = NewClient {
        client_id: None,
        name,
        tenant_id: None,
        client_type: if f.client_type == "public" {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        grant_types: words(&f.grant_types),
        scopes: words(&f.scopes),
        redirect_uris: words(&f.redirect_uris),
        post_logout_redirect_uris: Vec::new(),
        jwks: None,
        first_party: false,
        access_token_lifetime_secs: None,
        signing_alg: None,
        allowed_origins: Vec::new(),
    };
    let created: Result<ClientWithSecret, ApiError> = admin
        .identity()
        .call(Method::POST, "admin/clients", Some(&new))
        .await;
    match created {
        Ok(created) => {
            let id = created.client.client_id;
            tracing::info!(client_id = %id, "client created from the dashboard");
            match created.client_secret {
                Some(secret) => Ok(admin.render(
                    CLIENTS.active,
                    "Client created",
                    secret_once(admin.base(), &id, &secret, "Client created."),
                )),
                None => {
                    after_action(
                        admin,
                        Outcome::ok(format!("Client {id} created (no secret).")),
                    )
                    .await
                }
            }
        }
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            after_action(
                admin,
                Outcome::refused(format!("The client was not created: {detail}")),
            )
            .await
        }
        Err(e) => Err(PageError::api(admin, CLIENTS.active, CLIENTS.title, e)),
    }
}

async fn secret_confirm(admin: PlatformAdmin, Path(client_id): Path<String>) -> Response {
    Confirm {
        path: format!("clients/{}/secret", urlencode(&client_id)),
        fields: Vec::new(),
        title: "Rotate client secret".into(),
        question: format!(
            "Rotate the secret of client {client_id}? The current secret stops working at once; the new one is shown only once."
        ),
        button: "Rotate secret",
        cancel: CLIENTS.active.into(),
    }
    .page(&admin, CLIENTS)
}

async fn rotate_secret(
    Path(client_id): Path<String>,
    form: CsrfForm<Confirmed, PlatformAdmin>,
) -> Result<Response, PageError> {
    let admin = &form.admin;
    let path = format!("clients/{}/secret", urlencode(&client_id));
    Confirm::required(admin, &form.fields.confirm, &path, &[])?;
    let rotated: Result<ClientWithSecret, ApiError> = admin
        .identity()
        .call(Method::POST, &format!("admin/{path}"), None::<&()>)
        .await;
    match rotated {
        Ok(ClientWithSecret {
            client_secret: Some(secret),
            ..
        }) => {
            tracing::info!(client_id = %client_id, "client secret rotated from the dashboard");
            Ok(admin.render(
                CLIENTS.active,
                "Secret rotated",
                secret_once(admin.base(), &client_id, &secret, "Secret rotated."),
            ))
        }
        Ok(_) => Err(PageError::framed(
            admin,
            CLIENTS.active,
            CLIENTS.title,
            notice("error", "Identity did not return a new secret.".into()),
            StatusCode::BAD_GATEWAY,
        )),
        Err(ApiError::Status(code, detail)) if (400..500).contains(&code) => {
            after_action(
                admin,
                Outcome::refused(format!("The secret was not rotated: {detail}")),
            )
            .await
        }
        Err(e) => Err(PageError::api(admin, CLIENTS.active, CLIENTS.title, e)),
    }
}

pub(crate) fn view(base: &str, csrf: &str, items: &[Client], sorts: AnyView) -> AnyView {
    let rows = items
        .iter()
        .map(|c| {
            let confidential = c.client_type == ClientType::Confidential && c.jwks.is_none();
            let rotate = confidential.then(|| {
                let href = format!("{base}clients/{}/secret", urlencode(&c.client_id));
                view! { <a class="button secondary" href=href>"Rotate secret…"</a> }
            });
            view! {
                <tr>
                    <td><strong>{c.name.clone()}</strong><br/><code>{c.client_id.clone()}</code></td>
                    <td>{c.client_type.as_str()}</td>
                    <td>{c.grant_types.join(", ")}</td>
                    <td>{c.scopes.join(", ")}</td>
                    <td>{c.redirect_uris.join(", ")}</td>
                    <td>{rotate}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {sorts}
        <div class="table"><table>
            <thead><tr><th>"Client"</th><th>"Type"</th><th>"Grants"</th><th>"Scopes"</th><th>"Redirect URIs"</th><th></th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
        <h2>"Create a client"</h2>
        <form class="card" method="post" action=format!("{base}clients")>
            {hidden("csrf", csrf)}
            <label for="name">"Name"</label>
            <input type="text" id="name" name="name" required=true maxlength="200"/>
            <label for="client_type">"Type"</label>
            <select id="client_type" name="client_type">
                <option value="confidential">"Confidential (has a secret)"</option>
                <option value="public">"Public (PKCE, no secret)"</option>
            </select>
            <label for="grant_types">"Grant types (space separated)"</label>
            <input type="text" id="grant_types" name="grant_types" value="authorization_code refresh_token"/>
            <label for="scopes">"Scopes (space separated)"</label>
            <input type="text" id="scopes" name="scopes" value="openid profile email"/>
            <label for="redirect_uris">"Redirect URIs (one per line)"</label>
            <textarea id="redirect_uris" name="redirect_uris" rows="3"></textarea>
            <p><button type="submit" id="create-client">"Create client"</button></p>
        </form>
    }
    .into_any()
}

/// Shows a client secret exactly once.
fn secret_once(base: &str, client_id: &str, secret: &str, what: &str) -> AnyView {
    view! {
        <div class="notice success">{format!("{what} Copy the secret now: it is shown only once.")}</div>
        <div class="card">
            <p>"Client " <code>{client_id.to_owned()}</code></p>
            <div class="secret" id="client-secret">{secret.to_owned()}</div>
            <p><a class="button" href=format!("{base}clients")>"Back to clients"</a></p>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_identity_returns() {
        let client: Client = serde_json::from_value(serde_json::json!({
            "id": "1", "client_id": "<script>x</script>", "tenant_id": null,
            "name": "\"><img src=x>", "client_type": "confidential",
            "token_endpoint_auth_methods": [], "grant_types": [], "scopes": [],
            "redirect_uris": [], "post_logout_redirect_uris": [], "first_party": false,
            "access_token_lifetime_secs": null, "signing_alg": "RS256",
            "created_at": "x", "updated_at": "y",
        }))
        .unwrap();
        let html = leptos::prelude::RenderHtml::to_html(view(
            "https://gw.test/dashboard/",
            "t",
            &[client],
            ().into_any(),
        ));
        assert!(!html.contains("<script>x"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }
}
