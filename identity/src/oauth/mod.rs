//! The OAuth 2.0 endpoints. Today: the token endpoint with the `client_credentials` grant.

pub mod error;
pub mod token;

pub use error::OAuthError;
