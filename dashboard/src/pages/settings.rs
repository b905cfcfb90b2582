//! Identity settings: a tenant's policy (token lifetimes, session timeout, password minimum
//! length, lockout, MFA required, the browser origins allowed to call its APIs) — editable by platform admins for every tenant and by a
//! tenant's Owners and Admins for their own (identity refuses them anything but the policy) —
//! and the key rotation policy (platform admins read it).

use axum::extract::Query;
use axum::response::Response;
use axum::routing::get;
use leptos::prelude::*;
use reqwest::Method;
use serde::Deserialize;
use tansu_shared::admin_api::{KeyPolicy, Tenant, TenantPolicy, TenantUpdate};
use tansu_shared::routes::Routes;

use crate::AppState;
use crate::action::{Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::{SETTINGS, notice};
use crate::page::AdminSession;
use crate::pages::keys::key_policy_view;
use crate::scope::{form_tenant, tenant_scope};
use crate::widgets::{choose_tenant, hidden, urlencode};

pub fn routes() -> Routes<AppState> {
    Routes::new().route("/settings", get(settings).post(save_settings))
}

#[derive(Deserialize)]
struct SettingsQuery {
    #[serde(default)]
    tenant: String,
}

async fn settings(
    admin: AdminSession,
    Query(q): Query<SettingsQuery>,
) -> Result<Response, PageError> {
    settings_page(&admin, &q.tenant, Outcome::none()).await
}

async fn settings_page(
    admin: &AdminSession,
    tenant: &str,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let mut scope = tenant_scope(admin, tenant, SETTINGS).await?;
    let header = scope.header();
    // The key rotation policy is the service's (platform admins read it).
    let keys = if admin.is_platform() {
        match admin
            .identity()
            .get::<KeyPolicy>("admin/keys/policies")
            .await
        {
            Ok(p) => key_policy_view(admin.base(), &p),
            Err(e) => notice("error", format!("The key policy is unavailable: {e}")),
        }
    } else {
        notice(
            "",
            "Signing keys and their rotation are managed by the platform administrators.".into(),
        )
    };
    let body = match &scope.tenant {
        Some(t) => view(admin.base(), admin.csrf(), t, keys),
        None => (
            choose_tenant(),
            view! { <h2>"Signing key rotation"</h2> },
            keys,
        )
            .into_any(),
    };
    let content = (outcome.message, header, body).into_any();
    Ok(admin.render_with(
        SETTINGS.active,
        SETTINGS.title,
        content,
        outcome.status,
        None,
    ))
}

/// The policy form's fields (numbers as typed; empty optional ones are "none").
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    access_token_lifetime_secs: String,
    #[serde(default)]
    refresh_token_lifetime_secs: String,
    #[serde(default)]
    session_timeout_secs: String,
    #[serde(default)]
    password_min_length: String,
    #[serde(default)]
    lockout_threshold: String,
    #[serde(default)]
    lockout_duration_secs: String,
    #[serde(default)]
    mfa_required: String,
    #[serde(default)]
    passkeys_required: String,
    #[serde(default)]
    email_verification_required: String,
    #[serde(default)]
    self_service_deletion: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    logo_url: String,
    #[serde(default)]
    primary_colour: String,
    /// One origin per line (identity checks each).
    #[serde(default)]
    allowed_origins: String,
}

