//! Master-key rotation: secrets, signing keys, TOTP enrolments and provider secrets
//! sealed under key A stay readable when identity restarts with key B current and A previous;
//! the re-wrap moves every row under B (raw rows carry B's id), after which identity runs with
//! B alone; a wrong or missing key is a clear start-up error; an interrupted re-wrap resumes,
//! and two replicas re-wrap once — on SQLite and (when configured) PostgreSQL.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use reqwest::Method;
use serde_json::json;
use tansu_identity::crypto::MasterKey;
use tansu_identity::master_keys::{self, RewrapOptions, RewrapOutcome};
use tansu_identity::mfa::{self, CodeOutcome};
use tansu_identity::store::Store;
use tansu_identity::store::sealed::SEALED_COLUMNS;
use tansu_identity::{AppState, Config};
use tansu_shared::config::Secret;

const SUITE: &str = "identity master key";
const VALUE: &str = "postgres://shop:rotating-db-password-0815@127.0.0.1/shop";
const PROVIDER_SECRET: &str = "provider-secret-sealed-under-the-tenant-key";

fn b64(bytes: [u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn key_a() -> String {
    master_key_b64()
}

fn key_b() -> String {
    b64([7u8; 32])
}

fn id_of(key: &str) -> String {
    MasterKey::from_base64(key).unwrap().id().to_owned()
}

/// Rows per master key id over every sealed table.
async fn key_ids(store: &Store) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for col in SEALED_COLUMNS {
        for (id, n) in store.sealed_counts(col).await.unwrap() {
            out.push((col.table.to_owned(), id, n));
        }
    }
    out
}

/// B current, A previous; the re-wrap is left to the test.
fn rotated(c: &mut Config) {
    c.master_key = Secret::new(key_b());
    c.previous_master_keys = vec![Secret::new(key_a())];
    c.master_key_rewrap_on_start = false;
}

fn b_only(c: &mut Config) {
    c.master_key = Secret::new(key_b());
}

/// What was sealed under A, and how to check it is still usable.
struct Sealed {
    tenant: String,
    provider: String,
    user: String,
    totp_secret: String,
}

impl Sealed {
    async fn put(id: &Instance) -> Self {
        let admin = id.admin_token().await;
        let tenant = id.create_tenant("rotation-shop").await;
        id.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{tenant}/secrets/db-url"),
            &admin,
            Some(json!({"value": VALUE})),
            201,
        )
        .await;
        let p = id
            .call_expect(
                Method::POST,
                &format!("/admin/tenants/{tenant}/providers"),
                &admin,
                Some(json!({
                    "name": "SSO",
                    "issuer": "https://sso.example.com/realms/acme",
                    "client_id": "tansu",
                    "client_secret": PROVIDER_SECRET,
                })),
                201,
            )
            .await;
        let user = id
            .create_member(&tenant, "rotor@rotation.example", &["User"])
            .await;
        let enrolment = mfa::begin_enrolment(
            &id.state.store,
            id.state.keys.master(),
            &user,
            "rotor@rotation.example",
            false,
        )
        .await
        .unwrap()
        .unwrap();
        // Confirmed with the previous step's code, so later checks can use later steps.
        let codes = mfa::confirm_enrolment(
            &id.state.store,
            id.state.keys.master(),
            &user,
            &totp_code_at(&enrolment.secret_base32, -1),
        )
        .await
        .unwrap();
        assert!(codes.is_some(), "TOTP enrolment confirmed");
        Self {
            tenant,
            provider: p["id"].as_str().unwrap().to_owned(),
            user,
            totp_secret: enrolment.secret_base32,
        }
    }

    /// Everything opens: the vault secret (over the API), the provider secret, a token signs
    /// and verifies, and a TOTP code for step `now + offset` is accepted.
    async fn check(&self, id: &Instance, totp_offset: i64) {
        let admin = id.admin_token().await;
        id.state.verify_access_token(&admin, None).await.unwrap();
        let (status, v) = id
            .get_as(
                &format!("/admin/tenants/{}/secrets/db-url", self.tenant),
                &admin,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["value"], VALUE);
        let row = id
            .state
            .store
            .provider(&self.tenant, &self.provider)
            .await
            .unwrap()
            .unwrap();
        let opened =
            tansu_identity::providers::client_secret(&id.state.store, id.state.keys.master(), &row)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(opened.as_str(), PROVIDER_SECRET);
        let outcome = mfa::verify(
            &id.state.store,
            id.state.keys.master(),
            &self.user,
            &totp_code_at(&self.totp_secret, totp_offset),
            false,
        )
        .await
        .unwrap();
        assert_eq!(outcome, CodeOutcome::Totp);
    }
}

