//! What every HTTP handler of identity shares: who is calling ([`Caller`]), what they may do
//! ([`policy`]), bearer tokens of this issuer verified in process ([`bearer`]), where a request
//! came from ([`meta`]), and the route table that remembers its paths ([`Routes`], from
//! `tansu-shared`).

pub mod bearer;
pub mod caller;
pub mod meta;
pub mod policy;

pub use caller::Caller;
pub use meta::client_ip;
pub use policy::{Action, Actor, Denied, Rank, Target};
/// The route table that remembers its paths (see `tansu_shared::routes`).
pub use tansu_shared::routes::Routes;
