//! The platform end to end, through the TLS gateway, with tokens from the real issuer:
//! client credentials → tenant client → provisioning → tenant data, and the tenant boundary.

use std::time::Duration;

use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};
use tansu_shared::auth::{Verifier, VerifierConfig};

struct Platform {
    stack: Stack,
    http: reqwest::Client,
    base: String,
    dev_secret: String,
}

async fn platform(dir: &std::path::Path) -> Platform {
    let mut stack = Stack::start(StackOptions::for_tests(dir)).await.unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(stack.certificate_pem.as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let dev_secret = std::fs::read_to_string(dir.join("identity/tansu-dashboard.secret"))
        .expect("dev mode writes the seeded client's secret")
        .trim()
        .to_owned();
    let base = format!("https://{}", stack.gateway);
    Platform {
        stack,
        http,
        base,
        dev_secret,
    }
}

impl Platform {
    async fn token(&self, client_id: &str, secret: &str, scope: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/identity/connect/token", self.base))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "token for {client_id} ({scope})");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn create_tenant(&self, admin: &str, slug: &str) -> uuid::Uuid {
        let resp = self
            .http
            .post(format!("{}/identity/admin/tenants", self.base))
            .bearer_auth(admin)
            .json(&json!({"slug": slug, "name": slug}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "create tenant {slug}");
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    async fn tenant_client(&self, admin: &str, tenant: uuid::Uuid) -> (String, String) {
        let resp = self
            .http
            .post(format!("{}/identity/admin/clients", self.base))
            .bearer_auth(admin)
            .json(&json!({
                "name": format!("app of {tenant}"),
                "tenant_id": tenant,
                "grant_types": ["client_credentials"],
                "scopes": ["db.read", "db.write"],
            }))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create client: {}",
            resp.status()
        );
        let body: Value = resp.json().await.unwrap();
        (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
async fn tenant_data_flows_through_gateway_with_issuer_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path()).await;

    // The issuer's tokens verify with the shared verifier, discovered through the gateway.
    let admin = p
        .token("tansu-dashboard", &p.dev_secret, "admin.full db.provision")
        .await;
    let verifier = Verifier::new({
        let mut c = VerifierConfig::new(p.stack.issuer.clone(), "tansu.identity");
        c.jwks_uri = Some(
            format!("http://{}/.well-known/jwks", p.stack.services[0].1)
                .parse()
                .unwrap(),
        );
        c
    })
    .await
    .unwrap();
    let claims = verifier.verify(&admin).await.unwrap();
    assert!(claims.has_scope("admin.full") && claims.has_scope("db.provision"));
    let tenant_a = p.create_tenant(&admin, "shop-a").await;
    let tenant_b = p.create_tenant(&admin, "shop-b").await;

    // Provision both tenants' databases with the platform token.
    for t in [tenant_a, tenant_b] {
        let resp = p
            .http
            .put(format!("{}/db/provision/{t}", p.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "provision {t}");
    }

    let (a_id, a_secret) = p.tenant_client(&admin, tenant_a).await;
    let (b_id, b_secret) = p.tenant_client(&admin, tenant_b).await;
    let token_a = p.token(&a_id, &a_secret, "db.read db.write").await;
    let token_b = p.token(&b_id, &b_secret, "db.read db.write").await;

    // Tenant A writes; a spoofed X-Tansu-Tenant naming B is stripped by the gateway, and the
    // tenant comes from the token.
    let resp = p
        .http
        .post(format!("{}/db/api/collections", p.base))
        .bearer_auth(&token_a)
        .header("x-tansu-tenant", tenant_b.to_string())
        .json(&json!({"name": "orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = p
        .http
        .post(format!("{}/db/api/collections/orders/documents", p.base))
        .bearer_auth(&token_a)
        .json(&json!({"total": 42}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let doc: Value = resp.json().await.unwrap();
    let id = doc["id"].as_str().unwrap().to_owned();

    let resp = p
        .http
        .get(format!(
            "{}/db/api/collections/orders/documents/{id}",
            p.base
        ))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Tenant B sees nothing of A's, and cannot reach A's tenant by naming it in the path.
    let resp = p
        .http
        .get(format!(
            "{}/db/api/collections/orders/documents/{id}",
            p.base
        ))
        .bearer_auth(&token_b)
        .header("x-tansu-tenant", tenant_a.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "B must not see A's collection");
    let resp = p
        .http
        .get(format!("{}/t/{tenant_a}/db/api/collections", p.base))
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "path tenant A with B's token");

    // A tenant token cannot provision, and a read-only token cannot write.
    let resp = p
        .http
        .put(format!("{}/db/provision/{}", p.base, uuid::Uuid::now_v7()))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let read_only = p.token(&a_id, &a_secret, "db.read").await;
    let resp = p
        .http
        .post(format!("{}/db/api/collections/orders/documents", p.base))
        .bearer_auth(&read_only)
        .json(&json!({"total": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    p.stack.shutdown().await.unwrap();
}

/// Self-service registration through the gateway provisions the new tenant's database in real
/// database-svc (over HTTP, with identity's provisioning client's token) and keeps the
/// descriptor in the tenant's vault.
#[tokio::test]
async fn registration_provisions_a_database_through_database_svc() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path()).await;
    let resp = p
        .http
        .post(format!("{}/identity/registrations", p.base))
        .json(&json!({
            "email": "owner@registered.example",
            "password": "a long unique phrase 42",
            "shop_name": "Registered Shop",
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    let tenant = body["tenant_id"].as_str().unwrap().to_owned();
    assert_eq!(body["slug"], "registered-shop");

    // database-svc has the database.
    let provisioner_secret =
        std::fs::read_to_string(dir.path().join("identity/tansu-provisioner.secret"))
            .expect("dev mode writes the provisioning client's secret")
            .trim()
            .to_owned();
    let provision = p
        .token("tansu-provisioner", &provisioner_secret, "db.provision")
        .await;
    let resp = p
        .http
        .get(format!("{}/db/provision/{tenant}", p.base))
        .bearer_auth(&provision)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let descriptor: Value = resp.json().await.unwrap();
    assert_eq!(descriptor["tenant"], tenant.as_str());
    assert_eq!(descriptor["status"], "active", "{descriptor}");

    // The vault holds the same descriptor.
    let admin = p
        .token("tansu-dashboard", &p.dev_secret, "admin.full")
        .await;
    let resp = p
        .http
        .get(format!(
            "{}/identity/admin/tenants/{tenant}/secrets/database",
            p.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let secret: Value = resp.json().await.unwrap();
    let stored: Value = serde_json::from_str(secret["value"].as_str().unwrap()).unwrap();
    assert_eq!(stored["tenant"], tenant.as_str());
    assert_eq!(stored["database"], descriptor["database"]);
    assert_eq!(stored["backend"], descriptor["backend"]);
    assert!(
        stored.get("credential").is_none(),
        "the credential is kept apart"
    );
    // …and the scoped credential database-svc returned (embedded SQLite: the document API's).
    let resp = p
        .http
        .get(format!(
            "{}/identity/admin/tenants/{tenant}/secrets/database-credential",
            p.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let secret: Value = resp.json().await.unwrap();
    let credential: Value = serde_json::from_str(secret["value"].as_str().unwrap()).unwrap();
    assert_eq!(credential["kind"], "document-api", "{credential}");
    assert_eq!(credential["tenant"], tenant.as_str(), "{credential}");

    // The owner's tenant can use its database right away.
    let (client, secret) = p.tenant_client(&admin, tenant.parse().unwrap()).await;
    let token = p.token(&client, &secret, "db.read db.write").await;
    let resp = p
        .http
        .post(format!("{}/db/api/collections", p.base))
        .bearer_auth(&token)
        .json(&json!({"name": "orders"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    p.stack.shutdown().await.unwrap();
}

/// The gateway's tenant directory is identity's: a tenant created in identity is
/// resolved by path, an unknown slug answers 404, and a suspension answers 403 within the
/// gateway's tenant cache bound (`tenant_cache_ms`, 5 s by default), then recovers.
#[tokio::test]
async fn gateway_resolves_tenants_from_identity_and_refuses_suspended_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path()).await;
    let admin = p
        .token("tansu-dashboard", &p.dev_secret, "admin.full")
        .await;
    let tenant = p.create_tenant(&admin, "shop-dir").await;
    let through = |slug: &str| format!("{}/t/{slug}/identity/health/live", p.base);
    let status_of = |url: String| {
        let http = p.http.clone();
        async move {
            let resp = http.get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    assert_eq!(status_of(through("shop-dir")).await.0, 200);
    let (status, body) = status_of(through("no-such-shop")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown-tenant"), "{body}");

    let bound = Duration::from_millis(tansu_gateway::Config::default().tenant_cache_ms)
        + Duration::from_secs(2);
    for (action, want) in [("suspend", 403), ("activate", 200)] {
        let resp = p
            .http
            .post(format!(
                "{}/identity/admin/tenants/{tenant}/{action}",
                p.base
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{action}");
        let changed = std::time::Instant::now();
        let (status, body) = loop {
            let (status, body) = status_of(through("shop-dir")).await;
            if status == want || changed.elapsed() > bound {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status, want, "after {action} within {bound:?}: {body}");
        if want == 403 {
            assert!(body.contains("tenant-suspended"), "{body}");
        }
    }
    p.stack.shutdown().await.unwrap();
}

/// A presigned storage URL carries no token and, on the gateway's shared `/storage` path, names
/// no tenant the gateway resolves: storage itself asks identity's tenant directory when the
/// URL is used. Suspending the tenant refuses the URL (403 problem+json) within storage's
/// cache bound; reactivating it lets the unexpired URL work again.
#[tokio::test]
async fn presigned_storage_urls_follow_the_tenant_status() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path()).await;
    let admin = p
        .token("tansu-dashboard", &p.dev_secret, "admin.full")
        .await;
    let tenant = p.create_tenant(&admin, "shop-files").await;
    let resp = p
        .http
        .post(format!("{}/identity/admin/clients", p.base))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "files app",
            "tenant_id": tenant,
            "grant_types": ["client_credentials"],
            "scopes": ["storage.read", "storage.write"],
        }))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "create client: {}",
        resp.status()
    );
    let client: Value = resp.json().await.unwrap();
    let token = p
        .token(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap(),
            "storage.read storage.write",
        )
        .await;
    let storage = |path: &str| format!("{}/storage/api{path}", p.base);
    let resp = p
        .http
        .put(storage("/buckets/files"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "create bucket");
    let resp = p
        .http
        .put(storage("/buckets/files/objects/cat.txt"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("a cat")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "upload");
    let presigned: Value = p
        .http
        .post(storage("/buckets/files/presign"))
        .bearer_auth(&token)
        .json(&json!({"key": "cat.txt", "method": "GET"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{}{}", p.base, presigned["url"].as_str().unwrap());
    let get = || {
        let (http, url) = (p.http.clone(), url.clone());
        async move {
            let resp = http.get(url).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    assert_eq!(get().await, (200, "a cat".to_owned()));

    let bound = Duration::from_millis(
        tansu_shared::tenant_directory::TenantDirectoryConfig::default().cache_ms,
    ) + Duration::from_secs(2);
    for (action, want) in [("suspend", 403), ("activate", 200)] {
        let resp = p
            .http
            .post(format!(
                "{}/identity/admin/tenants/{tenant}/{action}",
                p.base
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{action}");
        let changed = std::time::Instant::now();
        let (status, body) = loop {
            let (status, body) = get().await;
            if status == want || changed.elapsed() > bound {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status, want, "after {action} within {bound:?}: {body}");
        if want == 403 {
            assert!(
                body.contains("urn:tansu:problem:tenant-suspended"),
                "{body}"
            );
        }
    }
    p.stack.shutdown().await.unwrap();
}
