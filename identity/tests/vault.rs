//! The secrets vault: envelope encryption (raw rows are ciphertext), versions,
//! least privilege by scope and tenant, revocation, and a security event for every read — on
//! SQLite and (when configured) PostgreSQL.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const SUITE: &str = "identity vault";
const RAW_BLOBS: &str = "SELECT ciphertext AS b FROM tenant_secrets \
    UNION ALL SELECT wrapped_key AS b FROM tenant_data_keys";
const VALUE: &str = "postgres://shop:very-secret-db-password-4711@127.0.0.1/shop";

#[tokio::test]
async fn vault_envelope_versions_scopes_and_revocation() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let a = id.create_tenant("vault-a").await;
        let b = id.create_tenant("vault-b").await;
        let (writer, ws) = id
            .create_client(json!({"name": "w", "tenant_id": a, "grant_types": ["client_credentials"], "scopes": ["secrets.read", "secrets.write"]}))
            .await;
        let (reader, rs) = id
            .create_client(json!({"name": "r", "tenant_id": a, "grant_types": ["client_credentials"], "scopes": ["secrets.read", "db.read"]}))
            .await;
        let (other, os) = id
            .create_client(json!({"name": "o", "tenant_id": b, "grant_types": ["client_credentials"], "scopes": ["secrets.read", "secrets.write"]}))
            .await;
        let w = id
            .access_token(&writer, &ws, Some("secrets.read secrets.write"))
            .await;
        let r = id.access_token(&reader, &rs, Some("secrets.read")).await;
        let o = id
            .access_token(&other, &os, Some("secrets.read secrets.write"))
            .await;
        let db_only = id.access_token(&reader, &rs, Some("db.read")).await;
        let base = format!("/admin/tenants/{a}/secrets");

        let v = id
            .call_expect(
                Method::PUT,
                &format!("{base}/db-url"),
                &w,
                Some(json!({"value": VALUE})),
                201,
            )
            .await;
        assert_eq!(v["version"], 1);
        let (status, v) = id.get_as(&format!("{base}/db-url"), &r).await;
        assert_eq!(status, 200);
        assert_eq!(v["value"], VALUE);

        // At rest: ciphertext only, in the secret rows and the wrapped data key alike.
        let blobs = raw_bytes(&id.state.store, RAW_BLOBS).await;
        assert_eq!(blobs.len(), 2);
        for blob in &blobs {
            assert!(!contains_bytes(blob, VALUE.as_bytes()));
            assert!(!contains_bytes(blob, b"very-secret"));
        }

        // Rotation: a new version; old versions stay readable by number.
        let v = id
            .call_expect(
                Method::PUT,
                &format!("{base}/db-url"),
                &w,
                Some(json!({"value": "second value"})),
                201,
            )
            .await;
        assert_eq!(v["version"], 2);
        let (_, v) = id.get_as(&format!("{base}/db-url"), &r).await;
        assert_eq!(
            (v["version"].as_i64(), v["value"].as_str()),
            (Some(2), Some("second value"))
        );
        let (_, v) = id.get_as(&format!("{base}/db-url?version=1"), &r).await;
        assert_eq!(v["value"], VALUE);

        // Listing: names and versions, never values.
        let (status, list) = id.get_as(&base, &r).await;
        assert_eq!(status, 200);
        assert_eq!(list["items"][0]["name"], "db-url");
        assert_eq!(list["items"][0]["versions"].as_array().unwrap().len(), 2);
        assert!(
            !list.to_string().contains("second value") && !list.to_string().contains("very-secret")
        );

        // Least privilege: read-only cannot write; no secrets scope, no access; other tenants: 404.
        id.call_expect(
            Method::PUT,
            &format!("{base}/x"),
            &r,
            Some(json!({"value": "v"})),
            403,
        )
        .await;
        let (status, _) = id.get_as(&format!("{base}/db-url"), &db_only).await;
        assert!(status == 401 || status == 403, "{status}");
        for (method, path) in [
            (Method::GET, base.clone()),
            (Method::GET, format!("{base}/db-url")),
            (Method::PUT, format!("{base}/db-url")),
            (Method::POST, format!("{base}/db-url/revoke")),
        ] {
            let (status, v) = id
                .call(method.clone(), &path, &o, Some(json!({"value": "pwn"})))
                .await;
            assert_eq!(status, 404, "{method} {path}");
            assert!(!v.to_string().contains("second value"));
        }
        id.call_expect(
            Method::PUT,
            &format!("{base}/bad%20name"),
            &w,
            Some(json!({"value": "v"})),
            400,
        )
        .await;

        // Revocation: no version can be read any more.
        id.call_expect(
            Method::POST,
            &format!("{base}/db-url/revoke"),
            &w,
            None,
            204,
        )
        .await;
        for path in [format!("{base}/db-url"), format!("{base}/db-url?version=1")] {
            let (status, v) = id.get_as(&path, &r).await;
            assert_eq!(status, 404, "{v}");
        }

        // Every read is a security event of the tenant; the chain holds.
        let (_, ev) = id
            .get_as(
                &format!("/admin/security-events?tenant={a}&type=secret.read"),
                &admin,
            )
            .await;
        let reads = ev["items"].as_array().unwrap();
        assert_eq!(reads.len(), 5, "{ev}");
        assert!(
            reads
                .iter()
                .all(|e| e["actor"] == format!("client:{reader}"))
        );
        assert!(!ev.to_string().contains("second value"));
        let (_, v) = id
            .get_as(&format!("/admin/security-events/verify?tenant={a}"), &admin)
            .await;
        assert_eq!(v["ok"], true);

        id.stop().await;
        db.cleanup().await;
    }
}
