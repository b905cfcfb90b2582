//! `Debug` of the admin API's types that carry a secret (a password, a client secret, a
//! secret's value): whether the secret is there, never what it is.

use super::{
    ClientWithSecret, NewMember, NewProvider, PasswordReset, ProviderUpdate, SecretRead,
    SecretValue,
};

/// How a secret field shows in `Debug`: whether it is there, never what it is.
struct Redacted(bool);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "None" })
    }
}

impl std::fmt::Debug for NewMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMember")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password", &Redacted(self.password.is_some()))
            .field("roles", &self.roles)
            .finish()
    }
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("password", &Redacted(true))
            .finish()
    }
}

impl std::fmt::Debug for ClientWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWithSecret")
            .field("client", &self.client)
            .field("client_secret", &Redacted(self.client_secret.is_some()))
            .finish()
    }
}

impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted(self.client_secret.is_some()))
            .field("scopes", &self.scopes)
            .field("enabled", &self.enabled)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

impl std::fmt::Debug for ProviderUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderUpdate")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &Redacted(self.client_secret.is_some()))
            .field("remove_secret", &self.remove_secret)
            .field("scopes", &self.scopes)
            .field("enabled", &self.enabled)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &Redacted(true))
            .finish()
    }
}

impl std::fmt::Debug for SecretRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRead")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("value", &Redacted(true))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let reset = PasswordReset {
            password: "hunter2-hunter2".into(),
        };
        let value = SecretValue {
            value: "s3cr3t-value".into(),
        };
        let provider = ProviderUpdate {
            client_secret: Some("provider-secret".into()),
            ..ProviderUpdate::default()
        };
        for shown in [
            format!("{reset:?}"),
            format!("{value:?}"),
            format!("{provider:?}"),
        ] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("s3cr3t"),
                "{shown}"
            );
            assert!(!shown.contains("provider-secret"), "{shown}");
        }
    }
}
