//! The field names identity's admin API has always answered with, pinned: renaming a field of
//! these types compiles on both sides but changes the wire for every other client.

use std::collections::BTreeMap;

use serde::Serialize;

use super::*;

fn keys(v: &impl Serialize) -> Vec<String> {
    let mut k: Vec<String> = serde_json::to_value(v)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

fn names(s: &str) -> Vec<String> {
    let mut k: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
    k.sort();
    k
}

#[test]
fn signing_keys_and_the_master_key() {
    let key = SigningKey {
        kid: "k".into(),
        alg: "RS256".into(),
        state: "current".into(),
        published_from: "a".into(),
        signs_from: "b".into(),
        signs_until: None,
        published_until: None,
    };
    assert_eq!(
        keys(&key),
        names("kid alg state published_from signs_from signs_until published_until")
    );
    let policy = KeyPolicy {
        default_alg: "RS256".into(),
        algorithms: vec![],
        rotation_period_secs: 1,
        grace_secs: 1,
        lead_secs: 1,
        check_interval_secs: 1,
        jwks_max_age_secs: 1,
        keys: vec![key],
    };
    assert_eq!(
        keys(&policy),
        names(
            "default_alg algorithms rotation_period_secs grace_secs lead_secs \
             check_interval_secs jwks_max_age_secs keys"
        )
    );
    let run = RewrapRun::default();
    assert_eq!(
        keys(&run),
        names("started_at finished_at total_at_start rewrapped failed complete error")
    );
    let master = MasterKey {
        current_key_id: "m".into(),
        previous_key_ids: vec![],
        state: "done".into(),
        remaining: 0,
        remaining_by_table: BTreeMap::new(),
        last_run: Some(run),
    };
    assert_eq!(
        keys(&master),
        names("current_key_id previous_key_ids state remaining remaining_by_table last_run")
    );
}

#[test]
fn a_failed_discovery_check_names_only_what_it_knows() {
    let check = DiscoveryCheck {
        ok: false,
        discovery_url: "u".into(),
        reason: Some("r".into()),
        http_status: None,
        issuer: None,
        authorization_endpoint: None,
        token_endpoint: None,
        jwks_uri: None,
        elapsed_ms: 3,
    };
    assert_eq!(keys(&check), names("ok discovery_url reason elapsed_ms"));
}

#[test]
fn chain_checks_and_verifications() {
    let broken = ChainCheck {
        ok: false,
        checked: 1,
        first_broken: Some(BrokenLink {
            id: "e".into(),
            seq: 2,
            reason: "r".into(),
        }),
        starts_after_seq: None,
    };
    assert_eq!(keys(&broken), names("ok checked first_broken"));
    let job = Verification {
        id: "j".into(),
        tenant: "platform".into(),
        state: "running".into(),
        checked: 0,
        total: 0,
        started_at: "s".into(),
        finished_at: None,
        result: None,
        error: None,
    };
    assert_eq!(
        keys(&job),
        names("id tenant state checked total started_at finished_at result error")
    );
}

#[test]
fn activity_buckets_are_flat() {
    let bucket = ActivityBucket {
        hour: "h".into(),
        counts: Counts::default(),
    };
    assert_eq!(keys(&bucket), names("hour sign_ins failures tokens"));
    let page: Page<Secret> = Page {
        items: vec![],
        next_after: None,
    };
    assert_eq!(keys(&page), names("items next_after"));
}

#[test]
fn roles_registrations_ingest_and_secret_reads() {
    let custom = Role {
        name: "support".into(),
        description: "d".into(),
        scopes: vec!["openid".into()],
        builtin: false,
        created_at: Some("c".into()),
        updated_at: Some("u".into()),
    };
    assert_eq!(
        keys(&custom),
        names("name description scopes builtin created_at updated_at")
    );
    let builtin = Role {
        builtin: true,
        created_at: None,
        updated_at: None,
        ..custom
    };
    assert_eq!(keys(&builtin), names("name description scopes builtin"));
    let registered = Registered {
        tenant_id: "t".into(),
        slug: "s".into(),
        user_id: "u".into(),
    };
    assert_eq!(keys(&registered), names("tenant_id slug user_id"));
    let ingested = Ingested {
        accepted: 1,
        duplicates: 0,
    };
    assert_eq!(keys(&ingested), names("accepted duplicates"));
    let read = SecretRead {
        name: "n".into(),
        version: 1,
        value: "v".into(),
    };
    assert_eq!(keys(&read), names("name version value"));
    assert!(
        !format!("{read:?}").contains("\"v\""),
        "the value never shows"
    );
}

#[test]
fn a_client_update_sends_only_what_changes_and_null_resets_the_lifetime() {
    let update = ClientUpdate {
        name: Some("n".into()),
        access_token_lifetime_secs: Some(None),
        ..ClientUpdate::default()
    };
    let wire = serde_json::to_value(&update).unwrap();
    assert_eq!(
        wire,
        serde_json::json!({"name": "n", "access_token_lifetime_secs": null})
    );
    assert_eq!(
        serde_json::from_value::<ClientUpdate>(wire).unwrap(),
        update
    );
    let none: ClientUpdate = serde_json::from_str("{}").unwrap();
    assert_eq!(none.access_token_lifetime_secs, None);
    assert!(serde_json::from_str::<ClientUpdate>(r#"{"nmae": "x"}"#).is_err());
}