/// The policy of the form: empty optional numbers are none; bad numbers are problems.
fn policy_of(f: &PolicyForm) -> Result<TenantPolicy, Vec<String>> {
    let mut problems = Vec::new();
    let mut optional = |key: &str, raw: &str| -> Option<u64> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        raw.parse()
            .map_err(|_| problems.push(format!("{key}: a whole number")))
            .ok()
    };
    let access = optional("access_token_lifetime_secs", &f.access_token_lifetime_secs);
    let refresh = optional(
        "refresh_token_lifetime_secs",
        &f.refresh_token_lifetime_secs,
    );
    let session = optional("session_timeout_secs", &f.session_timeout_secs);
    let mut required = |key: &str, raw: &str| -> u64 {
        match raw.trim() {
            "" => {
                problems.push(format!("{key}: required"));
                0
            }
            raw => raw.parse().unwrap_or_else(|_| {
                problems.push(format!("{key}: a whole number"));
                0
            }),
        }
    };
    let min_length = required("password_min_length", &f.password_min_length);
    let threshold = required("lockout_threshold", &f.lockout_threshold);
    let duration = required("lockout_duration_secs", &f.lockout_duration_secs);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(TenantPolicy {
        access_token_lifetime_secs: access,
        refresh_token_lifetime_secs: refresh,
        session_timeout_secs: session,
        password_min_length: usize::try_from(min_length).unwrap_or(usize::MAX),
        lockout_threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
        lockout_duration_secs: duration,
        mfa_required: f.mfa_required == "yes",
        passkeys_required: f.passkeys_required == "yes",
        email_verification_required: f.email_verification_required == "yes",
        self_service_deletion: f.self_service_deletion == "yes",
        display_name: Some(f.display_name.trim().to_owned()).filter(|v| !v.is_empty()),
        logo_url: Some(f.logo_url.trim().to_owned()).filter(|v| !v.is_empty()),
        primary_colour: Some(f.primary_colour.trim().to_owned()).filter(|v| !v.is_empty()),
        // Not on the form: kept from the stored policy by the caller.
        token_exchange: Vec::new(),
        allowed_origins: f
            .allowed_origins
            .split(['\n', '\r', ' ', ','])
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Saves a tenant's policy: platform admins for any tenant, tenant admins for their own
/// (identity allows both, and refuses a tenant admin anything but the policy).
async fn save_settings(form: CsrfForm<PolicyForm>) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, SETTINGS.active)?;
    let outcome = match policy_of(f) {
        Err(problems) => {
            Outcome::refused(format!("The policy was not saved: {}", problems.join("; ")))
        }
        Ok(mut policy) => {
            // What the form does not show stays as stored.
            let path = format!("admin/tenants/{}", urlencode(&tid));
            let saved = match admin.identity().get::<Tenant>(&path).await {
                Err(e) => Err(e),
                Ok(current) => {
                    policy.token_exchange = current.policy.token_exchange;
                    let update = TenantUpdate {
                        policy: Some(policy),
                        ..TenantUpdate::default()
                    };
                    admin
                        .identity()
                        .call::<_, Tenant>(Method::PATCH, &path, Some(&update))
                        .await
                }
            };
            outcome(admin, SETTINGS, "Saving the policy", saved, |t| {
                format!("The policy of {} was saved.", t.slug)
            })?
        }
    };
    settings_page(admin, &tid, outcome).await
}

