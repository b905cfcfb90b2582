//! The pages, one module per page or flow, each with its handlers, its views and its own
//! route table; [`routes`] merges them into the dashboard's one table (which the
//! authorization matrix test enumerates).

pub mod chain;
pub mod clients;
pub mod events;
pub mod events_export;
pub mod identities;
pub mod keys;
pub mod mail;
pub mod master_key;
pub mod overview;
pub mod passkeys;
pub mod providers;
pub mod secrets;
pub mod settings;
pub mod sign_in;
pub mod tenants;
pub mod users;

use tansu_shared::routes::Routes;

use crate::AppState;

/// Every route of the dashboard (health aside).
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .merge(sign_in::routes())
        .merge(overview::routes())
        .merge(tenants::routes())
        .merge(users::routes())
        .merge(identities::routes())
        .merge(passkeys::routes())
        .merge(clients::routes())
        .merge(providers::routes())
        .merge(events::routes())
        .merge(chain::routes())
        .merge(events_export::routes())
        .merge(keys::routes())
        .merge(master_key::routes())
        .merge(settings::routes())
        .merge(mail::routes())
        .merge(secrets::routes())
}
