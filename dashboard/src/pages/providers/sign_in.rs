//! A provider's sign-in settings: accounts created on a first sign-in, whether the provider's
//! verified addresses are trusted, the claims read, upstream groups to tenant roles, allowed and
//! home-realm domains — the form, what it shows, and saving it.

use axum::extract::Path;
use axum::response::Response;
use leptos::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use tansu_shared::admin_api::{Provider, ProviderUpdate, SignInSettings};

use super::{edit_page, patch_provider};
use crate::action::{Outcome, outcome};
use crate::error::PageError;
use crate::extract::CsrfForm;
use crate::frame::PROVIDERS;
use crate::scope::form_tenant;
use crate::widgets::{hidden, urlencode};

/// The sign-in settings' form fields (lists as typed: one domain or mapping per line).
#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    auto_provision: String,
    #[serde(default)]
    trust_email: String,
    #[serde(default)]
    email_claim: String,
    #[serde(default)]
    name_claim: String,
    #[serde(default)]
    groups_claim: String,
    /// One `group = Role, Role` per line.
    #[serde(default)]
    group_roles: String,
    #[serde(default)]
    allowed_domains: String,
    #[serde(default)]
    home_domains: String,
}

/// The settings of the form; lines of the group mapping that are not `group = roles` are
/// problems (split at the last `=`: a group may be a distinguished name, roles have none) (identity checks the rest: claim names, domains, roles, never Owner).
fn sign_in_of(f: &SignInForm) -> Result<SignInSettings, Vec<String>> {
    let claim = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let list = |v: &str| -> Vec<String> {
        v.split(['\n', '\r', ' ', ','])
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut problems = Vec::new();
    let mut group_roles: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in f
        .group_roles
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let Some((group, roles)) = line.rsplit_once('=') else {
            problems.push(format!(
                "group_roles: \"{line}\" is not \"group = Role, Role\""
            ));
            continue;
        };
        let roles: Vec<String> = roles
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if group.trim().is_empty() || roles.is_empty() {
            problems.push(format!("group_roles: \"{line}\" names no group or no role"));
            continue;
        }
        group_roles
            .entry(group.trim().to_owned())
            .or_default()
            .extend(roles);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SignInSettings {
        auto_provision: f.auto_provision == "yes",
        trust_email: f.trust_email == "yes",
        email_claim: claim(&f.email_claim),
        name_claim: claim(&f.name_claim),
        groups_claim: claim(&f.groups_claim),
        group_roles,
        allowed_domains: list(&f.allowed_domains),
        home_domains: list(&f.home_domains),
    })
}

/// What the sign-in settings' form shows: the stored settings, or what was typed.
pub(super) struct SignInValues {
    auto_provision: bool,
    trust_email: bool,
    email_claim: String,
    name_claim: String,
    groups_claim: String,
    group_roles: String,
    allowed_domains: String,
    home_domains: String,
}

impl SignInValues {
    pub(super) fn of(s: &SignInSettings) -> Self {
        Self {
            auto_provision: s.auto_provision,
            trust_email: s.trust_email,
            email_claim: s.email_claim.clone().unwrap_or_default(),
            name_claim: s.name_claim.clone().unwrap_or_default(),
            groups_claim: s.groups_claim.clone().unwrap_or_default(),
            group_roles: s
                .group_roles
                .iter()
                .map(|(g, r)| format!("{g} = {}", r.join(", ")))
                .collect::<Vec<_>>()
                .join("\n"),
            allowed_domains: s.allowed_domains.join("\n"),
            home_domains: s.home_domains.join("\n"),
        }
    }

    pub(super) fn typed(f: &SignInForm) -> Self {
        Self {
            auto_provision: f.auto_provision == "yes",
            trust_email: f.trust_email == "yes",
            email_claim: f.email_claim.clone(),
            name_claim: f.name_claim.clone(),
            groups_claim: f.groups_claim.clone(),
            group_roles: f.group_roles.clone(),
            allowed_domains: f.allowed_domains.clone(),
            home_domains: f.home_domains.clone(),
        }
    }
}

/// Saves a provider's sign-in settings (as a whole, as identity's `PATCH` replaces them) and
/// shows its edit page again with the outcome.
pub(super) async fn save_sign_in(
    Path(id): Path<String>,
    form: CsrfForm<SignInForm>,
) -> Result<Response, PageError> {
    let (admin, f) = (&form.admin, &form.fields);
    let tid = form_tenant(admin, &f.tenant, PROVIDERS.active)?;
    let outcome = match sign_in_of(f) {
        Err(problems) => Outcome::refused(format!(
            "The sign-in settings were not saved: {}",
            problems.join("; ")
        )),
        Ok(settings) => {
            let update = ProviderUpdate {
                sign_in: Some(settings),
                ..ProviderUpdate::default()
            };
            let saved = patch_provider(admin, &tid, &id, &update).await;
            outcome(
                admin,
                PROVIDERS,
                "Saving the sign-in settings",
                saved,
                |p| format!("The sign-in settings of {} were saved.", p.name),
            )?
        }
    };
    // A refused form keeps what was typed.
    let typed = outcome.status.is_client_error().then_some(f);
    edit_page(admin, &tid, &id, outcome, typed).await
}

