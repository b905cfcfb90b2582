//! Custom per-tenant roles mapping to scopes: the admin API, built-in roles that
//! cannot be changed, grants narrowed to what custom roles allow (effective at the next token),
//! and tenant isolation.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const SUITE: &str = "identity roles";

fn scope_of(tokens: &serde_json::Value) -> String {
    jwt_claims(tokens["access_token"].as_str().unwrap())["scope"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn custom_roles_map_to_scopes_per_tenant() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let a = id.create_tenant("roles-a").await;
        let b = id.create_tenant("roles-b").await;
        let app = id.tenant_app().await;
        id.create_member(&a, "alice@roles.example", &["Admin"])
            .await;
        id.create_member(&b, "bob@roles.example", &["Admin"]).await;
        let carl = id.create_member(&a, "carl@roles.example", &["User"]).await;
        let tenant_admin = |email: &'static str| {
            let id = &id;
            let app = app.clone();
            async move {
                let t = id
                    .user_tokens(&app, email, USER_PASSWORD, "openid admin.tenant", None)
                    .await
                    .unwrap();
                t["access_token"].as_str().unwrap().to_owned()
            }
        };
        let alice = tenant_admin("alice@roles.example").await;
        let bob = tenant_admin("bob@roles.example").await;
        let roles_a = format!("/admin/tenants/{a}/roles");

        // The built-in roles are listed and cannot be changed or deleted.
        let (status, v) = id.get_as(&roles_a, &alice).await;
        assert_eq!(status, 200, "{v}");
        let names: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Owner", "Admin", "User"]);
        for builtin in ["Owner", "Admin", "User"] {
            let path = format!("{roles_a}/{builtin}");
            assert_eq!(id.call(Method::DELETE, &path, &alice, None).await.0, 403);
            id.call_expect(Method::PUT, &path, &alice, Some(json!({"scopes": []})), 403)
                .await;
        }

        // Creating: validated names and scopes, unique per tenant.
        for bad in [
            json!({"name": "owner", "scopes": []}),
            json!({"name": "has space", "scopes": []}),
            json!({"name": "Ops", "scopes": ["admin.full"]}),
            json!({"name": "Ops", "scopes": ["no.such.scope"]}),
        ] {
            id.call_expect(Method::POST, &roles_a, &alice, Some(bad), 422)
                .await;
        }
        let v = id
            .call_expect(
                Method::POST,
                &roles_a,
                &alice,
                Some(json!({"name": "Support", "description": "helpdesk", "scopes": []})),
                201,
            )
            .await;
        assert_eq!(v["builtin"], false);
        id.call_expect(
            Method::POST,
            &roles_a,
            &alice,
            Some(json!({"name": "Support", "scopes": []})),
            409,
        )
        .await;

        // A member with only custom roles gets what they allow (plus the OpenID basics).
        let user_roles = format!("/admin/tenants/{a}/users/{carl}/roles");
        let (status, v) = id
            .call(
                Method::PUT,
                &user_roles,
                &alice,
                Some(json!({"roles": ["Ghost"]})),
            )
            .await;
        assert_eq!(status, 422, "unknown role: {v}");
        id.call_expect(
            Method::PUT,
            &user_roles,
            &alice,
            Some(json!({"roles": ["Support"]})),
            200,
        )
        .await;
        let scope = "openid roles offline_access db.read";
        let tokens = id
            .user_tokens(&app, "carl@roles.example", USER_PASSWORD, scope, None)
            .await
            .unwrap();
        assert_eq!(scope_of(&tokens), "openid roles offline_access");
        assert_eq!(
            jwt_claims(tokens["access_token"].as_str().unwrap())["roles"],
            json!(["Support"])
        );
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Changing the role takes effect at the next token (a refresh).
        id.call_expect(
            Method::PATCH,
            &format!("{roles_a}/Support"),
            &alice,
            Some(json!({"scopes": ["db.read"]})),
            200,
        )
        .await;
        let resp = id.refresh(&app, &refresh).await;
        let refreshed: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(scope_of(&refreshed), scope, "{refreshed}");
        id.call_expect(
            Method::PUT,
            &format!("{roles_a}/Support"),
            &alice,
            Some(json!({"scopes": []})),
            200,
        )
        .await;
        let resp = id
            .refresh(&app, refreshed["refresh_token"].as_str().unwrap())
            .await;
        let narrowed: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(scope_of(&narrowed), "openid roles offline_access");

        // Built-in roles keep their behaviour: not narrowed.
        id.call_expect(
            Method::PUT,
            &user_roles,
            &alice,
            Some(json!({"roles": ["Support", "User"]})),
            200,
        )
        .await;
        let resp = id
            .refresh(&app, narrowed["refresh_token"].as_str().unwrap())
            .await;
        let full: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(scope_of(&full), scope);

        // Isolation: B's admin cannot see or touch A's roles (404, as for a missing tenant);
        // a role of B cannot be given to a member of A.
        for (method, path, body) in [
            (Method::GET, roles_a.clone(), None),
            (
                Method::POST,
                roles_a.clone(),
                Some(json!({"name": "Evil", "scopes": []})),
            ),
            (Method::GET, format!("{roles_a}/Support"), None),
            (
                Method::PATCH,
                format!("{roles_a}/Support"),
                Some(json!({"scopes": ["db.read"]})),
            ),
            (Method::DELETE, format!("{roles_a}/Support"), None),
        ] {
            let (status, v) = id.call(method.clone(), &path, &bob, body).await;
            assert_eq!(status, 404, "{method} {path}: {v}");
        }
        id.call_expect(
            Method::POST,
            &format!("/admin/tenants/{b}/roles"),
            &bob,
            Some(json!({"name": "BOnly", "scopes": ["db.read"]})),
            201,
        )
        .await;
        assert_eq!(
            id.get_as(&format!("/admin/tenants/{b}/roles/BOnly"), &alice)
                .await
                .0,
            404
        );
        id.call_expect(
            Method::PUT,
            &user_roles,
            &alice,
            Some(json!({"roles": ["BOnly"]})),
            422,
        )
        .await;
        assert_eq!(id.get_as(&format!("{roles_a}/BOnly"), &alice).await.0, 404);

        // A role in use cannot be deleted; unassigned, it can.
        let support = format!("{roles_a}/Support");
        assert_eq!(id.call(Method::DELETE, &support, &alice, None).await.0, 409);
        id.call_expect(
            Method::PUT,
            &user_roles,
            &alice,
            Some(json!({"roles": ["User"]})),
            200,
        )
        .await;
        assert_eq!(id.call(Method::DELETE, &support, &alice, None).await.0, 204);
        assert_eq!(id.get_as(&support, &alice).await.0, 404);
        // The platform admin sees every tenant's roles.
        let (status, v) = id
            .get_as(
                &format!("/admin/tenants/{b}/roles"),
                &id.admin_token().await,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["items"].as_array().unwrap().len(), 4);

        id.stop().await;
        db.cleanup().await;
    }
}
