//! The OAuth 2.0 / OpenID Connect protocol endpoints: the token endpoint (client credentials,
//! authorization code with PKCE, refresh rotation with reuse detection; RFC 9068 access
//! tokens, DPoP-bound for clients that prove a key, RFC 9449), client assertions (RFC 7523), introspection (RFC 7662) and revocation (RFC 7009),
//! userinfo, and discovery (OIDC Discovery / RFC 8414) with the JWKS; [`params`] parses the
//! form-encoded requests (RFC 6749 §3.1) for them and for the browser flows.

pub mod assertion;
pub mod code;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod exchange;
/// A fuzz target's body (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod introspect;
pub mod origin;
pub mod params;
pub mod token;
pub mod userinfo;

pub use error::OAuthError;
