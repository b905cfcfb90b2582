//! Bearer tokens of this issuer, verified in process against the in-memory key ring (identity
//! is the key source: no JWKS round trip to itself), and whether a verified token is still
//! active (not revoked, its refresh family not revoked).

use serde::{Deserialize, Serialize};
use tansu_shared::auth::{AccessClaims, AuthError};

use crate::keys::KeyState;
use crate::state::Services;
use crate::store::now_ms;

impl Services {
    /// Verifies an access token of this issuer against the in-memory key ring, as strictly as
    /// `tansu_shared::auth::Verifier` does (see [`admin`] for why in process).
    /// `audience: None` accepts any audience (introspection, userinfo).
    pub fn verify_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<AccessClaims, AuthError> {
        self.verify_issued_token(token, audience).map(|i| i.claims)
    }

    /// [`Self::verify_access_token`] with the issuer's private claims (`fid`).
    pub fn verify_issued_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<IssuedClaims, AuthError> {
        if token.len() > 8 * 1024 {
            return Err(AuthError::InvalidToken("token too large"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token header"))?;
        match header.typ.as_deref() {
            Some(t)
                if t.eq_ignore_ascii_case("at+jwt")
                    || t.eq_ignore_ascii_case("application/at+jwt") => {}
            _ => {
                return Err(AuthError::InvalidToken(
                    "not an access token (typ must be at+jwt)",
                ));
            }
        }
        let kid = header
            .kid
            .ok_or(AuthError::InvalidToken("token has no key id"))?;
        let ring = self.keys.ring();
        let grace = i64::try_from(self.keys.policy().grace.as_millis()).unwrap_or(i64::MAX);
        let key = ring
            .get(&kid)
            .filter(|k| {
                matches!(
                    k.state(now_ms(), grace),
                    KeyState::Current | KeyState::Retiring
                )
            })
            .ok_or(AuthError::InvalidToken("unknown signing key"))?;
        if key.alg.jwt() != header.alg {
            return Err(AuthError::InvalidToken("algorithm does not match the key"));
        }
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.config.issuer.as_str()]);
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<IssuedClaims>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::InvalidToken("invalid token"))
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
