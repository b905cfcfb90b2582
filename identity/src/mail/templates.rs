//! The messages' wording: one built-in English template per kind, which a tenant may replace
//! with its own (`mail_templates`). A template is a subject and a plain-text body with
//! `{{name}}` placeholders: `{{product}}` (the tenant's name, or Tansu), `{{email}}`,
//! `{{link}}` and `{{minutes}}` (how long the link works).

use super::Content;
use crate::store::{Store, StoreResult};

pub const PASSWORD_RESET: &str = "password_reset";
pub const EMAIL_VERIFICATION: &str = "email_verification";
pub const PASSWORD_CHANGED: &str = "password_changed";

/// Every message kind.
pub const KINDS: [&str; 3] = [PASSWORD_RESET, EMAIL_VERIFICATION, PASSWORD_CHANGED];

/// The built-in (subject, body) of a kind.
pub fn builtin(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        PASSWORD_RESET => (
            "Reset your {{product}} password",
            "Someone asked to reset the password of the {{product}} account {{email}}.\n\n\
             To choose a new password, open this link within {{minutes}} minutes:\n\n{{link}}\n\n\
             The link works once. If you did not ask for it, ignore this message: your password \
             stays as it is.\n",
        ),
        EMAIL_VERIFICATION => (
            "Confirm your email address for {{product}}",
            "Confirm that {{email}} is your address for {{product}} by opening this link \
             within {{minutes}} minutes:\n\n{{link}}\n\n\
             If you did not create an account or change your address, ignore this message.\n",
        ),
        PASSWORD_CHANGED => (
            "Your {{product}} password was changed",
            "The password of the {{product}} account {{email}} was just changed, and every \
             other session was signed out.\n\n\
             If this was not you, reset your password at once:\n\n{{link}}\n",
        ),
        _ => return None,
    })
}

/// The values a template's placeholders take.
#[derive(Debug, Default)]
pub struct Values<'a> {
    pub product: &'a str,
    pub email: &'a str,
    pub link: &'a str,
    pub minutes: u64,
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
        };
        let text = fill(builtin(PASSWORD_RESET).unwrap().1, &v);
        assert!(
            text.contains("https://x/y") && text.contains("30 minutes") && text.contains("Tansu")
        );
    }
}
