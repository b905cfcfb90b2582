//! Registration: a new shop is a tenant with its own database and an owner.
//!
//! The flow ([`register`]): validate (email, shop name/slug, the password against the default
//! tenant policy) → refuse a taken email or slug early → Argon2id (bounded pool) → provision the
//! database ([`crate::provisioning`]) → one transaction with the tenant (UUIDv7), its vault
//! (data key + the database descriptor and any scoped credential, sealed), the owner, the
//! `Owner` membership and the tenant's first security events.
//!
//! Atomic from the user's view: before provisioning nothing is written; a failure after it
//! rolls the transaction back and deprovisions the database again (compensation). So a failed
//! attempt leaves no tenant, user, membership, secret or event, and a retry (new tenant id)
//! succeeds and ends with one tenant. Two concurrent registrations of the same email or slug:
//! one commits, the other hits the unique constraint, deprovisions and answers 409.
//!
//! What a refusal reveals: that the email already has an account or the shop address is
//! taken (the user must know to sign in or pick another); never which tenant or user.
//! The form is [`crate::web::registration`]; the JSON APIs [`crate::admin::registrations`].

use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use tansu_shared::Problem;
use zeroize::Zeroizing;

use crate::crypto;
use crate::crypto::MasterKeys;
use crate::events::{self, Meta};
use crate::passwords::Passwords;
use crate::provisioning::Provisioner;
use crate::store::Store;
use crate::store::events::EventRow;
use crate::store::registration::RegistrationRows;
use crate::store::tenants::{MembershipRow, TenantRow};
use crate::store::users::UserRow;
use crate::store::{new_id, now_ms};
use crate::tenants::valid_email;
use crate::tenants::{self, ROLE_OWNER, STATUS_ACTIVE, TenantPolicy};

/// The vault secret holding the database descriptor (JSON).
pub const DATABASE_SECRET: &str = "database";

/// The vault secret holding a scoped database credential, when provisioning returns one.
pub const DATABASE_CREDENTIAL_SECRET: &str = "database-credential";

/// What a registration asks for.
pub struct RegistrationInput {
    pub email: String,
    pub password: Zeroizing<String>,
    pub shop_name: String,
    /// The shop's address; derived from the name when absent.
    pub slug: Option<String>,
    /// The owner's display name.
    pub name: String,
}

/// A completed registration.
#[derive(Debug)]
pub struct Registered {
    pub tenant: TenantRow,
    pub user: UserRow,
}

#[derive(Debug)]
pub enum RegistrationError {
    Invalid(Vec<String>),
    EmailTaken,
    SlugTaken,
    /// Provisioning is not configured or failed; nothing was kept.
    Unavailable(String),
    Internal(String),
}

impl RegistrationError {
    /// The problem+json answer (the JSON APIs).
    pub fn problem(&self) -> Problem {
        match self {
            RegistrationError::Invalid(problems) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid registration",
            )
            .with_detail(problems.join("; "))
            .with_extension("errors", problems.clone()),
            RegistrationError::EmailTaken => Problem::new(
                StatusCode::CONFLICT,
                "email-taken",
                "Email already registered",
            )
            .with_detail("an account with this email exists; sign in instead"),
            RegistrationError::SlugTaken => {
                Problem::new(StatusCode::CONFLICT, "slug-taken", "Shop address taken")
                    .with_detail("choose another shop address (slug)")
            }
            RegistrationError::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "registration-unavailable",
                "Registration unavailable",
            )
            .with_detail("the shop could not be set up right now; nothing was kept; retry later"),
            RegistrationError::Internal(cause) => Problem::internal(cause),
        }
    }

    /// The form's message.
    pub fn message(&self) -> String {
        match self {
            RegistrationError::Invalid(p) => p.join(". "),
            RegistrationError::EmailTaken => {
                "An account with this email already exists. Sign in instead.".into()
            }
            RegistrationError::SlugTaken => {
                "This shop address is taken. Choose another one.".into()
            }
            RegistrationError::Unavailable(_) | RegistrationError::Internal(_) => {
                "Your shop could not be set up right now (nothing was kept). Retry in a moment."
                    .into()
            }
        }
    }

    /// The form's status code.
    pub fn status(&self) -> StatusCode {
        self.problem().status()
    }
}

/// `a-z 0-9 -` from a shop name: "Müller & Söhne GmbH" → "m-ller-s-hne-gmbh".
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(54).collect();
    while out.ends_with('-') {
        out.pop();
    }
    while out.len() < 3 && !out.is_empty() {
        out.push('0');
    }
    if out.is_empty() { "shop".into() } else { out }
}

