//! Access-token verification for resource servers (RFC 9068 JWT access tokens).
//!
//! [`Verifier`] fetches the issuer's keys from its JWKS and checks every token strictly;
//! the extractors in this module put that behind an axum handler's signature:
//!
//! ```text
//! async fn put(tenant: Tenant, _: RequireScope<DbWrite>, body: Json<Doc>) -> Result<.., Problem>
//! ```
//!
//! Failures are answered as RFC 6750 bearer errors with `WWW-Authenticate` and a problem+json
//! body ([`AuthError`]).

mod claims;
pub mod dpop;
mod error;
mod extract;
mod jwks;
pub mod jws;
mod verifier;

pub use claims::{AccessClaims, Act, Audience, Confirmation};
pub use error::AuthError;
pub use extract::{
    Credential, Principal, RequireScope, ScopeSet, Tenant, VerifiedCaller, bearer_token, credential,
};
pub use jws::{ClaimChecks, SignedToken, VerifyKey};
pub use verifier::{DpopState, KeySource, NONCE_WINDOW_SECS, Verifier, VerifierConfig};

pub use jsonwebtoken::Algorithm;

/// Scope marker types for [`RequireScope`]. `RequireScope<(DbRead, DbWrite)>` requires both.
pub mod scopes {
    use super::ScopeSet;

    macro_rules! scope {
        ($($(#[$m:meta])* $name:ident => $value:literal;)*) => {$(
            $(#[$m])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl ScopeSet for $name {
                fn required() -> impl Iterator<Item = &'static str> {
                    std::iter::once($value)
                }
            }
        )*};
    }

    scope! {
        DbRead => "db.read";
        DbWrite => "db.write";
        DbProvision => "db.provision";
        StorageRead => "storage.read";
        StorageWrite => "storage.write";
        SecretsRead => "secrets.read";
        SecretsWrite => "secrets.write";
        /// Only issued in dev mode.
        AdminFull => "admin.full";
    }

    impl<A: ScopeSet, B: ScopeSet> ScopeSet for (A, B) {
        fn required() -> impl Iterator<Item = &'static str> {
            A::required().chain(B::required())
        }
    }
}
