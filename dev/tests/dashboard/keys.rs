//! Signing keys: "Rotate now" (confirmed) lands on the rotation's progress page, which shows
//! the new keys' stages and reloads itself; the rotation is a platform security event. The
//! master key: its section on the keys page, "Re-wrap now" (confirmed) and its progress page
//! to "Re-wrap done".
//!
//! The only test of this binary that rotates keys (a second rotation while one is pending
//! schedules nothing new).

use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn rotate_keys_and_rewrap_the_master_key() {
    let (mut b, base, csrf) = platform_admin().await;
    let api = AdminApi::new().await;

    // Rotate the signing keys: confirmation, then the rotation.
    let keys_before = b
        .get(&format!("{base}keys"))
        .await
        .body
        .matches("<tr>")
        .count();
    let r = b.get(&format!("{base}keys/rotate")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Rotate the signing keys now?"));
    let r = b
        .post(
            &format!("{base}keys/rotate"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    // The rotation runs for the lead time: its progress page shows the new keys' stages.
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location
            .starts_with(&format!("{base}keys/rotation?kids=")),
        "{}",
        r.location
    );
    let policy = api.get("admin/keys/policies").await;
    let pending: Vec<String> = policy["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "next")
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(!pending.is_empty(), "{policy}");
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Rotation scheduled"), "{}", r.body);
    for kid in &pending {
        assert!(r.body.contains(kid.as_str()), "{kid}: {}", r.body);
    }
    assert!(r.body.contains("✓ Published in the JWKS"), "{}", r.body);
    assert!(r.body.contains("Waiting for the lead time"), "{}", r.body);
    assert!(
        r.body.contains(r#"aria-label="Lead time of key"#),
        "{}",
        r.body
    );
    assert!(r.body.contains("<progress"), "{}", r.body);
    assert!(refreshes(&r.body), "it reloads itself while the keys wait");

    // The master key: the platform admin sees its ids and re-wrap state on the keys page.
    let master_key = api.get("admin/master-key").await;
    let r = b.get(&format!("{base}keys")).await;
    assert!(r.body.contains(r#"id="master-key""#), "{}", r.body);
    assert!(
        r.body
            .contains(master_key["current_key_id"].as_str().unwrap()),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains(r#"id="rewrap-state" class="badge ok">done<"#),
        "{}",
        r.body
    );
    // "Re-wrap now": the confirmation, the start, the progress page (nothing left here).
    let r = b.get(&format!("{base}keys/master-key/rewrap")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Re-wrap every row"), "{}", r.body);
    let r = b
        .post(&format!("{base}keys/master-key/rewrap"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "unconfirmed: back to the question"
    );
    assert!(
        r.location.ends_with("keys/master-key/rewrap"),
        "{}",
        r.location
    );
    let r = b
        .post(
            &format!("{base}keys/master-key/rewrap"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location, format!("{base}keys/master-key"));
    let r = until_shown(&mut b, &r.location, "Re-wrap done").await;
    assert!(
        r.body
            .contains(r#"id="rewrap-state" class="badge ok">done<"#),
        "{}",
        r.body
    );
    let keys_after = b
        .get(&format!("{base}keys"))
        .await
        .body
        .matches("<tr>")
        .count();
    assert!(keys_after > keys_before, "{keys_before} → {keys_after}");

    // The rotation is a platform security event.
    let r = b
        .get(&format!(
            "{base}admin/security-events?tenant=platform&type=keys.rotate"
        ))
        .await;
    assert!(rows(&r.body, "event") >= 1, "{}", r.body);
}
