//! Bearer tokens of this issuer, verified in process against the in-memory key ring (identity
//! is the key source: no JWKS round trip to itself), and whether a verified token is still
//! active (not revoked, its refresh family not revoked).

use serde::{Deserialize, Serialize};
use tansu_shared::auth::{AccessClaims, AuthError};

use crate::state::Services;

impl Services {
    /// Verifies an access token of this issuer with the `tansu_shared::auth::Verifier` every
    /// resource server uses; its key source is the in-memory ring (current and retiring keys),
    /// not a JWKS fetch. `audience: None` accepts any audience (introspection, userinfo).
    pub async fn verify_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<AccessClaims, AuthError> {
        self.verify_issued_token(token, audience)
            .await
            .map(|i| i.claims)
    }

    /// [`Self::verify_access_token`] with the issuer's private claims (`fid`).
    pub async fn verify_issued_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<IssuedClaims, AuthError> {
        self.verifier.verify_claims(token, audience).await
    }

    /// Whether a verified token is still active: not revoked by `jti`, and its refresh token
    /// family (if any) not revoked. A store failure counts as inactive.
    pub async fn token_active(&self, issued: &IssuedClaims) -> bool {
        match self.store.is_token_revoked(&issued.claims.jti).await {
            Ok(false) => {}
            _ => return false,
        }
        match &issued.fid {
            Some(f) => matches!(self.store.family_revoked(f).await, Ok(false)),
            None => true,
        }
    }
}

/// The claims of an access token as signed: RFC 9068 plus `fid`, the refresh token family the
/// token was issued under (so revoking the family makes it inactive at introspection).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedClaims {
    #[serde(flatten)]
    pub claims: AccessClaims,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
}

impl AsRef<AccessClaims> for IssuedClaims {
    fn as_ref(&self) -> &AccessClaims {
        &self.claims
    }
}
