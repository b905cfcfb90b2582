//! DPoP at the token endpoint (RFC 9449 §5): a client that sends a `DPoP` proof gets access
//! tokens bound to the proof's key (`cnf.jkt`, `token_type` DPoP), and a public client's
//! refresh tokens are bound to it too (every refresh proves possession, `code.rs`). A proof
//! must carry the server's current nonce (§8): the first request without one is answered
//! `use_dpop_nonce` with a `DPoP-Nonce` header, so a proof cannot be made ahead of time.
//! The proof checks, replay cache and nonces are `tansu_shared::auth::dpop`'s, the ones every
//! service uses (this issuer's verifier holds them).

use axum::http::HeaderMap;
use tansu_shared::auth::AuthError;
use tansu_shared::auth::dpop::{self, ProofRequest};

use super::OAuthError;
use crate::AppState;
use crate::store::now_ms;

fn refused(e: AuthError) -> OAuthError {
    match e {
        AuthError::InvalidDpopProof(why) => OAuthError::invalid_dpop_proof(why),
        AuthError::UseDpopNonce(nonce) => OAuthError::use_dpop_nonce(nonce),
        _ => OAuthError::invalid_dpop_proof("invalid DPoP proof"),
    }
}

/// The thumbprint of the key the request's DPoP proof proves, if it carries one; an error for
/// a proof that is malformed, for another request, stale, replayed or without the nonce.
pub async fn token_endpoint_proof(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = dpop::proof_header(headers).map_err(refused)? else {
        return Ok(None);
    };
    let url = format!("{}connect/token", state.config.issuer);
    let now = now_ms() / 1000;
    let request = ProofRequest {
        method: "POST",
        url: &url,
        access_token: None,
    };
    let proof = dpop::verify_proof(proof, &request, now).map_err(refused)?;
    state
        .verifier
        .check_dpop_nonce_and_replay(&proof, now)
        .await
        .map_err(refused)?;
    Ok(Some(proof.jkt))
}
