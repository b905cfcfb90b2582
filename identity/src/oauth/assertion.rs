//! `private_key_jwt` client authentication (RFC 7523 §2.2, §3; OIDC Core §9).
//!
//! The client signs a short-lived JWT with a key from the JWK Set it registered:
//! `iss` = `sub` = its client id, `aud` = this issuer or the endpoint it calls, `exp` within the
//! next hour, and a `jti` that is never accepted twice (replays are remembered until the
//! assertion expires). The claims are only parsed to find the client; nothing is trusted until
//! the signature verifies with one of that client's keys, with the algorithm bound to the key.

use base64::Engine;

use super::OAuthError;
use super::params::Params;
use crate::AppState;
use crate::clients::client_keys;
use crate::keys::SigningAlg;
use crate::store::clients::ClientRow;
use crate::store::now_ms;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime.
const MAX_LIFETIME_SECS: i64 = 3600;

fn failed() -> OAuthError {
    OAuthError::invalid_client("client authentication failed")
}

/// The unverified `sub` of a compact JWS (only used to look the client up).
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

pub async fn authenticate(state: &AppState, params: &Params) -> Result<ClientRow, OAuthError> {
    if params.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(OAuthError::invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let jwt = params
        .get("client_assertion")
        .ok_or_else(|| OAuthError::invalid_request("client_assertion is required"))?;
    if jwt.len() > 8 * 1024 || jwt.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(failed());
    }
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| failed())?;
    let alg = SigningAlg::ALL
        .into_iter()
        .find(|a| a.jwt() == header.alg)
        .ok_or_else(failed)?;
    let client_id = unverified_subject(jwt).ok_or_else(failed)?;
    if params.get("client_id").is_some_and(|c| c != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id differs from the assertion's subject",
        ));
    }
    let client = state
        .store
        .client_by_client_id(&client_id)
        .await
        .map_err(|e| OAuthError::server_error(&e))?
        .ok_or_else(failed)?;
    let keys = client.jwks.as_deref().ok_or_else(failed)?;
    let keys = client_keys(keys).map_err(|_| failed())?;
    let issuer = &state.config.issuer;
    let audiences = [
        issuer.clone(),
        format!("{issuer}connect/token"),
        format!("{issuer}connect/introspect"),
        format!("{issuer}connect/revocation"),
    ];
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.leeway = 30;
    validation.set_issuer(&[client_id.as_str()]);
    validation.sub = Some(client_id.clone());
    validation.set_audience(&audiences);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = keys
        .iter()
        .filter(|k| match (&header.kid, &k.common.key_id) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        })
        .filter(|k| key_alg(k) == Some(alg))
        .filter_map(|k| jsonwebtoken::DecodingKey::from_jwk(k).ok())
        .find_map(|key| jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation).ok())
        .ok_or_else(failed)?
        .claims;
    let exp = claims["exp"].as_i64().ok_or_else(failed)?;
    if exp - now_ms() / 1000 > MAX_LIFETIME_SECS {
        return Err(OAuthError::invalid_client(
            "the client assertion lives too long",
        ));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| OAuthError::invalid_client("the client assertion has no jti"))?;
    let first_use = state
        .store
        .use_client_assertion(&format!("{client_id}\n{jti}"), (exp + 60) * 1000)
        .await
        .map_err(|e| OAuthError::server_error(&e))?;
    if !first_use {
        tracing::warn!(client_id = %client_id, "client assertion replayed");
        return Err(OAuthError::invalid_client(
            "the client assertion was already used",
        ));
    }
    Ok(client)
}

/// The algorithm a client key implies (its type and curve; a declared `alg` must agree).
fn key_alg(jwk: &jsonwebtoken::jwk::Jwk) -> Option<SigningAlg> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let (implied, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            SigningAlg::RS256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)),
        ),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => (
            SigningAlg::ES256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256)),
        ),
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => (
            SigningAlg::EdDSA,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::EdDSA)),
        ),
        _ => return None,
    };
    declared_ok.then_some(implied)
}
