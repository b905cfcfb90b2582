//! Token exchange (RFC 8693) for a service acting for a user, through `tansu-shared`'s
//! `TokenSource::on_behalf_of`: an allowed exchange keeps the user and tenant, narrows the
//! scopes and names the service in `act`; an audience the tenant does not allow, a widened
//! scope, another tenant's user, a client's own token and a platform client are refused; a
//! still-valid token of a removed member, a disabled user or a suspended tenant is not
//! exchanged, and a member's narrowed roles narrow what is. On SQLite and PostgreSQL.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::token_source::{ClientCredentials, TokenSource, TokenSourceError};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A confidential client of `tenant` that may use token exchange: its token source.
async fn service(inst: &Instance, client_id: &str, tenant: &str) -> TokenSource {
    let (id, secret) = inst
        .create_client(json!({
            "client_id": client_id, "name": client_id, "tenant_id": tenant,
            "grant_types": [EXCHANGE],
        }))
        .await;
    TokenSource::new(ClientCredentials {
        token_endpoint: inst.url("/connect/token").parse().unwrap(),
        client_id: id,
        client_secret: tansu_shared::config::Secret::new(secret),
        scope: String::new(),
    })
}

/// Sets the tenant's exchange rules (keeping the rest of its policy).
async fn allow_exchange(inst: &Instance, tenant: &str, rules: Value) {
    let admin = inst.admin_token().await;
    let t = inst
        .call_expect(
            Method::GET,
            &format!("/admin/tenants/{tenant}"),
            &admin,
            None,
            200,
        )
        .await;
    let mut policy = t["policy"].clone();
    policy["token_exchange"] = rules;
    let saved = inst
        .call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{tenant}"),
            &admin,
            Some(json!({ "policy": policy })),
            200,
        )
        .await;
    assert_eq!(saved["policy"]["token_exchange"], policy["token_exchange"]);
}

fn refused(r: Result<std::sync::Arc<str>, TokenSourceError>) -> String {
    match r {
        Err(TokenSourceError::OAuth { error, .. }) => error,
        other => panic!("an OAuth refusal, not {other:?}"),
    }
}

