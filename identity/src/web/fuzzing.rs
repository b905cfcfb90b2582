//! The body of the `authorize_request` fuzz target (`fuzz/`), also run by the test that replays
//! its corpus (`tests/properties.rs`): a query string of `GET /connect/authorize` checked for
//! the fixed client it names ([`crate::oauth::fuzzing::clients`]). Nothing may panic, and what
//! is accepted must hold what acceptance promises (a registered redirect URI, known scopes of
//! the client, PKCE for public clients); an error goes back only to a registered redirect URI.

use axum::response::IntoResponse;

use crate::oauth::code::is_pkce_value;
use crate::oauth::fuzzing::client_named;
use crate::oauth::params::Params;
use crate::scopes;
use crate::store::clients::ClientRow;
use crate::web::authorize::{AuthorizeError, check_request};

/// The issuer the authorization requests are checked for.
pub const ISSUER: &str = "https://issuer.fuzz.test/identity/";

/// The `authorize_request` target: `data` as the query string of `GET /connect/authorize`,
/// checked for the fixed client it names.
pub fn authorize_request(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(params) = Params::parse(raw.as_bytes()) else {
        return;
    };
    let Some(client) = params.get("client_id").and_then(client_named) else {
        return;
    };
    for dev_mode in [false, true] {
        let outcome = check_request(ISSUER, dev_mode, raw, &params, client.clone());
        match &outcome {
            Ok(req) => {
                assert!(client.redirect_uris.contains(&req.redirect_uri));
                assert!(!req.scopes.is_empty());
                for s in &req.scopes {
                    assert!(
                        scopes::is_known(s, dev_mode) && client.scopes.contains(s),
                        "{s}"
                    );
                }
                if let Some(c) = &req.code_challenge {
                    assert!(is_pkce_value(c));
                }
                assert!(client.confidential || req.code_challenge.is_some(), "PKCE");
                assert!(!(req.prompt.iter().any(|p| p == "none") && req.prompt.len() > 1));
                assert!(req.max_age.is_none_or(|a| a >= 0));
                assert!(req.nonce.as_ref().is_none_or(|n| n.len() <= 512));
                assert_eq!(req.state.as_deref(), params.get("state"));
                assert_eq!(req.tenant, None, "the tenant is the store's to resolve");
            }
            Err(AuthorizeError::Page(status, _)) => assert!(status.is_client_error()),
            Err(AuthorizeError::Redirect(location)) => {
                redirected_back(client, location, params.get("state"));
            }
        }
        if let Err(e) = outcome {
            let _ = e.into_response();
        }
    }
}

/// An error redirect goes to one of the client's registered redirect URIs (no open
/// redirector), names the error and this issuer (RFC 9207), and returns the client's `state`.
fn redirected_back(client: &ClientRow, location: &str, state: Option<&str>) {
    let to = url::Url::parse(location).expect("an error redirect is a URL");
    let base = |u: &url::Url| {
        (
            u.scheme().to_owned(),
            u.host_str().map(str::to_owned),
            u.port(),
            u.path().to_owned(),
        )
    };
    assert!(
        client
            .redirect_uris
            .iter()
            .filter_map(|r| url::Url::parse(r).ok())
            .any(|r| base(&r) == base(&to)),
        "redirected to {location}"
    );
    let pairs: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    let value = |k: &str| {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("iss"), [ISSUER]);
    assert_eq!(value("error").len(), 1);
    assert_eq!(value("state"), state.into_iter().collect::<Vec<_>>());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_code_request_of_each_client_is_accepted() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let cases = [
            "client_id=web-app&redirect_uri=https%3A%2F%2Fapp.fuzz.test%2Fcb&response_type=code&scope=openid+db.read&state=s1".to_owned(),
            format!("client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A5173%2Fcallback&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256"),
        ];
        for raw in cases {
            let params = Params::parse(raw.as_bytes()).unwrap();
            let client = client_named(params.get("client_id").unwrap()).unwrap();
            assert!(check_request(ISSUER, false, &raw, &params, client.clone()).is_ok());
            authorize_request(raw.as_bytes());
        }
    }

    #[test]
    fn a_public_client_without_pkce_is_sent_back_with_its_state() {
        let raw = "client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A5173%2Fcallback&response_type=code&scope=openid&state=a+b%26c";
        let params = Params::parse(raw.as_bytes()).unwrap();
        let client = client_named("spa").unwrap();
        match check_request(ISSUER, false, raw, &params, client.clone()) {
            Err(AuthorizeError::Redirect(to)) => {
                redirected_back(client, &to, Some("a b&c"));
                assert!(to.contains("error=invalid_request"));
            }
            other => panic!("{other:?}"),
        }
    }
}
