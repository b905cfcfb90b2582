//! Dev mode's seeded accounts: the platform admin `admin@tansu.local`, the dashboard's client
//! and the provisioning client registration uses to call database-svc.

use crate::state::{DEV_ADMIN_EMAIL, DEV_CLIENT_ID, Services};
use crate::store::{self, now_ms};
use crate::{clients, crypto, scopes};

impl Services {
    /// Dev mode: the platform admin `admin@tansu.local`. Its password comes from
    /// `dev_admin_password`, else `TANSU_DEV_ADMIN_PASSWORD`, else is generated once and printed.
    pub(crate) async fn seed_dev_admin(&self) -> anyhow::Result<()> {
        if let Some(existing) = self.store.user_by_email(DEV_ADMIN_EMAIL).await? {
            if !existing.platform_admin {
                self.store.set_platform_admin(&existing.id, true).await?;
            }
            return Ok(());
        }
        let configured = self.config.dev_admin_password.expose().to_owned();
        let configured = if configured.is_empty() {
            std::env::var("TANSU_DEV_ADMIN_PASSWORD").unwrap_or_default()
        } else {
            configured
        };
        let generated = configured.is_empty();
        let password = if generated {
            crypto::random_secret()?
        } else {
            configured
        };
        let now = now_ms();
        let user = store::users::UserRow {
            id: store::new_id(),
            email: DEV_ADMIN_EMAIL.into(),
            name: "Platform admin (dev)".into(),
            password_hash: self.passwords.hash(&password).await?,
            tenant_id: None,
            roles: vec!["Admin".into()],
            disabled: false,
            platform_admin: true,
            home_tenant_id: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if generated {
            // Shown once, on the console, by design; never through the logger.
            eprintln!(
                "tansu-identity (dev mode): user `{DEV_ADMIN_EMAIL}` created with password {password}\n  (set TANSU_DEV_ADMIN_PASSWORD to choose it; it will not be shown again)"
            );
        }
        Ok(())
    }

    /// Dev mode: the `tansu-dashboard` client with every scope, including `admin.full`
    /// (which only platform admins' tokens receive), for client credentials and for the
    /// dashboard's sign-in (code + refresh, `<dev_dashboard_url>callback`, post-logout
    /// `<dev_dashboard_url>signed-out`). Its secret comes from `dev_client_secret`, or is
    /// generated once, printed to stderr and written to `<data_dir>/tansu-dashboard.secret`.
    pub(crate) async fn seed_dev(&self) -> anyhow::Result<()> {
        let dashboard = self.config.dev_dashboard_url.as_str();
        let (redirects, post_logout) = if dashboard.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                vec![format!("{dashboard}callback")],
                vec![format!("{dashboard}signed-out")],
            )
        };
        let template = store::clients::ClientRow {
            id: store::new_id(),
            client_id: DEV_CLIENT_ID.into(),
            tenant_id: None,
            name: "Tansu dashboard (dev)".into(),
            confidential: true,
            secret_hash: None,
            grant_types: vec![
                clients::GRANT_CLIENT_CREDENTIALS.into(),
                clients::GRANT_AUTHORIZATION_CODE.into(),
                clients::GRANT_REFRESH_TOKEN.into(),
            ],
            scopes: scopes::known(true).into_iter().map(str::to_owned).collect(),
            redirect_uris: redirects,
            post_logout_redirect_uris: post_logout,
            jwks: None,
            first_party: true,
            access_token_lifetime_secs: None,
            signing_alg: self.config.default_alg().as_str().into(),
            allowed_origins: Vec::new(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        self.seed_client(
            template,
            self.config.dev_client_secret.expose(),
            "tansu-dashboard.secret",
        )
        .await
        .map(|_| ())
    }

    /// Dev mode: the provisioning client identity's registration uses to call database-svc
    /// (client credentials, scope `db.provision` only). Returns its secret.
    pub(crate) async fn seed_dev_provisioner(&self) -> anyhow::Result<Option<String>> {
        let template = store::clients::ClientRow {
            id: store::new_id(),
            client_id: self.config.provisioning_client_id.clone(),
            tenant_id: None,
            name: "Tansu identity: tenant provisioning (dev)".into(),
            confidential: true,
            secret_hash: None,
            grant_types: vec![clients::GRANT_CLIENT_CREDENTIALS.into()],
            scopes: vec!["db.provision".into()],
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            jwks: None,
            first_party: true,
            access_token_lifetime_secs: None,
            signing_alg: self.config.default_alg().as_str().into(),
            allowed_origins: Vec::new(),
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        self.seed_client(
            template,
            self.config.provisioning_client_secret.expose(),
            "tansu-provisioner.secret",
        )
        .await
    }

    /// Creates a dev client from `template`, or brings an existing one up to it (grants,
    /// scopes and URIs are added, never removed; a configured secret replaces the stored
    /// one). Without a configured secret, a new client's secret is generated, printed once
    /// and written to `<data_dir>/<secret_file>` (0600). Returns the secret when known.
    pub(crate) async fn seed_client(
        &self,
        template: store::clients::ClientRow,
        configured: &str,
        secret_file: &str,
    ) -> anyhow::Result<Option<String>> {
        let client_id = template.client_id.clone();
        let path = self.config.data_dir.join(secret_file);
        let existing = self.store.client_by_client_id(&client_id).await?;
        let now = now_ms();
        match existing {
            Some(mut row) => {
                let mut changed = false;
                if !configured.is_empty()
                    && !row
                        .secret_hash
                        .as_deref()
                        .is_some_and(|h| clients::secret_matches(configured, h))
                {
                    row.secret_hash = Some(clients::hash_secret(configured));
                    changed = true;
                    tracing::info!(client_id = %client_id, "dev client secret set from config");
                }
                let merge = |have: &mut Vec<String>, want: &[String], changed: &mut bool| {
                    for w in want {
                        if !have.contains(w) {
                            have.push(w.clone());
                            *changed = true;
                        }
                    }
                };
                merge(&mut row.grant_types, &template.grant_types, &mut changed);
                merge(&mut row.scopes, &template.scopes, &mut changed);
                merge(
                    &mut row.redirect_uris,
                    &template.redirect_uris,
                    &mut changed,
                );
                merge(
                    &mut row.post_logout_redirect_uris,
                    &template.post_logout_redirect_uris,
                    &mut changed,
                );
                if template.first_party && !row.first_party {
                    row.first_party = true;
                    changed = true;
                }
                if changed {
                    row.updated_at = now;
                    self.store.update_client(&row).await?;
                }
                if !configured.is_empty() {
                    return Ok(Some(configured.to_owned()));
                }
                Ok(std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_owned()))
            }
            None => {
                let generated = configured.is_empty();
                let secret = if generated {
                    crypto::random_secret()?
                } else {
                    configured.to_owned()
                };
                let row = store::clients::ClientRow {
                    secret_hash: Some(clients::hash_secret(&secret)),
                    ..template
                };
                match self.store.insert_client(&row).await {
                    Ok(()) => {}
                    // Another replica seeded it at the same moment.
                    Err(e) if e.is_unique_violation() => {
                        return Ok(if generated {
                            std::fs::read_to_string(&path)
                                .ok()
                                .map(|s| s.trim().to_owned())
                        } else {
                            Some(secret)
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
                if generated {
                    let _ = std::fs::remove_file(&path);
                    crypto::write_private_file(&path, format!("{secret}\n").as_bytes())?;
                    // Shown once, on the console, by design; never through the logger.
                    eprintln!(
                        "tansu-identity (dev mode): client `{client_id}` created with secret {secret}\n  (also in {}; it will not be shown again)",
                        path.display()
                    );
                }
                Ok(Some(secret))
            }
        }
    }
}
