//! The request and response types of identity's admin API (`/admin/…`), defined once for the
//! server and its clients (the dashboard).
//!
//! Every type mirrors the JSON identity emits field by field, with the same optionality: a
//! field renamed here fails to compile in whatever reads or writes it, instead of blanking a
//! page. Lists come in two shapes: [`Page`] (`items` and the `next_after` cursor) and
//! [`Items`] (a complete list). Times are RFC 3339 strings unless a field says otherwise.
//! Request bodies refuse unknown fields, as identity does; their `Debug` never shows a secret
//! (passwords, client secrets, secret values).

// `Debug` of the types carrying a secret.
mod redacted;
#[cfg(test)]
mod wire;

mod clients;
mod events;
mod keys;
mod lists;
mod mail;
mod master_key;
mod providers;
mod roles;
mod secrets;
mod stats;
mod tenants;
mod users;

pub use clients::*;
pub use events::*;
pub use keys::*;
pub use lists::*;
pub use mail::*;
pub use master_key::*;
pub use providers::*;
pub use roles::*;
pub use secrets::*;
pub use stats::*;
pub use tenants::*;
pub use users::*;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_added_member_is_an_invitation_or_a_member() {
        let invited: AddedMember = serde_json::from_value(json!({
            "id": "i", "tenant_id": "t", "email": "a@b.c", "roles": ["User"],
            "status": "pending", "created_at": "x", "expires_at": "y",
        }))
        .unwrap();
        assert!(matches!(invited, AddedMember::Invited(_)));
        let member: AddedMember = serde_json::from_value(json!({
            "id": "u", "email": "a@b.c", "name": "A", "disabled": false, "tenant_id": "t",
            "roles": ["User"], "created_at": "x", "updated_at": "y",
        }))
        .unwrap();
        assert!(matches!(member, AddedMember::Member(_)));
    }

    #[test]
    fn a_client_with_its_secret_flattens() {
        let v = json!({
            "id": "1", "client_id": "c", "tenant_id": null, "name": "n",
            "client_type": "confidential", "token_endpoint_auth_methods": [],
            "grant_types": [], "scopes": [], "redirect_uris": [], "post_logout_redirect_uris": [],
            "first_party": false, "access_token_lifetime_secs": null, "signing_alg": "RS256",
            "allowed_origins": [], "created_at": "x", "updated_at": "y", "client_secret": "s",
        });
        let c: ClientWithSecret = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.client_secret.as_deref(), Some("s"));
        assert_eq!(serde_json::to_value(&c).unwrap(), v);
    }
}
