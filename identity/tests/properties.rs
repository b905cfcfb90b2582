//! Properties of the OAuth form parsing over generated bodies: any body is parsed or refused
//! with an OAuth error (never a panic), and a form of distinct parameters round-trips.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tansu_identity::oauth::params::Params;

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
