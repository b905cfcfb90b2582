//! The admin API's OpenAPI 3.1 document (`GET /openapi.json`; through the gateway
//! `/identity/openapi.json`), and in dev mode its page (`GET /openapi`). One line per operation
//! of [`crate::routes`] under `/admin/` and `/registrations`; `tests/openapi.rs` compares them
//! with the router both ways. Scopes are the policy's (`http/policy.rs`): platform operations
//! `admin.full`, a tenant's administration `admin.tenant` (with the Owner or Admin role), the
//! vault `secrets.*`, the services' own calls `tenants.read` / `events.write`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use tansu_shared::admin_api::*;
use tansu_shared::openapi::{Api, Op};

use super::member_roles::RolesBody;
use super::registrations::RegistrationBody;
use super::users::UserUpdate;
use crate::state::AppState;

const PLATFORM: &[&str] = &["admin.full"];
const TENANT: &[&str] = &["admin.tenant", "admin.full"];
const SECRETS_READ: &[&str] = &["secrets.read", "admin.tenant", "admin.full"];
const SECRETS_WRITE: &[&str] = &["secrets.write", "admin.tenant", "admin.full"];

const SCOPES: &[(&str, &str)] = &[
    (
        "admin.full",
        "Platform administration (platform administrators and clients).",
    ),
    (
        "admin.tenant",
        "A tenant's administration, with the Owner or Admin role in it.",
    ),
    ("secrets.read", "Read the tenant's vault."),
    ("secrets.write", "Write the tenant's vault."),
    (
        "tenants.read",
        "The tenant directory (the platform's services).",
    ),
    (
        "events.write",
        "Security event ingest (the platform's services).",
    ),
];