/// A provider's sign-in settings form.
pub(super) fn sign_in_form(
    base: &str,
    csrf: &str,
    tenant: &str,
    p: &Provider,
    v: &SignInValues,
) -> AnyView {
    let action = format!("{base}admin/providers/{}/sign-in", urlencode(&p.id));
    let text = |id: &'static str, label: &'static str, value: &str, hint: &'static str| {
        let hint_id = format!("{id}-hint");
        view! {
            <label for=id>{label}</label>
            <input type="text" id=id name=id maxlength="64" value=value.to_owned() aria-describedby=hint_id.clone()/>
            <span class="muted" id=hint_id>{hint}</span>
        }
    };
    let lines = |id: &'static str, label: &'static str, value: &str, hint: &'static str| {
        let hint_id = format!("{id}-hint");
        view! {
            <label for=id>{label}</label>
            <textarea id=id name=id rows="3" aria-describedby=hint_id.clone()>{value.to_owned()}</textarea>
            <span class="muted" id=hint_id>{hint}</span>
        }
    };
    view! {
        <h2 id="sign-in-settings">"Sign-in settings"</h2>
        <form class="card" method="post" action=action aria-labelledby="sign-in-settings">
            {hidden("csrf", csrf)}
            {hidden("tenant", tenant)}
            <h3>"Accounts"</h3>
            <label><input type="checkbox" id="auto_provision" name="auto_provision" value="yes" checked=v.auto_provision/>" Create an account (a member of this tenant) on the first sign-in of someone without one"</label>
            <label><input type="checkbox" id="trust_email" name="trust_email" value="yes" checked=v.trust_email/>" Trust the addresses this provider says it verified: a new account's address counts as verified, an existing account of the address may be linked after its password, and the allowed domains accept it (off: no address of this provider is taken as verified)"</label>
            <h3>"Claims of the ID token"</h3>
            {text("email_claim", "Email claim", &v.email_claim, "empty: email")}
            {text("name_claim", "Name claim", &v.name_claim, "empty: name")}
            {text("groups_claim", "Groups claim", &v.groups_claim, "empty: groups")}
            {lines("group_roles", "Upstream groups to tenant roles", &v.group_roles, "one per line, like: staff = Admin, Support. A provider never gives the Owner role; members without a mapped group get User")}
            <h3>"Domains"</h3>
            {lines("allowed_domains", "Allowed domains", &v.allowed_domains, "one per line; empty: every address. Only an address this provider verified, with its addresses trusted, proves its domain")}
            {lines("home_domains", "Home-realm domains", &v.home_domains, "one per line: an address of these domains typed at the login page goes to this provider")}
            <p><button type="submit" id="save-sign-in">"Save sign-in settings"</button></p>
        </form>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_form_values() {
        let f = SignInForm {
            auto_provision: "yes".into(),
            trust_email: "yes".into(),
            email_claim: " mail ".into(),
            group_roles: "staff = Admin, Support\r\n\nops=Support\ncn=x,ou=groups = Admin\n".into(),
            allowed_domains: "corp.example\r\nexample.org".into(),
            home_domains: "corp.example".into(),
            ..SignInForm::default()
        };
        let s = sign_in_of(&f).unwrap();
        assert!(s.auto_provision && s.trust_email);
        assert_eq!(s.email_claim.as_deref(), Some("mail"));
        assert_eq!(s.name_claim, None);
        assert_eq!(s.group_roles["staff"], ["Admin", "Support"]);
        assert_eq!(s.group_roles["ops"], ["Support"]);
        assert_eq!(s.group_roles["cn=x,ou=groups"], ["Admin"]);
        assert_eq!(s.allowed_domains, ["corp.example", "example.org"]);
        // Shown again, the stored settings read back as the same form.
        let shown = SignInValues::of(&s);
        let again = SignInForm {
            auto_provision: "yes".into(),
            trust_email: "yes".into(),
            email_claim: shown.email_claim,
            group_roles: shown.group_roles,
            allowed_domains: shown.allowed_domains,
            home_domains: shown.home_domains,
            ..SignInForm::default()
        };
        assert_eq!(sign_in_of(&again).unwrap(), s);
        let bad = SignInForm {
            group_roles: "staff\n= Admin\nops = ".into(),
            ..SignInForm::default()
        };
        assert_eq!(sign_in_of(&bad).unwrap_err().len(), 3);
        assert!(!sign_in_of(&SignInForm::default()).unwrap().trust_email);
    }
}
