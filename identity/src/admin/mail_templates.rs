//! `/admin/tenants/{tid}/mail-templates…`: a tenant's own wording of the messages its users get
//! by mail (see [`crate::mail::templates`]). `GET` lists every kind with the template in force;
//! `PUT {kind}` sets the tenant's own, `DELETE {kind}` goes back to the built-in one. Who may:
//! whoever may change the tenant's policy (platform admins; the tenant's Owners and Admins).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use tansu_shared::Problem;
use tansu_shared::admin_api::{Items, MailTemplate, MailTemplateBody};

use crate::AppState;
use crate::admin::{audit, invalid, json_body, store_failed, tenant_for};
use crate::events::TENANT_CHANGE;
use crate::http::{Action, Caller};
use crate::mail::templates::{KINDS, builtin};
use crate::store::now_ms;

fn known_kind(kind: &str) -> Result<&'static str, Problem> {
    KINDS
        .iter()
        .find(|k| **k == kind)
        .copied()
        .ok_or_else(Problem::not_found)
}

/// `GET /admin/tenants/{tid}/mail-templates`.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<Items<MailTemplate>>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::ReadTenant(&tid), &tid).await?;
    let mut items = Vec::with_capacity(KINDS.len());
    for kind in KINDS {
        let own = state
            .store
            .mail_template(&tenant.id, kind)
            .await
            .map_err(|e| store_failed(&e))?;
        let (subject, body, custom) = match own {
            Some((s, b)) => (s, b, true),
            None => {
                let (s, b) = builtin(kind).unwrap_or_default();
                (s.to_owned(), b.to_owned(), false)
            }
        };
        items.push(MailTemplate {
            kind: kind.to_owned(),
            subject,
            body,
            custom,
        });
    }
    Ok(Json(Items { items }))
}

/// `PUT /admin/tenants/{tid}/mail-templates/{kind}` with `{subject, body}`.
pub(crate) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, kind)): Path<(String, String)>,
    body: Body,
) -> Result<Json<MailTemplate>, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::UpdateTenantPolicy(&tid), &tid).await?;
    let kind = known_kind(&kind)?;
    let t: MailTemplateBody = json_body(body).await?;
    let mut problems = Vec::new();
    if t.subject.trim().is_empty()
        || t.subject.chars().count() > 200
        || t.subject.chars().any(char::is_control)
    {
        problems.push("subject: 1 to 200 characters on one line".to_owned());
    }
    if t.body.chars().count() > 20_000 {
        problems.push("body: at most 20000 characters".to_owned());
    }
    if !t.body.contains("{{link}}") {
        problems.push("body: must contain {{link}}".to_owned());
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    state
        .store
        .set_mail_template(&tenant.id, kind, Some((&t.subject, &t.body)), now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        TENANT_CHANGE,
        json!({"action": "mail_template.set", "kind": kind}),
    )
    .await;
    Ok(Json(MailTemplate {
        kind: kind.to_owned(),
        subject: t.subject,
        body: t.body,
        custom: true,
    }))
}

/// `DELETE /admin/tenants/{tid}/mail-templates/{kind}`: back to the built-in template.
pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, kind)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let tenant = tenant_for(&state, &caller, &Action::UpdateTenantPolicy(&tid), &tid).await?;
    let kind = known_kind(&kind)?;
    state
        .store
        .set_mail_template(&tenant.id, kind, None, now_ms())
        .await
        .map_err(|e| store_failed(&e))?;
    audit(
        &state,
        &caller,
        Some(&tenant.id),
        TENANT_CHANGE,
        json!({"action": "mail_template.reset", "kind": kind}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