/// Every admin operation (a table: one operation per line or two).
#[rustfmt::skip]
pub fn api() -> Api {
    Api::new(
        "Tansu identity admin API",
        "Clients, keys, tenants, members, roles, providers, the vault, security events and \
         registration. Another tenant's resources answer 404, like those that do not exist.",
        SCOPES,
    )
    .op(Op::post("/registrations", "Register a new tenant and its owner (self-service)")
        .tag("registration").or_anonymous().body::<RegistrationBody>().json::<Registered>(201))
    .op(Op::post("/admin/registrations", "Register a tenant and its owner").tag("registration")
        .scopes(PLATFORM).body::<RegistrationBody>().json::<Registered>(201))
    // Clients and keys.
    .op(Op::post("/admin/clients", "Create a client (a confidential one's secret shown once)")
        .tag("clients").scopes(PLATFORM).body::<NewClient>().json::<ClientWithSecret>(201))
    .op(Op::get("/admin/clients", "List clients").tag("clients").scopes(PLATFORM).paged()
        .page::<Client>())
    .op(Op::get("/admin/clients/{client_id}", "A client").tag("clients").scopes(PLATFORM)
        .json::<Client>(200))
    .op(Op::patch("/admin/clients/{client_id}", "Change a client").tag("clients")
        .scopes(PLATFORM).body::<ClientUpdate>().json::<Client>(200))
    .op(Op::delete("/admin/clients/{client_id}", "Delete a client").tag("clients")
        .scopes(PLATFORM).empty(204, "Deleted."))
    .op(Op::post("/admin/clients/{client_id}/secret", "Rotate a client's secret (shown once)")
        .tag("clients").scopes(PLATFORM).json::<ClientWithSecret>(200))
    .op(Op::post("/admin/keys/rotate-now", "Rotate the signing keys now").tag("keys")
        .scopes(PLATFORM).json::<KeyRotation>(202))
    .op(Op::get("/admin/keys/policies", "The key policy and the keys").tag("keys")
        .scopes(PLATFORM).json::<KeyPolicy>(200))
    // Tenants.
    .op(Op::post("/admin/tenants", "Create a tenant").tag("tenants").scopes(PLATFORM)
        .body::<NewTenant>().json::<Tenant>(201))
    .op(Op::get("/admin/tenants", "List tenants").tag("tenants").scopes(PLATFORM).paged()
        .query("search", "Part of the name or slug.").query("sort", "`name`, `slug`, `created`.")
        .query("order", "`asc` or `desc`.").page::<Tenant>())
    .op(Op::get("/admin/tenants/{tid}", "A tenant").tag("tenants").scopes(TENANT)
        .json::<Tenant>(200))
    .op(Op::patch("/admin/tenants/{tid}", "Change a tenant (its policy; name and slug: platform)")
        .tag("tenants").scopes(TENANT).body::<TenantUpdate>().json::<Tenant>(200))
    .op(Op::delete("/admin/tenants/{tid}", "Mark a tenant deleted").tag("tenants")
        .scopes(PLATFORM).json::<Tenant>(200))
    .op(Op::post("/admin/tenants/{tid}/suspend", "Suspend a tenant").tag("tenants")
        .scopes(PLATFORM).json::<Tenant>(200))
    .op(Op::post("/admin/tenants/{tid}/activate", "Activate a tenant").tag("tenants")
        .scopes(PLATFORM).json::<Tenant>(200))
    // A tenant's members, their roles, invitations, mail templates.
    .op(Op::post("/admin/tenants/{tid}/users", "Add a member (or invite one by mail)")
        .tag("members").scopes(TENANT).body::<NewMember>().json::<AddedMember>(201))
    .op(Op::get("/admin/tenants/{tid}/users", "List members").tag("members").scopes(TENANT)
        .paged().query("search", "Part of the address or name.")
        .query("sort", "`email`, `name`, `created`.").query("order", "`asc` or `desc`.")
        .page::<Member>())
    .op(Op::get("/admin/tenants/{tid}/users/{uid}", "A member").tag("members").scopes(TENANT)
        .json::<Member>(200))
    .op(Op::patch("/admin/tenants/{tid}/users/{uid}", "Change a member's name").tag("members")
        .scopes(TENANT).body::<UserUpdate>().json::<Member>(200))
    .op(Op::delete("/admin/tenants/{tid}/users/{uid}", "Remove a member from the tenant")
        .tag("members").scopes(TENANT).empty(204, "Removed."))
    .op(Op::post("/admin/tenants/{tid}/users/{uid}/disable", "Disable an account")
        .tag("members").scopes(TENANT).empty(204, "Disabled."))
    .op(Op::post("/admin/tenants/{tid}/users/{uid}/enable", "Enable an account")
        .tag("members").scopes(TENANT).empty(204, "Enabled."))
    .op(Op::post("/admin/tenants/{tid}/users/{uid}/password", "Set an account's password")
        .tag("members").scopes(TENANT).body::<PasswordReset>().empty(204, "Set."))
    .op(Op::post("/admin/tenants/{tid}/users/{uid}/mfa/reset", "Remove an account's MFA")
        .tag("members").scopes(TENANT).empty(204, "Reset."))
    .op(Op::get("/admin/tenants/{tid}/users/{uid}/identities", "A member's linked sign-ins (external providers)")
        .tag("members").scopes(TENANT).json::<Vec<LinkedIdentity>>(200))
    .op(Op::delete("/admin/tenants/{tid}/users/{uid}/identities/{id}", "Unlink an external sign-in")
        .tag("members").scopes(TENANT).empty(204, "Unlinked."))
    .op(Op::get("/admin/tenants/{tid}/users/{uid}/passkeys", "A member's passkeys").tag("members")
        .scopes(TENANT).json::<Vec<UserPasskey>>(200))
    .op(Op::delete("/admin/tenants/{tid}/users/{uid}/passkeys/{id}", "Remove a passkey")
        .tag("members").scopes(TENANT).empty(204, "Removed."))
    .op(Op::put("/admin/tenants/{tid}/users/{uid}/roles", "Set a member's roles")
        .tag("members").scopes(TENANT).body::<RolesBody>().json::<Member>(200))
    .op(Op::put("/admin/tenants/{tid}/users/{uid}/roles/{role}", "Grant a role")
        .tag("members").scopes(TENANT).json::<Member>(200))
    .op(Op::delete("/admin/tenants/{tid}/users/{uid}/roles/{role}", "Take a role away")
        .tag("members").scopes(TENANT).json::<Member>(200))
    .op(Op::get("/admin/tenants/{tid}/invitations", "Pending invitations").tag("members")
        .scopes(TENANT).items::<Invitation>())
    .op(Op::delete("/admin/tenants/{tid}/invitations/{id}", "Revoke an invitation")
        .tag("members").scopes(TENANT).empty(204, "Revoked."))
    .op(Op::get("/admin/tenants/{tid}/mail-templates", "The tenant's mail templates")
        .tag("mail").scopes(TENANT).items::<MailTemplate>())
    .op(Op::put("/admin/tenants/{tid}/mail-templates/{kind}", "Set a mail template")
        .tag("mail").scopes(TENANT).body::<MailTemplateBody>().json::<MailTemplate>(200))
    .op(Op::delete("/admin/tenants/{tid}/mail-templates/{kind}", "Back to the default template")
        .tag("mail").scopes(TENANT).empty(204, "Removed."))
    // Roles, providers, the vault.
    .op(Op::get("/admin/tenants/{tid}/roles", "Roles (built-in and custom)").tag("roles")
        .scopes(TENANT).items::<Role>())
    .op(Op::post("/admin/tenants/{tid}/roles", "Create a custom role").tag("roles")
        .scopes(TENANT).body::<NewRole>().json::<Role>(201))
    .op(Op::get("/admin/tenants/{tid}/roles/{name}", "A role").tag("roles").scopes(TENANT)
        .json::<Role>(200))
    .op(Op::put("/admin/tenants/{tid}/roles/{name}", "Change a custom role").tag("roles")
        .scopes(TENANT).body::<RoleUpdate>().json::<Role>(200))
    .op(Op::patch("/admin/tenants/{tid}/roles/{name}", "Change a custom role").tag("roles")
        .scopes(TENANT).body::<RoleUpdate>().json::<Role>(200))
    .op(Op::delete("/admin/tenants/{tid}/roles/{name}", "Delete a custom role").tag("roles")
        .scopes(TENANT).empty(204, "Deleted."))
    .op(Op::get("/admin/tenants/{tid}/providers", "External OIDC providers").tag("providers")
        .scopes(TENANT).paged().page::<Provider>())
    .op(Op::post("/admin/tenants/{tid}/providers", "Add a provider").tag("providers")
        .scopes(TENANT).body::<NewProvider>().json::<Provider>(201))
    .op(Op::get("/admin/tenants/{tid}/providers/{id}", "A provider").tag("providers")
        .scopes(TENANT).json::<Provider>(200))
    .op(Op::patch("/admin/tenants/{tid}/providers/{id}", "Change a provider").tag("providers")
        .scopes(TENANT).body::<ProviderUpdate>().json::<Provider>(200))
    .op(Op::delete("/admin/tenants/{tid}/providers/{id}", "Delete a provider")
        .tag("providers").scopes(TENANT).empty(204, "Deleted."))
    .op(Op::post("/admin/tenants/{tid}/providers/{id}/disable", "Disable a provider")
        .tag("providers").scopes(TENANT).json::<Provider>(200))
    .op(Op::post("/admin/tenants/{tid}/providers/{id}/enable", "Enable a provider")
        .tag("providers").scopes(TENANT).json::<Provider>(200))
    .op(Op::post("/admin/tenants/{tid}/providers/{id}/test", "Fetch the provider's discovery")
        .tag("providers").scopes(TENANT).json::<DiscoveryCheck>(200))
    .op(Op::get("/admin/tenants/{tid}/secrets", "The vault's secrets (names, versions)")
        .tag("vault").scopes(SECRETS_READ).items::<Secret>())
    .op(Op::get("/admin/tenants/{tid}/secrets/{name}", "Read a secret's value").tag("vault")
        .scopes(SECRETS_READ).query("version", "A version; default the current one.")
        .json::<SecretRead>(200))
    .op(Op::put("/admin/tenants/{tid}/secrets/{name}", "Store a secret's new version")
        .tag("vault").scopes(SECRETS_WRITE).body::<SecretValue>().json::<SecretStored>(201))
    .op(Op::post("/admin/tenants/{tid}/secrets/{name}/revoke", "Revoke a secret")
        .tag("vault").scopes(SECRETS_WRITE).empty(204, "Revoked."))
    // Security events.
    .op(Op::get("/admin/security-events", "Query security events").tag("events")
        .scopes(TENANT).query("tenant", "A tenant id or `platform`.")
        .query("type", "An event type.").query("actor", "An actor.")
        .query("outcome", "`success` or `failure`.").query("from", "RFC 3339, inclusive.")
        .query("to", "RFC 3339, inclusive.").paged().page::<Event>())
    .op(Op::get("/admin/security-events/export", "Export security events (NDJSON or CSV)")
        .tag("events").scopes(TENANT).query("tenant", "A tenant id or `platform`.")
        .query("format", "`ndjson` (default) or `csv`.").bytes(200))
    .op(Op::get("/admin/security-events/verify", "Verify a tenant's event chain").tag("events")
        .scopes(TENANT).query("tenant", "A tenant id or `platform`.").json::<ChainCheck>(200))
    .op(Op::post("/admin/security-events/ingest", "Ingest the services' security events")
        .tag("events").scopes(&["events.write"]).any_body().json::<Ingested>(202))
    .op(Op::post("/admin/security-events/verifications", "Start a chain verification")
        .tag("events").scopes(TENANT).query("tenant", "A tenant id or `platform`.")
        .json::<Verification>(202))
    .op(Op::get("/admin/security-events/verifications/{id}", "A chain verification's progress")
        .tag("events").scopes(TENANT).json::<Verification>(200))
    // The platform.
    .op(Op::get("/admin/master-key", "The master key's status").tag("platform")
        .scopes(PLATFORM).json::<MasterKey>(200))
    .op(Op::post("/admin/master-key/rewrap", "Re-wrap everything under the current master key")
        .tag("platform").scopes(PLATFORM).json::<MasterKey>(202))
    .op(Op::get("/admin/stats/activity", "Activity per hour").tag("platform").scopes(TENANT)
        .query("hours", "1 to 168 (default 24).").query("tenant", "A tenant id or `platform`.")
        .json::<Activity>(200))
    .op(Op::get("/admin/tenant-directory/{reference}", "A tenant's status (the services)")
        .tag("platform").scopes(&["tenants.read", "admin.full"]).any_json(200))
}

fn document(state: &AppState, headers: &HeaderMap) -> Value {
    api().document(
        &tansu_shared::openapi::server_of(headers),
        &format!("{}connect/token", state.config.issuer),
    )
}

/// `GET /openapi.json`.
pub(crate) async fn json(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    Json(document(&state, &headers))
}

/// `GET /openapi`: the document as a page, in dev mode only.
pub(crate) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.dev_mode {
        return tansu_shared::Problem::not_found().into_response();
    }
    Html(tansu_shared::openapi::docs_page(&document(
        &state, &headers,
    )))
    .into_response()
}
