//! The messages' wording: one built-in template per kind (its words in [`crate::messages`],
//! English shipped), which a tenant may replace
//! with its own (`mail_templates`). A template is a subject and a plain-text body with
//! `{{name}}` placeholders: `{{product}}` (the tenant's name, or Tansu), `{{email}}`,
//! `{{link}}`, `{{minutes}}` (how long the link works) and `{{device}}` (the browser and network
//! of a sign-in, in words the service chose: never text a request sent).

use super::Content;
use crate::messages::Lang;
use crate::store::{Store, StoreResult};

pub const PASSWORD_RESET: &str = "password_reset";
pub const EMAIL_VERIFICATION: &str = "email_verification";
pub const PASSWORD_CHANGED: &str = "password_changed";
pub const NEW_SIGN_IN: &str = "new_sign_in";

/// Every message kind.
pub const KINDS: [&str; 4] = [
    PASSWORD_RESET,
    EMAIL_VERIFICATION,
    PASSWORD_CHANGED,
    NEW_SIGN_IN,
];

/// The built-in (subject, body) of a kind, in English.
pub fn builtin(kind: &str) -> Option<(&'static str, &'static str)> {
    builtin_in(Lang::default(), kind)
}

/// The built-in (subject, body) of a kind in a language (from [`crate::messages`]).
pub fn builtin_in(lang: Lang, kind: &str) -> Option<(&'static str, &'static str)> {
    if !KINDS.contains(&kind) {
        return None;
    }
    let subject = lang.get(&format!("mail.{kind}.subject"));
    let body = lang.get(&format!("mail.{kind}.body"));
    (!subject.is_empty() && !body.is_empty()).then_some((subject, body))
}

/// The values a template's placeholders take.
#[derive(Debug, Default)]
pub struct Values<'a> {
    pub product: &'a str,
    pub email: &'a str,
    pub link: &'a str,
    pub minutes: u64,
    pub device: &'a str,
}

/// The message of `kind` for a tenant (its own template if it has one), filled in.
pub async fn render(
    store: &Store,
    tenant_id: Option<&str>,
    kind: &str,
    values: &Values<'_>,
) -> StoreResult<Content> {
    let own = match tenant_id {
        Some(t) => store.mail_template(t, kind).await?,
        None => None,
    };
    let (subject, body) = match &own {
        Some((s, b)) => (s.as_str(), b.as_str()),
        None => builtin(kind).unwrap_or(("{{product}}", "")),
    };
    Ok(Content {
        // A subject is one line, whatever a template or a name holds.
        subject: fill(subject, values).replace(['\r', '\n'], " "),
        text: fill(body, values),
    })
}

fn fill(template: &str, v: &Values<'_>) -> String {
    let minutes = v.minutes.to_string();
    let product = if v.product.is_empty() {
        "Tansu"
    } else {
        v.product
    };
    template
        .replace("{{product}}", product)
        .replace("{{email}}", v.email)
        .replace("{{link}}", v.link)
        .replace("{{minutes}}", &minutes)
        .replace("{{device}}", v.device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_template_with_its_link() {
        for kind in KINDS {
            let (_, body) = builtin(kind).unwrap();
            assert!(body.contains("{{link}}"), "{kind}");
        }
        let v = Values {
            product: "",
            email: "a@b.c",
            link: "https://x/y",
            minutes: 30,
            device: "",
        };
        let text = fill(builtin(PASSWORD_RESET).unwrap().1, &v);
        assert!(
            text.contains("https://x/y") && text.contains("30 minutes") && text.contains("Tansu")
        );
    }
}
