//! A provider's sign-in settings ([`crate::store::providers::SignInSettings`]): their
//! validation, and the roles its upstream groups map onto.

use crate::store::providers::ProviderRow;

const MAX_DOMAINS: usize = 50;
const MAX_GROUPS: usize = 100;

/// A domain as a provider's lists hold it: lowercase labels of letters, digits and hyphens.
fn is_domain(d: &str) -> bool {
    d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

pub(super) fn settings_problems(s: &crate::store::providers::SignInSettings) -> Vec<String> {
    let mut v = Vec::new();
    for (what, claim) in [
        ("email_claim", &s.email_claim),
        ("name_claim", &s.name_claim),
        ("groups_claim", &s.groups_claim),
    ] {
        if claim
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > 64 || c.chars().any(char::is_control))
        {
            v.push(format!("sign_in.{what}: 1 to 64 characters"));
        }
    }
    for (what, list) in [
        ("allowed_domains", &s.allowed_domains),
        ("home_domains", &s.home_domains),
    ] {
        if list.len() > MAX_DOMAINS || list.iter().any(|d| !is_domain(d)) {
            v.push(format!(
                "sign_in.{what}: at most {MAX_DOMAINS} lowercase domain names"
            ));
        }
    }
    // The domain is read from an address the provider verified and this tenant trusts;
    // without that trust no address could ever pass, and nobody could sign in.
    if !s.allowed_domains.is_empty() && !s.trust_email {
        v.push(
            "sign_in.allowed_domains: needs sign_in.trust_email (only a verified address \
             proves its domain)"
                .to_owned(),
        );
    }
    if s.group_roles.len() > MAX_GROUPS
        || s.group_roles
            .iter()
            .any(|(g, r)| g.is_empty() || g.len() > 256 || r.len() > 20)
    {
        v.push(format!(
            "sign_in.group_roles: at most {MAX_GROUPS} groups of at most 20 roles"
        ));
    }
    // An upstream group must never make an owner: ownership is given by an owner, here.
    if s.group_roles
        .values()
        .flatten()
        .any(|r| r == crate::tenants::ROLE_OWNER)
    {
        v.push("sign_in.group_roles: the Owner role cannot be given by a provider".to_owned());
    }
    v
}

/// The roles `group_roles` maps onto (to check that they exist in the tenant).
pub(crate) fn mapped_roles(p: &ProviderRow) -> Vec<String> {
    let mut roles: Vec<String> = p.sign_in.group_roles.values().flatten().cloned().collect();
    roles.sort();
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_domains_need_trusted_addresses() {
        let mut s = crate::store::providers::SignInSettings {
            allowed_domains: vec!["corp.example".into()],
            ..Default::default()
        };
        let problems = settings_problems(&s);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("sign_in.allowed_domains: needs sign_in.trust_email")),
            "{problems:?}"
        );
        s.trust_email = true;
        assert!(settings_problems(&s).is_empty());
        s.allowed_domains.clear();
        s.trust_email = false;
        assert!(settings_problems(&s).is_empty());
    }
}