fn validate(input: &RegistrationInput) -> Vec<String> {
    let mut v = Vec::new();
    if !valid_email(&input.email) {
        v.push("email: a valid address".to_owned());
    }
    if !tenants::valid_name(&input.shop_name) {
        v.push("shop_name: required, at most 200 characters".to_owned());
    }
    if let Some(slug) = &input.slug
        && !tenants::valid_slug(slug)
    {
        v.push("slug: 3 to 63 characters of a-z 0-9 -, not a UUID".to_owned());
    }
    if input.name.chars().count() > 200 || input.name.chars().any(char::is_control) {
        v.push("name: at most 200 characters".to_owned());
    }
    v.extend(tenants::password_problems(
        &input.password,
        &input.email,
        &input.name,
        &TenantPolicy::default(),
    ));
    v
}

/// A failure of the machinery: `Unavailable` (503) when the database is away for now, else
/// `Internal` (500).
fn internal<E: std::fmt::Display + 'static>(e: &E) -> RegistrationError {
    if crate::store::is_unavailable(e) {
        RegistrationError::Unavailable(e.to_string())
    } else {
        RegistrationError::Internal(e.to_string())
    }
}

/// Picks the slug: the given one (must be free), or one derived from the shop name (with a
/// random suffix when the plain one is taken).
async fn choose_slug(
    store: &Store,
    input: &RegistrationInput,
) -> Result<String, RegistrationError> {
    let taken = |slug: String| async move {
        store
            .tenant_by_ref(&slug)
            .await
            .map(|t| t.is_some())
            .map_err(|e| internal(&e))
    };
    if let Some(slug) = &input.slug {
        return if taken(slug.clone()).await? {
            Err(RegistrationError::SlugTaken)
        } else {
            Ok(slug.clone())
        };
    }
    let base = slugify(&input.shop_name);
    if tenants::valid_slug(&base) && !taken(base.clone()).await? {
        return Ok(base);
    }
    for _ in 0..5 {
        let suffix: String = crypto::random_bytes(3)
            .map_err(|e| internal(&e))?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let candidate = format!("{base}-{suffix}");
        if tenants::valid_slug(&candidate) && !taken(candidate.clone()).await? {
            return Ok(candidate);
        }
    }
    Err(RegistrationError::SlugTaken)
}

/// The new tenant's first events, chained from seq 1.
fn first_events(
    meta: &Meta,
    tenant: &TenantRow,
    user: &UserRow,
    actor: &str,
    secrets: &[(String, i64, Vec<u8>)],
) -> Vec<EventRow> {
    let mut details = vec![
        (
            events::TENANT_CHANGE,
            json!({"action": "register", "slug": tenant.slug}),
        ),
        (
            events::USER_CHANGE,
            json!({"action": "register", "user": user.id}),
        ),
        (
            events::ROLE_CHANGE,
            json!({"user": user.id, "roles": [ROLE_OWNER]}),
        ),
    ];
    for (name, version, _) in secrets {
        details.push((
            events::SECRET_WRITE,
            json!({"name": name, "version": version}),
        ));
    }
    let mut out: Vec<EventRow> = Vec::with_capacity(details.len());
    let now = now_ms();
    for (seq, (kind, d)) in (1..).zip(details) {
        let mut row = EventRow {
            id: new_id(),
            tenant_id: tenant.id.clone(),
            seq,
            at: now,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            outcome: "success".into(),
            details: d.to_string(),
            trace_id: meta.trace_id.clone(),
            prev_hash: out.last().map(|e| e.hash.clone()).unwrap_or_default(),
            hash: String::new(),
        };
        row.hash = events::link_hash(&row);
        out.push(row);
    }
    out
}

/// What a registration uses: the store, the password hasher, the master key (the new vault's
/// data key) and the database provisioner (`None`: registration is unavailable).
pub struct Registrar<'a> {
    pub store: &'a Store,
    pub passwords: &'a Passwords,
    pub master: &'a MasterKeys,
    pub provisioner: Option<Arc<dyn Provisioner>>,
}