#[tokio::test]
async fn a_service_acts_for_a_user_within_the_tenants_policy() {
    for db in backends("token exchange").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("exchange-a").await;
        let b = inst.create_tenant("exchange-b").await;
        inst.create_member(&a, "alice@a.test", &["User"]).await;
        inst.create_member(&b, "bob@b.test", &["User"]).await;
        inst.create_client(json!({
            "client_id": "app", "name": "App", "first_party": true, "client_type": "public",
            "grant_types": ["authorization_code"], "redirect_uris": ["https://app.example/cb"],
            "scopes": ["openid", "db.read", "db.write", "storage.read"],
        }))
        .await;
        let scope = "openid db.read db.write storage.read";
        let alice = inst
            .user_access("app", "alice@a.test", USER_PASSWORD, scope, Some(&a))
            .await;
        let bob = inst
            .user_access("app", "bob@b.test", USER_PASSWORD, scope, Some(&b))
            .await;
        let orders = service(&inst, "orders-a", &a).await;
        let billing = service(&inst, "billing-b", &b).await;
        allow_exchange(
            &inst,
            &a,
            json!([{"client_id": "orders-a", "audiences": ["tansu.db"]}]),
        )
        .await;
        allow_exchange(
            &inst,
            &b,
            json!([{"client_id": "billing-b", "audiences": ["tansu.db"]}]),
        )
        .await;

        // Allowed: the same user and tenant, the asked scope only, the service as actor.
        let token = orders
            .on_behalf_of(&alice, "tansu.db", "db.read")
            .await
            .unwrap();
        let (user, got) = (jwt_claims(&alice), jwt_claims(&token));
        assert_eq!(got["sub"], user["sub"], "{} ({})", got, db.name());
        assert_eq!(got["tid"], a.as_str());
        assert_eq!(got["aud"], "tansu.db");
        assert_eq!(got["scope"], "db.read");
        assert_eq!(got["act"], json!({"sub": "orders-a"}));
        assert_eq!(got["client_id"], "orders-a");
        assert!(
            got["exp"].as_i64() <= user["exp"].as_i64(),
            "no longer than the user's"
        );
        // What a service verifies: the user, with the actor.
        let principal = inst
            .verifier("tansu.db")
            .await
            .verify(&token)
            .await
            .unwrap();
        assert_eq!(principal.sub, user["sub"].as_str().unwrap());
        assert_eq!(
            principal.act.as_ref().map(|a| a.sub.as_str()),
            Some("orders-a")
        );
        // No scope asked: every scope of the user's for that audience.
        let all = orders.on_behalf_of(&alice, "tansu.db", "").await.unwrap();
        assert_eq!(jwt_claims(&all)["scope"], "db.read db.write");

        // Refused: scopes widened or for another audience, an audience not allowed.
        for scope in ["db.provision", "storage.read", "db.read db.admin"] {
            assert_eq!(
                refused(orders.on_behalf_of(&alice, "tansu.db", scope).await),
                "invalid_scope",
                "{scope}"
            );
        }
        let narrow = orders
            .on_behalf_of(&alice, "tansu.db", "db.read")
            .await
            .unwrap();
        assert_eq!(
            refused(orders.on_behalf_of(&narrow, "tansu.db", "db.write").await),
            "invalid_scope",
            "an exchanged token cannot widen either"
        );
        assert_eq!(
            refused(
                orders
                    .on_behalf_of(&alice, "tansu.storage", "storage.read")
                    .await
            ),
            "invalid_target"
        );
        // Refused: another tenant's user, whichever side asks.
        assert_eq!(
            refused(orders.on_behalf_of(&bob, "tansu.db", "db.read").await),
            "invalid_grant"
        );
        assert_eq!(
            refused(billing.on_behalf_of(&alice, "tansu.db", "db.read").await),
            "invalid_grant"
        );
        // Refused: no user to act for, or not a token at all.
        let admin = inst.admin_token().await;
        assert_eq!(
            refused(orders.on_behalf_of(&admin, "tansu.db", "").await),
            "invalid_grant"
        );
        assert_eq!(
            refused(orders.on_behalf_of("not-a-token", "tansu.db", "").await),
            "invalid_grant"
        );
        // A chain: the exchanged token exchanged again keeps the whole chain of actors.
        allow_exchange(
            &inst,
            &a,
            json!([{"client_id": "orders-a", "audiences": ["tansu.db", "tansu.storage"]}]),
        )
        .await;
        let again = orders
            .on_behalf_of(&all, "tansu.db", "db.read")
            .await
            .unwrap();
        assert_eq!(
            jwt_claims(&again)["act"],
            json!({"sub": "orders-a", "act": {"sub": "orders-a"}})
        );
        let storage = orders
            .on_behalf_of(&alice, "tansu.storage", "storage.read")
            .await
            .unwrap();
        assert_eq!(jwt_claims(&storage)["aud"], "tansu.storage");

        // Only a tenant's confidential client may be registered for the grant.
        for body in [
            json!({"name": "spa", "client_type": "public", "tenant_id": a, "grant_types": [EXCHANGE]}),
            json!({"name": "platform", "grant_types": [EXCHANGE]}),
        ] {
            inst.call_expect(Method::POST, "/admin/clients", &admin, Some(body), 422)
                .await;
        }
        // The tenant's rules are checked: a known audience only.
        let t = inst
            .call_expect(
                Method::GET,
                &format!("/admin/tenants/{a}"),
                &admin,
                None,
                200,
            )
            .await;
        let mut policy = t["policy"].clone();
        policy["token_exchange"] =
            json!([{"client_id": "orders-a", "audiences": ["tansu.identity"]}]);
        inst.call_expect(
            Method::PATCH,
            &format!("/admin/tenants/{a}"),
            &admin,
            Some(json!({ "policy": policy })),
            422,
        )
        .await;
        // Discovery lists the grant.
        let (_, meta) = inst.get_as("/.well-known/openid-configuration", "").await;
        assert!(
            meta["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(EXCHANGE)),
            "{meta}"
        );
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_token_is_exchanged_only_while_its_user_is_a_member_of_an_active_tenant() {
    for db in backends("token exchange (membership)").await {
        let n = db.name();
        let inst = Instance::start(&db, "", |_| {}).await;
        let admin = inst.admin_token().await;
        let a = inst.create_tenant("member-a").await;
        let b = inst.create_tenant("member-b").await;
        inst.create_member(&a, "alice@a.test", &["User"]).await;
        let carol = inst.create_member(&a, "carol@a.test", &["User"]).await;
        let dave = inst.create_member(&a, "dave@a.test", &["User"]).await;
        inst.create_member(&b, "bob@b.test", &["User"]).await;
        inst.create_client(json!({
            "client_id": "app", "name": "App", "first_party": true, "client_type": "public",
            "grant_types": ["authorization_code"], "redirect_uris": ["https://app.example/cb"],
            "scopes": ["openid", "db.read", "db.write"],
        }))
        .await;
        let scope = "openid db.read db.write";
        let token_of = |email: &'static str, tid: String| {
            let inst = &inst;
            async move {
                inst.user_access("app", email, USER_PASSWORD, scope, Some(&tid))
                    .await
            }
        };
        let alice = token_of("alice@a.test", a.clone()).await;
        let carol_token = token_of("carol@a.test", a.clone()).await;
        let dave_token = token_of("dave@a.test", a.clone()).await;
        let bob = token_of("bob@b.test", b.clone()).await;
        let orders = service(&inst, "orders-m", &a).await;
        allow_exchange(
            &inst,
            &a,
            json!([{"client_id": "orders-m", "audiences": ["tansu.db"]}]),
        )
        .await;
        let db_verifier = inst.verifier("tansu.db").await;

        // Own tenant: every member's token is exchanged.
        for token in [&alice, &carol_token, &dave_token] {
            let got = orders.on_behalf_of(token, "tansu.db", "").await;
            assert!(got.is_ok(), "{n}: {got:?}");
        }
        // Another tenant's user's token: as if it were not valid.
        assert_eq!(
            refused(orders.on_behalf_of(&bob, "tansu.db", "").await),
            "invalid_grant",
            "{n}"
        );

        // A removed member: the token still verifies until it expires, but is not exchanged.
        inst.call_expect(
            Method::DELETE,
            &format!("/admin/tenants/{a}/users/{carol}"),
            &admin,
            None,
            204,
        )
        .await;
        assert!(db_verifier.verify(&carol_token).await.is_ok(), "{n}");
        assert_eq!(
            refused(orders.on_behalf_of(&carol_token, "tansu.db", "").await),
            "invalid_grant",
            "{n}: a removed member"
        );

        // A disabled user.
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/users/{dave}/disable"),
            &admin,
            None,
            200,
        )
        .await;
        assert_eq!(
            refused(orders.on_behalf_of(&dave_token, "tansu.db", "").await),
            "invalid_grant",
            "{n}: a disabled user"
        );

        // Narrowed roles: a custom role with db.read only; the exchange gives db.read only.
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/roles"),
            &admin,
            Some(json!({"name": "Reader", "scopes": ["db.read"]})),
            201,
        )
        .await;
        let alice_id = jwt_claims(&alice)["sub"].as_str().unwrap().to_owned();
        inst.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{a}/users/{alice_id}/roles"),
            &admin,
            Some(json!({"roles": ["Reader"]})),
            200,
        )
        .await;
        let narrowed = orders.on_behalf_of(&alice, "tansu.db", "").await.unwrap();
        assert_eq!(jwt_claims(&narrowed)["scope"], "db.read", "{n}");
        assert_eq!(jwt_claims(&narrowed)["roles"], json!(["Reader"]), "{n}");
        assert_eq!(
            refused(orders.on_behalf_of(&alice, "tansu.db", "db.write").await),
            "invalid_scope",
            "{n}"
        );

        // A suspended tenant: its service (a client of the tenant) gets nothing at all; active
        // again: exchanged again.
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/suspend"),
            &admin,
            None,
            200,
        )
        .await;
        assert_eq!(
            refused(orders.on_behalf_of(&alice, "tansu.db", "db.read").await),
            "unauthorized_client",
            "{n}: a suspended tenant"
        );
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/activate"),
            &admin,
            None,
            200,
        )
        .await;
        assert!(
            orders
                .on_behalf_of(&alice, "tansu.db", "db.read")
                .await
                .is_ok(),
            "{n}"
        );
        inst.stop().await;
        db.cleanup().await;
    }
}
