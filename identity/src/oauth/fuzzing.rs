//! The body of the `token_request` fuzz target (`fuzz/`), also run by the test that replays its
//! corpus (`tests/properties.rs`): the token endpoint's form and client authentication. Nothing
//! may panic, every refusal must render as an RFC 6749 §5.2 answer, and what is accepted must
//! be what was sent (one authentication method, the Basic credentials as the client encoded
//! them, only scopes the client may have). The clients are fixed rows ([`clients`], shared with
//! [`crate::web::fuzzing`]), so no store is involved.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;

use super::OAuthError;
use super::code::is_pkce_value;
use super::params::{Params, printable};
use super::token::{AuthMethod, Presented, basic_credentials, granted_scopes, presented_client};
use crate::clients::{GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN};
use crate::scopes;
use crate::store::clients::ClientRow;

fn client(
    client_id: &str,
    confidential: bool,
    tenant: Option<&str>,
    grants: &[&str],
    scopes: &[&str],
    redirect_uris: &[&str],
) -> ClientRow {
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    ClientRow {
        id: format!("row-{client_id}"),
        client_id: client_id.to_owned(),
        tenant_id: tenant.map(str::to_owned),
        name: client_id.to_owned(),
        confidential,
        secret_hash: confidential.then(|| vec![0; 32]),
        grant_types: list(grants),
        scopes: list(scopes),
        redirect_uris: list(redirect_uris),
        post_logout_redirect_uris: Vec::new(),
        jwks: None,
        first_party: false,
        access_token_lifetime_secs: None,
        signing_alg: "RS256".into(),
        allowed_origins: Vec::new(),
        created_at: 0,
        updated_at: 0,
    }
}

/// The clients the harness knows: a confidential web app, a public single-page app, a
/// tenant's app, and a machine client without the code flow.
pub fn clients() -> &'static [ClientRow] {
    static CLIENTS: OnceLock<Vec<ClientRow>> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let code = [GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN];
        vec![
            client(
                "web-app",
                true,
                None,
                &code,
                &["openid", "profile", "email", "offline_access", "db.read"],
                &[
                    "https://app.fuzz.test/cb",
                    "https://app.fuzz.test/cb?from=tansu",
                ],
            ),
            client(
                "spa",
                false,
                None,
                &code,
                &["openid", "profile", "storage.read"],
                &["http://127.0.0.1:5173/callback"],
            ),
            client(
                "tenant-app",
                false,
                Some("0190f5c0-0000-7000-8000-00000000000a"),
                &code,
                &["openid", "db.read", "db.write"],
                &["https://acme.fuzz.test/signed-in"],
            ),
            client(
                "machine",
                true,
                None,
                &[GRANT_CLIENT_CREDENTIALS],
                &["db.read", "db.write", "storage.read"],
                &[],
            ),
        ]
    })
}

pub fn client_named(client_id: &str) -> Option<&'static ClientRow> {
    clients().iter().find(|c| c.client_id == client_id)
}

/// A refusal renders as an RFC 6749 §5.2 answer.
fn answered(e: OAuthError) {
    let status = e.status;
    assert!(status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE);
    let response = e.into_response();
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}

/// `Authorization: Basic` for a client id and secret, each form-urlencoded (RFC 6749 §2.3.1).
pub fn basic_header(id: &str, secret: &str) -> HeaderMap {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&value).expect("base64 is a header value"),
    );
    headers
}

/// The `token_request` target: the first line of `data` is the `Authorization` header's value
/// (no line: no header), the rest the form body of a token request.
pub fn token_request(data: &[u8]) {
    let (authorization, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let mut headers = HeaderMap::new();
    if let Some(v) = authorization.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(header::AUTHORIZATION, v);
    }

    let basic = basic_credentials(&headers);
    match &basic {
        Ok(Some((id, secret))) => {
            assert!(!id.is_empty());
            // What a client encodes, the endpoint decodes.
            let again = basic_credentials(&basic_header(id, secret)).expect("well-formed");
            assert_eq!(again.as_ref(), Some(&(id.clone(), secret.clone())));
        }
        Ok(None) => {}
        Err(e) => answered(e.clone()),
    }

    let params = match Params::parse(body) {
        Ok(p) => p,
        Err(e) => return answered(e),
    };
    match presented_client(&headers, &params) {
        Ok(Presented::Assertion) => {
            assert!(
                params.get("client_assertion").is_some()
                    || params.get("client_assertion_type").is_some()
            );
            assert!(matches!(basic, Ok(None)) && params.get("client_secret").is_none());
        }
        Ok(Presented::Client { id, secret, method }) => match method {
            AuthMethod::ClientSecretBasic => {
                let Ok(Some((basic_id, basic_secret))) = &basic else {
                    panic!("Basic without Basic credentials");
                };
                assert_eq!((&id, secret.as_ref()), (basic_id, Some(basic_secret)));
                assert!(params.get("client_secret").is_none());
                assert!(params.get("client_id").is_none_or(|p| p == id));
            }
            AuthMethod::ClientSecretPost | AuthMethod::None => {
                assert!(matches!(basic, Ok(None)));
                assert_eq!(params.get("client_id"), Some(id.as_str()));
                assert_eq!(params.get("client_secret"), secret.as_deref());
                assert_eq!(method == AuthMethod::None, secret.is_none());
            }
            AuthMethod::PrivateKeyJwt => panic!("an assertion is presented as such"),
        },
        Err(e) => answered(e),
    }

    if let Some(grant_type) = params.get("grant_type") {
        assert!(printable(grant_type).len() <= 40);
    }
    if let Some(verifier) = params.get("code_verifier") {
        let _ = is_pkce_value(verifier);
    }
    let requested = params.get("scope");
    for client in clients() {
        match granted_scopes(client, requested, false) {
            Ok(granted) => {
                for s in &granted {
                    assert!(
                        scopes::is_known(s, false) && client.scopes.contains(s),
                        "{s}"
                    );
                }
                let audiences = scopes::audiences(granted.iter().map(String::as_str));
                assert!(audiences.len() <= granted.len());
            }
            Err(e) => answered(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_and_a_form_are_read_together() {
        let mut data = b"Basic ".to_vec();
        data.extend(
            base64::engine::general_purpose::STANDARD
                .encode("machine:s%3Acret+1")
                .as_bytes(),
        );
        data.extend(b"\ngrant_type=client_credentials&scope=db.read");
        let headers = basic_header("machine", "s:cret 1");
        let params = Params::parse(b"grant_type=client_credentials&scope=db.read").unwrap();
        assert_eq!(
            presented_client(&headers, &params).unwrap(),
            Presented::Client {
                id: "machine".into(),
                secret: Some("s:cret 1".into()),
                method: AuthMethod::ClientSecretBasic,
            }
        );
        token_request(&data);
    }
}
