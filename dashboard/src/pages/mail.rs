//! Mail templates of a tenant: the wording of each message kind its users get by mail
//! (password reset, address confirmation, password changed, new sign-in), the tenant's own or
//! the built-in one; edit one, or go back to the built-in wording. Platform admins for every
//! tenant, a tenant's Owners and Admins for their own (identity decides again: whoever may
//! change the tenant's policy).

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{Items, MailTemplate, MailTemplateBody};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::MAIL;
use crate::page::AdminSession;
use crate::scope::{form_tenant, tenant_api, tenant_scope};
use crate::widgets::{badge, choose_tenant, hidden};

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/mail-templates", get(templates).post(save_template))
}

#[derive(Deserialize)]
struct TenantQuery {
    #[serde(default)]
    tenant: String,
}

async fn templates(
    admin: AdminSession,
    Query(q): Query<TenantQuery>,
) -> Result<Response, PageError> {
    templates_page(&admin, &q.tenant, Outcome::none()).await
}

async fn templates_page(
    admin: &AdminSession,
    tenant: &str,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let mut scope = tenant_scope(admin, tenant, MAIL).await?;
    let tid = scope.id();
    let header = scope.header();
    if tid.is_empty() {
        let content = (outcome.message, header, choose_tenant()).into_any();
        return Ok(admin.render_with(MAIL.active, MAIL.title, content, outcome.status, None));
    }
    let list: Items<MailTemplate> = admin
        .identity()
        .get(&tenant_api(&tid, "mail-templates", "", ""))
        .await
        .map_err(|e| PageError::api(admin, MAIL.active, MAIL.title, e))?;
    let content = (
        outcome.message,
        header,
        view(admin.base(), admin.csrf(), &tid, &list.items),
    )
        .into_any();
    Ok(admin.render_with(MAIL.active, MAIL.title, content, outcome.status, None))
}

#[derive(Deserialize)]
struct TemplateForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    /// `builtin`: back to the built-in wording (else: save the form's).
    #[serde(default)]
    action: String,
}

/// A message kind's name as identity spells it (anything else never reaches identity).
fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Saves a kind's wording for the tenant, or puts back the built-in one.
async fn save_template(form: CsrfForm<TemplateForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, MAIL.active)?;
    let outcome = if !valid_kind(&f.kind) {
        Outcome::refused("Choose a message kind.".into())
    } else if f.action == "builtin" {
        let path = tenant_api(&tid, "mail-templates", &f.kind, "");
        let reset = admin.identity().act(Method::DELETE, &path).await;
        outcome(admin, MAIL, "Restoring the built-in wording", reset, |_| {
            format!(
                "The {} message uses the built-in wording again.",
                label(&f.kind)
            )
        })?
    } else {
        let body = MailTemplateBody {
            subject: f.subject.trim().to_owned(),
            body: f.body.replace("\r\n", "\n"),
        };
        let path = tenant_api(&tid, "mail-templates", &f.kind, "");
        let saved = admin
            .identity()
            .call::<_, MailTemplate>(Method::PUT, &path, Some(&body))
            .await;
        outcome(admin, MAIL, "Saving the template", saved, |t| {
            format!("The {} message was saved.", label(&t.kind))
        })?
    };
    templates_page(admin, &tid, outcome).await
}

/// What a kind is, in words.
fn label(kind: &str) -> String {
    match kind {
        "password_reset" => "password reset".into(),
        "email_verification" => "address confirmation".into(),
        "password_changed" => "password changed".into(),
        "new_sign_in" => "new sign-in".into(),
        other => other.replace('_', " "),
    }
}

fn view(base: &str, csrf: &str, tenant: &str, items: &[MailTemplate]) -> AnyView {
    let forms = items
        .iter()
        .map(|t| {
            let subject_id = format!("subject-{}", t.kind);
            let body_id = format!("body-{}", t.kind);
            let state = if t.custom { "custom" } else { "built-in" };
            let back = t.custom.then(|| {
                view! {
                    <button class="secondary" type="submit" name="action" value="builtin">
                        "Use the built-in wording"
                    </button>
                }
            });
            view! {
                <form class="card" method="post" action=format!("{base}mail-templates")>
                    {hidden("csrf", csrf)}
                    {hidden("tenant", tenant)}
                    {hidden("kind", &t.kind)}
                    <h2>{label(&t.kind)} " " {badge(state)}</h2>
                    <label for=subject_id.clone()>"Subject"</label>
                    <input type="text" id=subject_id name="subject" maxlength="200" required=true value=t.subject.clone()/>
                    <label for=body_id.clone()>"Body (plain text)"</label>
                    <textarea id=body_id name="body" rows="8" required=true>{t.body.clone()}</textarea>
                    <p><button type="submit" name="action" value="save">"Save"</button> " " {back}</p>
                </form>
            }
        })
        .collect_view();
    view! {
        <p class="muted">
            "Placeholders: {{product}} (the tenant's name), {{email}}, {{link}} (required where \
             the message carries one), {{minutes}} (how long a link works), {{device}} (the \
             browser of a new sign-in)."
        </p>
        {forms}
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kind_names_reach_identity() {
        assert!(valid_kind("password_reset") && valid_kind("new_sign_in"));
        for bad in ["", "..", "a/b", "A", "x y", &"a".repeat(65)] {
            assert!(!valid_kind(bad), "{bad}");
        }
        assert_eq!(label("email_verification"), "address confirmation");
    }
}
