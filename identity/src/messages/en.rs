//! English: every message id of the service (the fallback of every other language).

use super::Catalogue;

pub static EN: Catalogue = Catalogue {
    tag: "en",
    messages: &[
        // Mail: subject and body per kind ({{…}} are the template placeholders, see
        // crate::mail::templates).
        (
            "mail.password_reset.subject",
            "Reset your {{product}} password",
        ),
        (
            "mail.password_reset.body",
            "Someone asked to reset the password of the {{product}} account {{email}}.\n\n\
             To choose a new password, open this link within {{minutes}} minutes:\n\n{{link}}\n\n\
             The link works once. If you did not ask for it, ignore this message: your password \
             stays as it is.\n",
        ),
        (
            "mail.email_verification.subject",
            "Confirm your email address for {{product}}",
        ),
        (
            "mail.email_verification.body",
            "Confirm that {{email}} is your address for {{product}} by opening this link \
             within {{minutes}} minutes:\n\n{{link}}\n\n\
             If you did not create an account or change your address, ignore this message.\n",
        ),
        (
            "mail.password_changed.subject",
            "Your {{product}} password was changed",
        ),
        (
            "mail.password_changed.body",
            "The password of the {{product}} account {{email}} was just changed, and every \
             other session was signed out.\n\n\
             If this was not you, reset your password at once:\n\n{{link}}\n",
        ),
        (
            "mail.new_sign_in.subject",
            "New sign-in to your {{product}} account",
        ),
        (
            "mail.new_sign_in.body",
            "The {{product}} account {{email}} was just signed in to from a browser it had not \
             used before: {{device}}.\n\n\
             If this was you, there is nothing to do. If it was not, sign out that session and \
             change your password here:\n\n{{link}}\n",
        ),
        // The account pages.
        ("account.nav", "Account"),
        ("account.nav.account", "Account"),
        ("account.nav.password", "Password"),
        ("account.nav.sessions", "Sessions and apps"),
        ("account.nav.mfa", "Two-step verification"),
        ("account.nav.passkeys", "Passkeys"),
        ("account.nav.invitations", "Invitations"),
        ("account.title", "Your account"),
        ("account.email", "Email"),
        ("account.name", "Name"),
        ("account.signed_in_to", "Signed in to"),
        ("account.the_platform", "the platform"),
        ("account.confirmed", "confirmed {date}"),
        ("account.not_confirmed", "not confirmed"),
        ("account.send_confirmation", "Send a confirmation link"),
        ("account.change_email", "Change your email address"),
        (
            "account.change_email.help",
            "A link goes to the new address; your account moves there once you open it.",
        ),
        ("account.new_email", "New email address"),
        ("account.current_password", "Current password"),
        ("account.send_link", "Send the link"),
        ("account.data", "Your data"),
        ("account.export", "Export my data (JSON)"),
        ("account.delete", "Delete my account"),
        ("password.title", "Change your password"),
        (
            "password.help",
            "Every other session is signed out and every app must sign in again.",
        ),
        ("password.new", "New password"),
        ("password.again", "New password again"),
        ("password.submit", "Change password"),
        ("forgot.title", "Reset your password"),
        (
            "forgot.help",
            "Enter the email address of your account. If an account has it, we send it a link \
             to choose a new password.",
        ),
        (
            "forgot.requested",
            "If an account has this address, a link to reset its password is on its way. Check \
             your mail; the link works once.",
        ),
        (
            "forgot.too_many",
            "Too many requests from your network. Wait a while and retry.",
        ),
    ],
};