/// The tenant's policy form (platform admins, and the tenant's own Owners and Admins).
fn view(base: &str, csrf: &str, tenant: &Tenant, keys: AnyView) -> AnyView {
    let p = &tenant.policy;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let values = [
        (
            "access_token_lifetime_secs",
            opt(p.access_token_lifetime_secs),
        ),
        (
            "refresh_token_lifetime_secs",
            opt(p.refresh_token_lifetime_secs),
        ),
        ("session_timeout_secs", opt(p.session_timeout_secs)),
        ("password_min_length", p.password_min_length.to_string()),
        ("lockout_threshold", p.lockout_threshold.to_string()),
        ("lockout_duration_secs", p.lockout_duration_secs.to_string()),
        ("display_name", p.display_name.clone().unwrap_or_default()),
        ("logo_url", p.logo_url.clone().unwrap_or_default()),
        (
            "primary_colour",
            p.primary_colour.clone().unwrap_or_default(),
        ),
    ];
    let value = move |id: &str| {
        values
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let field = |id: &'static str, label: &'static str, hint: &'static str| {
        view! {
            <label for=id>{label}</label>
            <input type="number" id=id name=id min="0" value=value(id)/>
            <span class="muted">{hint}</span>
        }
    };
    let text = |id: &'static str, label: &'static str, hint: &'static str| {
        view! {
            <label for=id>{label}</label>
            <input type="text" id=id name=id value=value(id)/>
            <span class="muted">{hint}</span>
        }
    };
    view! {
        <form class="card" method="post" action=format!("{base}settings")>
            {hidden("csrf", csrf)}
            {hidden("tenant", &tenant.id)}
            <h2>"Tokens and sessions"</h2>
            {field("access_token_lifetime_secs", "Access token lifetime (seconds)", "empty: the client's or the service default; 30 s – 1 day")}
            {field("refresh_token_lifetime_secs", "Refresh token lifetime (seconds)", "empty: the service default; 60 s – 90 days")}
            {field("session_timeout_secs", "Session timeout (seconds)", "empty: the service default; 60 s – 30 days")}
            <h2>"Passwords and lockout"</h2>
            {field("password_min_length", "Minimum password length", "8 – 128")}
            {field("lockout_threshold", "Failed sign-ins before a lock", "1 – 100")}
            {field("lockout_duration_secs", "Lock duration (seconds)", "1 s – 1 day")}
            <h2>"Multi-factor authentication"</h2>
            <label><input type="checkbox" id="mfa_required" name="mfa_required" value="yes" checked=p.mfa_required/>" MFA required for this tenant's users"</label>
            <label><input type="checkbox" id="passkeys_required" name="passkeys_required" value="yes" checked=p.passkeys_required/>" Passkeys required: members sign in with a passkey (and add one at their next sign-in)"</label>
            <h2>"Accounts"</h2>
            <label><input type="checkbox" id="email_verification_required" name="email_verification_required" value="yes" checked=p.email_verification_required/>" Members confirm their email address before they sign in"</label>
            <label><input type="checkbox" id="self_service_deletion" name="self_service_deletion" value="yes" checked=p.self_service_deletion/>" Members may delete their own account"</label>
            <h2>"Branding of the sign-in and account pages"</h2>
            {text("display_name", "Display name", "empty: the tenant's name")}
            {text("logo_url", "Logo URL", "https only; empty: no logo")}
            {text("primary_colour", "Primary colour", "#rrggbb; empty: the platform's blue")}
            <h2>"Browser apps"</h2>
            <label for="allowed_origins">"Allowed origins"</label>
            <textarea id="allowed_origins" name="allowed_origins" rows="3">{p.allowed_origins.join("\n")}</textarea>
            <span class="muted">"one per line, like https://app.example: pages on these origins may call this tenant's database and storage APIs (CORS)"</span>
            <p><button type="submit" id="save-policy">"Save policy"</button></p>
        </form>
        <h2>"Signing key rotation"</h2>
        {keys}
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_form_values() {
        let f = PolicyForm {
            access_token_lifetime_secs: String::new(),
            refresh_token_lifetime_secs: "3600".into(),
            session_timeout_secs: String::new(),
            password_min_length: "14".into(),
            lockout_threshold: "5".into(),
            lockout_duration_secs: "900".into(),
            mfa_required: "yes".into(),
            ..PolicyForm::default()
        };
        let p = policy_of(&f).unwrap();
        assert_eq!(p.access_token_lifetime_secs, None);
        assert_eq!(p.refresh_token_lifetime_secs, Some(3600));
        assert_eq!(p.password_min_length, 14);
        assert!(p.mfa_required);
        let with_origins = PolicyForm {
            allowed_origins: "https://a.example\r\nhttp://127.0.0.1:9000\n\n".into(),
            ..PolicyForm::default()
        };
        let with_origins = PolicyForm {
            password_min_length: "12".into(),
            lockout_threshold: "5".into(),
            lockout_duration_secs: "900".into(),
            ..with_origins
        };
        assert_eq!(
            policy_of(&with_origins).unwrap().allowed_origins,
            ["https://a.example", "http://127.0.0.1:9000"]
        );
        let bad = PolicyForm {
            lockout_threshold: "-1".into(),
            password_min_length: String::new(),
            ..f
        };
        assert_eq!(policy_of(&bad).unwrap_err().len(), 2);
    }
}
