//! The OAuth 2.0 endpoints. Today: the token endpoint with the `client_credentials` grant,
//! introspection (RFC 7662) and revocation (RFC 7009).

pub mod assertion;
pub mod code;
pub mod error;
pub mod introspect;
pub mod token;

pub use error::OAuthError;
