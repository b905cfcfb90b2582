//! The OS keyring as the master-key source, through the `keyring` crate — on Linux
//! the kernel keyring (keyutils), which works headless. Where no keyring is reachable the test
//! skips, except under `TANSU_REQUIRE_ALL=1`, where it fails.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use tansu_identity::AppState;
use tansu_identity::crypto::MasterKey;
use tansu_shared::config::Secret;

const SUITE: &str = "identity master key (keyring)";

/// Whether the OS keyring stores and returns an entry here.
fn keyring_works() -> Result<(), String> {
    // As identity does before using the keyring.
    tansu_identity::crypto::ensure_session_keyring();
    let service = format!("tansu-test-probe-{}", uuid::Uuid::now_v7().simple());
    let entry = keyring::Entry::new(&service, "probe").map_err(|e| e.to_string())?;
    entry.set_password("probe").map_err(|e| e.to_string())?;
    let back = entry.get_password().map_err(|e| e.to_string());
    let _ = entry.delete_credential();
    match back {
        Ok(v) if v == "probe" => Ok(()),
        Ok(_) => Err("the keyring returned another value".into()),
        Err(e) => Err(e),
    }
}

/// The keyring entry, deleted when the test ends (also on failure).
struct Entry(keyring::Entry);

impl Drop for Entry {
    fn drop(&mut self) {
        let _ = self.0.delete_credential();
    }
}

#[tokio::test]
async fn master_key_from_the_os_keyring() {
    if let Err(e) = keyring_works() {
        assert!(
            std::env::var("TANSU_REQUIRE_ALL").as_deref() != Ok("1"),
            "TANSU_REQUIRE_ALL=1 but the OS keyring is not usable here: {e}"
        );
        eprintln!("skipping {SUITE}: the OS keyring is not usable here: {e}");
        return;
    }
    for db in backends(SUITE).await {
        let service = format!("tansu-test-{}", uuid::Uuid::now_v7().simple());
        let user = "identity-master-key";
        let entry = Entry(keyring::Entry::new(&service, user).unwrap());
        let keyring = |c: &mut tansu_identity::Config| {
            c.master_key = Secret::default();
            c.master_key_source = "keyring".into();
            c.master_key_keyring_service = service.clone();
            c.master_key_keyring_user = user.into();
        };

        // Production mode without an entry: a clear start-up error, nothing created.
        let mut config = test_config(&db, "http://127.0.0.1:9/", "127.0.0.1:0");
        keyring(&mut config);
        config.dev_mode = false;
        let err = match AppState::new(config).await {
            Ok(_) => panic!("identity started without a master key"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("no master key in the OS keyring"), "{err}");
        assert!(matches!(
            entry.0.get_password(),
            Err(keyring::Error::NoEntry)
        ));

        // Dev mode creates the entry: the base64 of a 32-byte key, the one identity uses.
        let id = Instance::start(&db, "", keyring).await;
        let stored = entry.0.get_password().expect("dev mode created the entry");
        let key = MasterKey::from_base64(&stored).unwrap();
        assert_eq!(id.state.keys.master().id(), key.id());
        let admin = id.admin_token().await;
        let t = id.create_tenant("keyring-shop").await;
        let path = format!("/admin/tenants/{t}/secrets/api-key");
        id.call_expect(
            Method::PUT,
            &path,
            &admin,
            Some(json!({"value": "kept in the keyring"})),
            201,
        )
        .await;
        id.stop().await;

        // A restart reads the same key back from the keyring: the secret still opens.
        let id = Instance::start(&db, "", keyring).await;
        assert_eq!(id.state.keys.master().id(), key.id());
        let (status, v) = id.get_as(&path, &id.admin_token().await).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["value"], "kept in the keyring");
        id.stop().await;

        // A malformed entry is named, not a panic.
        entry.0.set_password("not a key").unwrap();
        let mut config = test_config(&db, "http://127.0.0.1:9/", "127.0.0.1:0");
        keyring(&mut config);
        let err = match AppState::new(config).await {
            Ok(_) => panic!("identity started with a malformed key"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("OS keyring entry"), "{err}");
        drop(entry);
        db.cleanup().await;
    }
}