async fn status(id: &Instance) -> serde_json::Value {
    let (status, v) = id
        .get_as("/admin/master-key", &id.admin_token().await)
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// A start-up error, as text.
async fn startup_error(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> String {
    let mut config = test_config(db, "http://127.0.0.1:9/", "127.0.0.1:0");
    tweak(&mut config);
    match AppState::new(config).await {
        Ok(state) => {
            state.store.close().await;
            panic!("identity started")
        }
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn rotation_keeps_everything_readable_and_the_old_key_can_go() {
    for db in backends(SUITE).await {
        let (a, b) = (id_of(&key_a()), id_of(&key_b()));

        // Under A.
        let id = Instance::start(&db, "", |_| {}).await;
        let sealed = Sealed::put(&id).await;
        let before = key_ids(&id.state.store).await;
        assert!(before.iter().all(|(_, k, _)| *k == a), "{before:?}");
        let tables: Vec<&str> = before.iter().map(|(t, _, _)| t.as_str()).collect();
        for t in ["signing_keys", "tenant_data_keys", "mfa_totp"] {
            assert!(tables.contains(&t), "{t} has rows: {before:?}");
        }
        let rows: i64 = before.iter().map(|(_, _, n)| n).sum();
        id.stop().await;

        // B current, A previous: everything still opens before any re-wrap.
        let id = Instance::start(&db, "", rotated).await;
        sealed.check(&id, 0).await;
        let s = status(&id).await;
        assert_eq!(s["current_key_id"], b.as_str(), "{s}");
        assert_eq!(s["previous_key_ids"], json!([a]), "{s}");
        assert_eq!(s["state"], "pending", "{s}");
        assert_eq!(s["remaining"], rows, "{s}");

        // Only admin.full starts the re-wrap.
        let (status_code, _) = id
            .call(
                Method::POST,
                "/admin/master-key/rewrap",
                "not-a-token",
                None,
            )
            .await;
        assert_eq!(status_code, 401);
        let resp = id
            .http
            .post(id.url("/admin/master-key/rewrap"))
            .bearer_auth(id.admin_token().await)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 202);
        assert!(
            resp.headers()[reqwest::header::LOCATION]
                .to_str()
                .unwrap()
                .ends_with("/admin/master-key")
        );
        let done = eventually(Duration::from_secs(30), "the re-wrap finishes", || async {
            let s = status(&id).await;
            (s["state"] == "done" && s["last_run"]["finished_at"].is_i64()).then_some(s)
        })
        .await;
        assert_eq!(done["remaining"], 0, "{done}");
        assert_eq!(done["last_run"]["rewrapped"], rows, "{done}");
        // The run's size when it started: the dashboard shows rewrapped / total_at_start.
        assert_eq!(done["last_run"]["total_at_start"], rows, "{done}");
        assert_eq!(done["last_run"]["failed"], 0, "{done}");
        assert_eq!(done["last_run"]["complete"], true, "{done}");
        let after = key_ids(&id.state.store).await;
        assert!(after.iter().all(|(_, k, _)| *k == b), "{after:?}");
        assert_eq!(after.iter().map(|(_, _, n)| n).sum::<i64>(), rows);
        // Start and finish are security events of the platform chain.
        let (st, ev) = id
            .get_as(
                "/admin/security-events?tenant=platform&type=master_key.rewrap",
                &id.admin_token().await,
            )
            .await;
        assert_eq!(st, 200, "{ev}");
        let phases: Vec<&str> = ev["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["details"]["phase"].as_str().unwrap_or(""))
            .collect();
        assert!(
            phases.contains(&"start") && phases.contains(&"finish"),
            "{ev}"
        );
        // A second request has nothing to do.
        let resp = id
            .http
            .post(id.url("/admin/master-key/rewrap"))
            .bearer_auth(id.admin_token().await)
            .send_ok()
            .await;
        assert_eq!(resp.status(), 202);
        assert_eq!(status(&id).await["state"], "done");
        id.stop().await;

        // A removed: B alone reads every secret, signs, verifies TOTP.
        let id = Instance::start(&db, "", b_only).await;
        sealed.check(&id, 1).await;
        id.stop().await;

        // A wrong key (C), or A alone after the re-wrap: a clear start-up error, no panic.
        let err = startup_error(&db, |c| {
            c.master_key = Secret::new(b64([9u8; 32]));
        })
        .await;
        assert!(
            err.contains("sealed under master key") && err.contains(&b),
            "{err}"
        );
        let err = startup_error(&db, |c| c.master_key = Secret::new(key_a())).await;
        assert!(
            err.contains(&b) && err.contains("previous_master_keys"),
            "{err}"
        );
        // No key at all (production mode, no value, env or file).
        let err = startup_error(&db, |c| {
            c.dev_mode = false;
            c.master_key = Secret::default();
            c.master_key_file = Some(db.dir.path().join("absent.key"));
        })
        .await;
        assert!(err.contains("no master key"), "{err}");
        // A malformed previous key is named.
        let err = startup_error(&db, |c| {
            b_only(c);
            c.previous_master_keys = vec![Secret::new("not base64!")];
        })
        .await;
        assert!(err.contains("previous_master_keys[0]"), "{err}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn interrupted_rewrap_resumes_and_replicas_rewrap_once() {
    for db in backends(SUITE).await {
        let (a, b) = (id_of(&key_a()), id_of(&key_b()));
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let mut tenants = Vec::new();
        for slug in ["resume-a", "resume-b", "resume-c"] {
            let t = id.create_tenant(slug).await;
            tenants.push((t.clone(), slug));
            let (status, v) = id
                .call(
                    Method::PUT,
                    &format!("/admin/tenants/{t}/secrets/s"),
                    &admin,
                    Some(json!({"value": slug})),
                )
                .await;
            assert_eq!(status, 201, "{v}");
        }
        let rows: i64 = key_ids(&id.state.store)
            .await
            .iter()
            .map(|(_, _, n)| n)
            .sum();
        assert!(rows >= 6, "{rows}");
        id.stop().await;

        let one = Instance::start(&db, "", rotated).await;
        // Interrupted after the first batch of one row.
        let options = RewrapOptions {
            batch_size: 1,
            max_batches: Some(1),
        };
        let RewrapOutcome::Ran(run) =
            master_keys::rewrap(&one.state.rewrapper(), "system", options)
                .await
                .unwrap()
        else {
            panic!("the re-wrap did not run")
        };
        assert_eq!((run.rewrapped, run.complete), (1, false));
        let ids = key_ids(&one.state.store).await;
        let under = |k: &str| -> i64 {
            ids.iter()
                .filter(|(_, id, _)| id == k)
                .map(|(_, _, n)| n)
                .sum()
        };
        assert_eq!((under(&b), under(&a)), (1, rows - 1), "{ids:?}");
        assert_eq!(status(&one).await["state"], "pending");

        // Another replica holding the lease (e.g. one that crashed): this one waits.
        let store = &one.state.store;
        let now = tansu_identity::store::now_ms();
        assert!(
            store
                .try_acquire_lease(master_keys::REWRAP_LEASE, "other", now, now + 60_000)
                .await
                .unwrap()
        );
        let full = RewrapOptions {
            batch_size: 2,
            max_batches: None,
        };
        assert!(matches!(
            master_keys::rewrap(&one.state.rewrapper(), "system", full)
                .await
                .unwrap(),
            RewrapOutcome::Busy
        ));
        assert_eq!(status(&one).await["state"], "running");
        store
            .release_lease(master_keys::REWRAP_LEASE, "other")
            .await
            .unwrap();

        // Two replicas resume at once: one re-wraps the rest, every row exactly once.
        let two = Instance::start(&db, "", rotated).await;
        let (w1, w2) = (one.state.rewrapper(), two.state.rewrapper());
        let (r1, r2) = tokio::join!(
            master_keys::rewrap(&w1, "system", full),
            master_keys::rewrap(&w2, "system", full)
        );
        let rewrapped: u64 = [r1.unwrap(), r2.unwrap()]
            .iter()
            .map(|r| match r {
                RewrapOutcome::Ran(run) => {
                    assert!(run.complete && run.failed == 0, "{run:?}");
                    run.rewrapped
                }
                _ => 0,
            })
            .sum();
        assert_eq!(rewrapped, u64::try_from(rows - 1).unwrap());
        let ids = key_ids(&one.state.store).await;
        assert!(ids.iter().all(|(_, k, _)| *k == b), "{ids:?}");
        assert!(matches!(
            master_keys::rewrap(&two.state.rewrapper(), "system", full)
                .await
                .unwrap(),
            RewrapOutcome::NothingToDo
        ));
        one.stop().await;
        two.stop().await;

        // B alone reads every tenant's secret.
        let id = Instance::start(&db, "", b_only).await;
        let admin = id.admin_token().await;
        for (tid, slug) in &tenants {
            let (status, v) = id
                .get_as(&format!("/admin/tenants/{tid}/secrets/s"), &admin)
                .await;
            assert_eq!((status, v["value"].as_str()), (200, Some(*slug)), "{v}");
        }
        id.stop().await;
        db.cleanup().await;
    }
}