/// Registers a shop: tenant, database, vault, owner, role, events — all or nothing.
/// `actor`: the platform admin doing it (`None`: the new owner, self-service).
pub async fn register(
    with: &Registrar<'_>,
    mut input: RegistrationInput,
    meta: &Meta,
    actor: Option<String>,
) -> Result<Registered, RegistrationError> {
    input.email = input.email.trim().to_lowercase();
    input.shop_name = input.shop_name.trim().to_owned();
    input.name = input.name.trim().to_owned();
    input.slug = input
        .slug
        .take()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let problems = validate(&input);
    if !problems.is_empty() {
        return Err(RegistrationError::Invalid(problems));
    }
    let Some(provisioner) = with.provisioner.clone() else {
        return Err(RegistrationError::Unavailable(
            "database_service_url is not configured".into(),
        ));
    };
    if with
        .store
        .user_by_email(&input.email)
        .await
        .map_err(|e| internal(&e))?
        .is_some()
    {
        return Err(RegistrationError::EmailTaken);
    }
    let slug = choose_slug(with.store, &input).await?;
    let password_hash = with
        .passwords
        .hash(&input.password)
        .await
        .map_err(|e| internal(&e))?;
    let now = now_ms();
    let policy = TenantPolicy::default();
    let tenant = TenantRow {
        id: new_id(),
        slug,
        name: input.shop_name.clone(),
        status: STATUS_ACTIVE.into(),
        policy: serde_json::to_string(&policy).map_err(|e| internal(&e))?,
        created_at: now,
        updated_at: now,
    };
    let user = UserRow {
        id: new_id(),
        email: input.email.clone(),
        name: input.name.clone(),
        password_hash,
        tenant_id: None,
        roles: Vec::new(),
        disabled: false,
        platform_admin: false,
        home_tenant_id: Some(tenant.id.clone()),
        created_at: now,
        updated_at: now,
    };

    // Provisioning first: until it succeeds nothing is written here.
    let provisioned = provisioner.provision(&tenant.id).await.map_err(|e| {
        tracing::warn!(tenant = %tenant.id, error = %e, "provisioning a new tenant's database failed");
        RegistrationError::Unavailable(e.to_string())
    })?;
    let result = async {
        let descriptor =
            Zeroizing::new(serde_json::to_vec(&provisioned.descriptor).map_err(|e| internal(&e))?);
        let mut secrets: Vec<(&str, &[u8])> = vec![(DATABASE_SECRET, descriptor.as_slice())];
        if let Some(c) = &provisioned.credential {
            secrets.push((DATABASE_CREDENTIAL_SECRET, c.as_bytes()));
        }
        let vault = crate::vault::seal_new_tenant(with.master, &tenant.id, &secrets)
            .map_err(|e| internal(&e))?;
        let actor = actor.unwrap_or_else(|| format!("user:{}", user.id));
        let rows = RegistrationRows {
            events: first_events(meta, &tenant, &user, &actor, &vault.secrets),
            tenant: tenant.clone(),
            data_key: (vault.wrapped_key, vault.master_key_id),
            secrets: vault.secrets,
            user: user.clone(),
            membership: MembershipRow {
                user_id: user.id.clone(),
                tenant_id: tenant.id.clone(),
                roles: vec![ROLE_OWNER.into()],
                created_at: now,
            },
        };
        match with.store.insert_registration(&rows).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_unique_violation() => {
                // Someone took the email or the slug since the checks above.
                let email_taken =
                    matches!(with.store.user_by_email(&user.email).await, Ok(Some(_)));
                Err(if email_taken {
                    RegistrationError::EmailTaken
                } else {
                    RegistrationError::SlugTaken
                })
            }
            Err(e) => Err(internal(&e)),
        }
    }
    .await;
    if let Err(e) = result {
        // Compensation: the database goes again (database-svc keeps it soft-deleted until
        // its retention ends).
        if let Err(d) = provisioner.deprovision(&tenant.id).await {
            metrics::counter!("identity_registration_compensation_failures_total").increment(1);
            tracing::error!(tenant = %tenant.id, error = %d, "deprovisioning after a failed registration failed");
        }
        if let RegistrationError::Internal(cause) = &e {
            tracing::error!(tenant = %tenant.id, error = %cause, "registration failed; rolled back");
        }
        metrics::counter!("identity_registrations_total", "outcome" => "failure").increment(1);
        return Err(e);
    }
    metrics::counter!("identity_registrations_total", "outcome" => "success").increment(1);
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, user = %user.id, "shop registered");
    Ok(Registered { tenant, user })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Acme Shop"), "acme-shop");
        assert_eq!(slugify("  Müller & Söhne  "), "m-ller-s-hne");
        assert_eq!(slugify("A"), "a00");
        assert_eq!(slugify("!!!"), "shop");
        assert!(tenants::valid_slug(&slugify(&"x".repeat(300))));
    }

    #[test]
    fn a_database_away_is_unavailable_not_internal() {
        let away = crate::store::StoreError::Db(sqlx::Error::PoolTimedOut);
        assert_eq!(internal(&away).problem().status, 503);
        let corrupt = crate::store::StoreError::Corrupt("x".into());
        assert_eq!(internal(&corrupt).problem().status, 500);
        assert_eq!(internal(&"refused").problem().status, 500);
    }
}
