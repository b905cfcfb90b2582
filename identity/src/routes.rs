//! Every route of the service, in one table (health and metrics are added by
//! [`crate::router`]). `tests/authorization.rs` enumerates these paths and checks each against
//! `docs/authorization.md`, so a route added here without a policy row fails the build's tests.

use axum::routing::{MethodFilter, delete, get, post, put};

use crate::admin::{
    clients, events, identities, invitations, keys, mail_templates, master_key, member_roles,
    passkeys as user_passkeys, providers, registrations, roles, stats, tenant_directory, tenants,
    users, vault, verifications,
};
use crate::http::Routes;
use crate::oauth::{discovery, introspect, token, userinfo};
use crate::state::AppState;
use crate::tenants::{STATUS_ACTIVE, STATUS_DELETED, STATUS_SUSPENDED};
use crate::web::{
    account, account_data, account_mfa, account_passkeys, account_sessions, authorize, consent,
    federation, federation_account, federation_password, federation_verify,
    invitations as account_invitations, logout, passkeys, password, recovery, registration,
    step_forms,
};

/// The route table (see the module doc).
pub fn routes() -> Routes<AppState> {
    Routes::new()
        // OpenID Connect discovery and the protocol endpoints.
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::configuration),
        )
        .route("/.well-known/jwks", get(discovery::jwks))
        .route("/.well-known/webfinger", get(discovery::webfinger))
        .route("/connect/token", post(token::token))
        .route(
            "/connect/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .route("/connect/introspect", post(introspect::introspect))
        .route("/connect/revocation", post(introspect::revoke))
        // Browser flows: the sign-in request and its steps, consent, logout, the account.
        .route(
            "/connect/authorize",
            get(authorize::authorize).post(authorize::authorize_post),
        )
        .route("/login", post(password::login))
        .route("/login/mfa", post(step_forms::login_mfa))
        .route("/login/tenant", post(step_forms::login_pick_tenant))
        .route("/login/enrol", post(step_forms::login_enrol))
        // Passkeys: passwordless, as the second factor, the account's own, the page script.
        .route("/login/passkey", post(passkeys::login_passkey))
        .route("/login/passkey/options", post(passkeys::options))
        .route("/login/mfa/passkey", post(passkeys::login_mfa_passkey))
        .route("/login/passkey/enrol", post(passkeys::login_passkey_enrol))
        .route("/passkeys.js", get(passkeys::script))
        .route(
            "/account/passkeys",
            get(account_passkeys::list).post(account_passkeys::register),
        )
        .route("/account/passkeys/options", post(account_passkeys::options))
        .route("/account/passkeys/rename", post(account_passkeys::rename))
        .route("/account/passkeys/remove", post(account_passkeys::remove))
        .route("/consent", post(consent::consent))
        // Sign-in through a tenant's external providers.
        .route("/federation/{provider}/start", get(federation::start))
        .route("/federation/{provider}/callback", get(federation::callback))
        .route("/federation/discover", get(federation::discover))
        .route(
            "/federation/{provider}/verify",
            get(federation_verify::show).post(federation_verify::confirm),
        )
        .route("/federation/link", post(federation_password::link_form))
        .route(
            "/connect/endsession",
            get(logout::end_session).post(logout::end_session),
        )
        .route(
            "/account/mfa",
            get(account_mfa::account_mfa).post(account_mfa::account_mfa_confirm),
        )
        .route("/account/mfa/recovery-codes", post(account_mfa::regenerate))
        .route(
            "/account/invitations",
            get(account_invitations::list).post(account_invitations::decide),
        )
        .route("/account", get(account::overview))
        .route("/account/email", post(account::change_email))
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route(
            "/account/sessions",
            get(account_sessions::list).post(account_sessions::sign_out),
        )
        .route("/account/clients", post(account_sessions::revoke))
        .route("/account/identities", post(federation_account::remove))
        .route("/account/export", get(account_data::export))
        .route(
            "/account/delete",
            get(account_data::delete_form).post(account_data::delete),
        )
        // Getting back in and proving the address, by links sent by mail.
        .route(
            "/account/password/forgot",
            get(recovery::forgot_form).post(recovery::forgot),
        )
        .route(
            "/account/password/reset",
            get(recovery::reset_form).post(recovery::reset),
        )
        .route(
            "/account/email/verify",
            get(recovery::verify_form).post(recovery::verify),
        )
        .route(
            "/account/email/verification",
            post(recovery::send_verification),
        )
        // Registration: the form, the self-service JSON API, the platform admin's.
        .route(
            "/register",
            get(registration::form_page).post(registration::form_submit),
        )
        .route("/registrations", post(registrations::self_service))
        .route("/admin/registrations", post(registrations::by_admin))
        // Admin API: clients and signing keys.
        .route(
            "/admin/clients",
            post(clients::create_client).get(clients::list_clients),
        )
        .route(
            "/admin/clients/{client_id}",
            get(clients::get_client)
                .patch(clients::update_client)
                .delete(clients::delete_client),
        )
        .route(
            "/admin/clients/{client_id}/secret",
            post(clients::rotate_secret),
        )
        .route("/admin/keys/rotate-now", post(keys::rotate_keys_now))
        .route("/admin/keys/policies", get(keys::key_policies))
        // Admin API: tenants.
        .route(
            "/admin/tenants",
            post(tenants::create_tenant).get(tenants::list_tenants),
        )
        .route(
            "/admin/tenants/{tid}",
            get(tenants::get_tenant)
                .patch(tenants::update_tenant)
                .merge(tenants::set_status(MethodFilter::DELETE, STATUS_DELETED)),
        )
        .route(
            "/admin/tenants/{tid}/suspend",
            tenants::set_status(MethodFilter::POST, STATUS_SUSPENDED),
        )
        .route(
            "/admin/tenants/{tid}/activate",
            tenants::set_status(MethodFilter::POST, STATUS_ACTIVE),
        )
        // Admin API: a tenant's users, their roles, invitations.
        .route(
            "/admin/tenants/{tid}/users",
            post(users::create_user).get(users::list_users),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}",
            get(users::get_user)
                .patch(users::update_user)
                .delete(users::remove_user),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/disable",
            users::set_user_disabled(true),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/enable",
            users::set_user_disabled(false),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/password",
            post(users::reset_password),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/mfa/reset",
            post(users::reset_mfa),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/identities",
            get(identities::list),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/identities/{id}",
            delete(identities::remove),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/passkeys",
            get(user_passkeys::list),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/passkeys/{id}",
            delete(user_passkeys::remove),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/roles",
            put(member_roles::set_roles),
        )
        .route(
            "/admin/tenants/{tid}/users/{uid}/roles/{role}",
            put(member_roles::assign_role).delete(member_roles::revoke_role),
        )
        .route(
            "/admin/tenants/{tid}/invitations",
            get(invitations::list_invitations),
        )
        .route(
            "/admin/tenants/{tid}/invitations/{id}",
            delete(invitations::revoke_invitation),
        )
        .route(
            "/admin/tenants/{tid}/mail-templates",
            get(mail_templates::list),
        )
        .route(
            "/admin/tenants/{tid}/mail-templates/{kind}",
            put(mail_templates::put).delete(mail_templates::remove),
        )
        // Admin API: a tenant's roles, external providers and vault.
        .route(
            "/admin/tenants/{tid}/roles",
            get(roles::list_roles).post(roles::create_role),
        )
        .route(
            "/admin/tenants/{tid}/roles/{name}",
            get(roles::get_role)
                .put(roles::update_role)
                .patch(roles::update_role)
                .delete(roles::delete_role),
        )
        .route(
            "/admin/tenants/{tid}/providers",
            get(providers::list_providers).post(providers::create_provider),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}",
            get(providers::get_provider)
                .patch(providers::update_provider)
                .delete(providers::delete_provider),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/disable",
            providers::set_enabled(false),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/enable",
            providers::set_enabled(true),
        )
        .route(
            "/admin/tenants/{tid}/providers/{id}/test",
            post(providers::test_provider),
        )
        .route("/admin/tenants/{tid}/secrets", get(vault::list))
        .route(
            "/admin/tenants/{tid}/secrets/{name}",
            get(vault::read).put(vault::put),
        )
        .route(
            "/admin/tenants/{tid}/secrets/{name}/revoke",
            post(vault::revoke),
        )
        // Admin API: security events, their verification and ingest from other services.
        .route("/admin/security-events", get(events::query))
        .route("/admin/security-events/export", get(events::export))
        .route("/admin/security-events/verify", get(events::verify))
        .route("/admin/security-events/ingest", post(events::ingest))
        .route(
            "/admin/security-events/verifications",
            post(verifications::start),
        )
        .route(
            "/admin/security-events/verifications/{id}",
            get(verifications::status),
        )
        // Admin API: the platform (master key, statistics, the services' tenant directory).
        .route("/admin/master-key", get(master_key::status))
        .route("/admin/master-key/rewrap", post(master_key::start_rewrap))
        .route("/admin/stats/activity", get(stats::activity))
        .route(
            "/admin/tenant-directory/{reference}",
            get(tenant_directory::lookup),
        )
}
