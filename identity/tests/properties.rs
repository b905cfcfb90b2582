//! Properties of the OAuth form parsing over generated bodies: any body is parsed or refused
//! with an OAuth error (never a panic), a form of distinct parameters round-trips, Basic client
//! credentials round-trip, and an authorization request is accepted only for a registered
//! redirect URI. The `token_request` and `authorize_request` fuzz targets' committed inputs
//! replay here too.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tansu_identity::oauth::fuzzing::{basic_header, client_named};
use tansu_identity::oauth::params::Params;
use tansu_identity::oauth::token::{AuthMethod, Presented, presented_client};
use tansu_identity::web::authorize::{AuthorizeError, check_request};
use tansu_identity::web::fuzzing::ISSUER;

proptest! {
    #[test]
    fn any_body_is_parsed_or_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Params::parse(&body);
    }

    #[test]
    fn distinct_parameters_round_trip(
        form in proptest::collection::btree_map("\\PC{1,12}", "\\PC{1,40}", 0..8)
    ) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let params = match Params::parse(body.as_bytes()) {
            Ok(p) => p,
            Err(_) => return Err(TestCaseError::fail(format!("refused {body:?}"))),
        };
        for (k, v) in &form {
            prop_assert_eq!(params.get(k), Some(v.as_str()));
        }
    }

    #[test]
    fn a_repeated_parameter_is_refused(
        form in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{1,20}", 1..6),
        again in "\\PC{1,20}",
    ) {
        let first: BTreeMap<_, _> = form;
        let (k, _) = first.iter().next().unwrap();
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(first.iter())
            .append_pair(k, &again)
            .finish();
        prop_assert!(Params::parse(body.as_bytes()).is_err());
    }
}

proptest! {
    /// What a client encodes in `Authorization: Basic` (RFC 6749 §2.3.1), the token endpoint
    /// reads back, whatever the characters.
    #[test]
    fn basic_credentials_round_trip(id in "\\PC{1,30}", secret in "\\PC{0,60}") {
        let params = Params::parse(b"grant_type=client_credentials").unwrap();
        let presented = presented_client(&basic_header(&id, &secret), &params);
        prop_assert_eq!(
            presented.ok(),
            Some(Presented::Client { id, secret: Some(secret), method: AuthMethod::ClientSecretBasic })
        );
    }

    /// Any request (target: the fuzz harness, with its invariants) and any redirect_uri: the
    /// request is accepted or sent back only for one of the client's registered URIs.
    #[test]
    fn only_a_registered_redirect_uri_is_used(
        client_id in prop_oneof![Just("web-app"), Just("spa"), Just("tenant-app"), Just("machine")],
        redirect in prop_oneof![
            Just("https://app.fuzz.test/cb".to_owned()),
            Just("https://app.fuzz.test/cb/".to_owned()),
            Just("https://APP.fuzz.test/cb".to_owned()),
            Just("http://127.0.0.1:5173/callback".to_owned()),
            Just("https://acme.fuzz.test/signed-in".to_owned()),
            "\\PC{0,30}",
        ],
        rest in proptest::collection::btree_map(
            prop_oneof![Just("response_type"), Just("scope"), Just("state"), Just("code_challenge"),
                        Just("code_challenge_method"), Just("prompt"), Just("max_age"), Just("nonce")],
            "\\PC{0,50}",
            0..8,
        ),
    ) {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect)
            .extend_pairs(rest.iter())
            .finish();
        let client = client_named(client_id).unwrap();
        let params = Params::parse(query.as_bytes()).unwrap();
        let registered = client.redirect_uris.contains(&redirect);
        match check_request(ISSUER, false, &query, &params, client.clone()) {
            Ok(req) => prop_assert!(registered && req.redirect_uri == redirect),
            Err(AuthorizeError::Redirect(to)) => {
                prop_assert!(registered && to.starts_with(redirect.as_str()), "{}", to)
            }
            Err(AuthorizeError::Page(..)) => {}
        }
        tansu_identity::web::fuzzing::authorize_request(query.as_bytes());
    }
}

/// The `token_request` and `authorize_request` fuzz targets' committed inputs replay without a
/// fault.
#[test]
fn the_identity_fuzz_corpora_replay() {
    for (name, data) in tansu_shared::testing::fuzz_corpus("token_request") {
        eprintln!("token_request/{name}");
        tansu_identity::oauth::fuzzing::token_request(&data);
    }
    for (name, data) in tansu_shared::testing::fuzz_corpus("authorize_request") {
        eprintln!("authorize_request/{name}");
        tansu_identity::web::fuzzing::authorize_request(&data);
    }
}
