//! The tenant boundary and the privilege rules, tried as an attacker would: a self-made tenant
//! reaching the platform admin, a client of one tenant signing in another's users, an Admin
//! climbing over an Owner, a plain member opening the vault, a credential reset that leaves the
//! old sessions alive. Each test is one confirmed way the boundary used to leak.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// A first-party public client for user sign-ins (code flow, refresh), every tenant scope.
async fn app(inst: &Instance, client_id: &str, tenant: Option<&str>) {
    let mut body = json!({
        "client_id": client_id,
        "name": "Boundary app",
        "first_party": true,
        "client_type": "public",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example/cb"],
        "scopes": ["openid", "offline_access", "admin.tenant", "secrets.read", "secrets.write", "db.read"],
    });
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    inst.create_client(body).await;
}

const ADMIN_SCOPES: &str = "openid admin.tenant secrets.read secrets.write";

#[tokio::test]
async fn a_tenant_cannot_invite_or_reach_the_platform_admin() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("attacker").await;
        inst.create_member(&a, "owner@attacker.test", &["Owner"])
            .await;
        app(&inst, "app", None).await;
        let owner = inst
            .user_access(
                "app",
                "owner@attacker.test",
                USER_PASSWORD,
                ADMIN_SCOPES,
                Some(&a),
            )
            .await;
        let platform_admin = inst
            .state
            .store
            .user_by_email(tansu_identity::DEV_ADMIN_EMAIL)
            .await
            .unwrap()
            .unwrap();

        // The invitation answers with itself only: nothing about the account.
        let (status, v) = inst
            .call(
                Method::POST,
                &format!("/admin/tenants/{a}/users"),
                &owner,
                Some(json!({"email": tansu_identity::DEV_ADMIN_EMAIL, "roles": ["Owner"]})),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["status"], "pending", "{v}");
        let text = v.to_string();
        assert!(!text.contains(&platform_admin.id), "leaks the id: {v}");
        assert!(!text.contains(&platform_admin.name), "leaks the name: {v}");
        // No membership came of it, and the admin is out of the tenant's reach.
        assert!(
            inst.state
                .store
                .membership(&platform_admin.id, &a)
                .await
                .unwrap()
                .is_none()
        );
        let (_, list) = inst
            .get_as(&format!("/admin/tenants/{a}/users"), &owner)
            .await;
        assert!(!list.to_string().contains(&platform_admin.id), "{list}");
        // Even when a platform admin is a member (added by the platform itself).
        inst.state
            .store
            .upsert_membership(&tansu_identity::store::tenants::MembershipRow {
                user_id: platform_admin.id.clone(),
                tenant_id: a.clone(),
                roles: vec!["User".into()],
                created_at: 0,
            })
            .await
            .unwrap();
        for (method, path, body) in [
            (Method::GET, String::new(), None),
            (
                Method::POST,
                "/password".to_owned(),
                Some(json!({"password": "a brand new phrase 99"})),
            ),
            (Method::POST, "/mfa/reset".to_owned(), None),
            (Method::POST, "/disable".to_owned(), None),
            (Method::DELETE, String::new(), None),
        ] {
            let (status, v) = inst
                .call(
                    method.clone(),
                    &format!("/admin/tenants/{a}/users/{}{path}", platform_admin.id),
                    &owner,
                    body,
                )
                .await;
            assert_eq!(status, 404, "{method} …{path}: {v}");
        }
        let (_, list) = inst
            .get_as(&format!("/admin/tenants/{a}/users"), &owner)
            .await;
        assert!(!list.to_string().contains(&platform_admin.id), "{list}");
        // The platform admin's sign-in still lands on the platform, not in the tenant.
        let tokens = inst
            .user_tokens(
                "app",
                tansu_identity::DEV_ADMIN_EMAIL,
                ADMIN_PASSWORD,
                "openid",
                None,
            )
            .await
            .expect("the platform admin signs in");
        let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert!(claims.get("tid").is_none(), "{claims}");
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_client_of_one_tenant_cannot_sign_in_another_tenants_user() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop-a").await;
        let b = inst.create_tenant("shop-b").await;
        inst.create_member(&b, "user@b.test", &["Owner"]).await;
        app(&inst, "a-app", Some(&a)).await;

        // Naming tenant B at A's client is refused before any sign-in.
        let (query, _) = auth_query("a-app", "openid db.read", Some(&b));
        let resp = inst.authorize(&no_redirects(), &query, None).await;
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            location.contains("error=invalid_request"),
            "{} {location}",
            resp.status()
        );
        // Without a tenant, the sign-in is for A, which B's user is not a member of.
        let refused = inst
            .user_tokens(
                "a-app",
                "user@b.test",
                USER_PASSWORD,
                "openid db.read",
                None,
            )
            .await;
        assert!(refused.is_err(), "{refused:?}");
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_admin_cannot_reset_demote_disable_or_remove_an_owner() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop").await;
        let owner = inst.create_member(&a, "owner@shop.test", &["Owner"]).await;
        inst.create_member(&a, "admin@shop.test", &["Admin"]).await;
        app(&inst, "app", None).await;
        let admin = inst
            .user_access(
                "app",
                "admin@shop.test",
                USER_PASSWORD,
                ADMIN_SCOPES,
                Some(&a),
            )
            .await;
        for (method, path, body) in [
            (
                Method::POST,
                "/password",
                Some(json!({"password": "taken over by the admin 1"})),
            ),
            (Method::POST, "/mfa/reset", None),
            (Method::PUT, "/roles", Some(json!({"roles": ["User"]}))),
            (Method::DELETE, "/roles/Owner", None),
            (Method::POST, "/disable", None),
            (Method::PATCH, "", Some(json!({"name": "Renamed"}))),
            (Method::DELETE, "", None),
        ] {
            let (status, v) = inst
                .call(
                    method.clone(),
                    &format!("/admin/tenants/{a}/users/{owner}{path}"),
                    &admin,
                    body,
                )
                .await;
            assert_eq!(status, 403, "{method} …{path}: {v}");
        }
        // Nor make anyone an Owner.
        let (status, v) = inst
            .call(
                Method::POST,
                &format!("/admin/tenants/{a}/users"),
                &admin,
                Some(json!({"email": "new@shop.test", "roles": ["Owner"]})),
            )
            .await;
        assert_eq!(status, 403, "{v}");
        // The Owner's password is the Owner's still.
        inst.user_access("app", "owner@shop.test", USER_PASSWORD, "openid", Some(&a))
            .await;
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_plain_member_gets_no_vault_scope_and_a_custom_role_can_grant_it() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop").await;
        inst.create_member(&a, "user@shop.test", &["User"]).await;
        let admin = inst.admin_token().await;
        inst.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{a}/secrets/database"),
            &admin,
            Some(json!({"value": "the tenant's database credential"})),
            201,
        )
        .await;
        app(&inst, "app", None).await;
        let tokens = inst
            .user_tokens(
                "app",
                "user@shop.test",
                USER_PASSWORD,
                "openid secrets.read",
                Some(&a),
            )
            .await
            .unwrap();
        assert_eq!(tokens["scope"], "openid", "{tokens}");
        let token = tokens["access_token"].as_str().unwrap();
        let (status, v) = inst
            .get_as(&format!("/admin/tenants/{a}/secrets/database"), token)
            .await;
        assert_eq!(status, 401, "{v}");
        // A custom role that names the scope grants it.
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/roles"),
            &admin,
            Some(json!({"name": "vault-reader", "scopes": ["secrets.read"]})),
            201,
        )
        .await;
        inst.create_member(&a, "reader@shop.test", &["vault-reader"])
            .await;
        let reader = inst
            .user_access(
                "app",
                "reader@shop.test",
                USER_PASSWORD,
                "openid secrets.read",
                Some(&a),
            )
            .await;
        let (status, v) = inst
            .get_as(&format!("/admin/tenants/{a}/secrets/database"), &reader)
            .await;
        assert_eq!(status, 200, "{v}");
        // When the role stops naming the scope, the token in hand stops opening the vault;
        // named again, it opens it again.
        let role = format!("/admin/tenants/{a}/roles/vault-reader");
        for (scopes, expected) in [(json!([]), 403), (json!(["secrets.read"]), 200)] {
            inst.call_expect(
                Method::PATCH,
                &role,
                &admin,
                Some(json!({"scopes": scopes})),
                200,
            )
            .await;
            let (status, v) = inst
                .get_as(&format!("/admin/tenants/{a}/secrets/database"), &reader)
                .await;
            assert_eq!(status, expected, "{v}");
        }
        // And when the role is taken away, the token in hand stops opening the vault.
        let uid = inst
            .state
            .store
            .user_by_email("reader@shop.test")
            .await
            .unwrap()
            .unwrap()
            .id;
        inst.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{a}/users/{uid}/roles"),
            &admin,
            Some(json!({"roles": ["User"]})),
            200,
        )
        .await;
        let (status, v) = inst
            .get_as(&format!("/admin/tenants/{a}/secrets/database"), &reader)
            .await;
        assert_eq!(status, 403, "{v}");
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_credential_reset_ends_sessions_and_refresh_tokens_and_only_the_home_tenant_may() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop-a").await;
        let b = inst.create_tenant("shop-b").await;
        inst.create_member(&a, "owner@a.test", &["Owner"]).await;
        let user = inst.create_member(&a, "user@a.test", &["User"]).await;
        inst.create_member(&b, "owner@b.test", &["Owner"]).await;
        // A's user is also a member of B (added by the platform).
        let admin = inst.admin_token().await;
        inst.call_expect(
            Method::POST,
            &format!("/admin/tenants/{b}/users"),
            &admin,
            Some(json!({"email": "user@a.test"})),
            201,
        )
        .await;
        app(&inst, "app", None).await;
        let owner_b = inst
            .user_access("app", "owner@b.test", USER_PASSWORD, ADMIN_SCOPES, Some(&b))
            .await;
        for (path, body) in [
            (
                "/password",
                Some(json!({"password": "taken over by tenant b"})),
            ),
            ("/mfa/reset", None),
            ("/disable", None),
        ] {
            let (status, v) = inst
                .call(
                    Method::POST,
                    &format!("/admin/tenants/{b}/users/{user}{path}"),
                    &owner_b,
                    body,
                )
                .await;
            assert_eq!(status, 403, "{path}: {v}");
        }

        let tokens = inst
            .user_tokens(
                "app",
                "user@a.test",
                USER_PASSWORD,
                "openid offline_access",
                Some(&a),
            )
            .await
            .unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let owner_a = inst
            .user_access("app", "owner@a.test", USER_PASSWORD, ADMIN_SCOPES, Some(&a))
            .await;
        let (status, v) = inst
            .call(
                Method::POST,
                &format!("/admin/tenants/{a}/users/{user}/password"),
                &owner_a,
                Some(json!({"password": "a fresh phrase chosen 7"})),
            )
            .await;
        assert_eq!(status, 204, "{v}");
        let resp = inst.refresh("app", &refresh).await;
        assert_eq!(resp.status(), 400);
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant", "{v}");
        let live = raw_count(
            &inst.state.store,
            &format!(
                "SELECT COUNT(*) FROM sessions WHERE user_id = '{user}' AND revoked_at IS NULL"
            ),
        )
        .await;
        assert_eq!(live, 0);
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_invitation_waits_for_the_invitee_to_accept_it() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop-a").await;
        let b = inst.create_tenant("shop-b").await;
        inst.create_member(&a, "owner@a.test", &["Owner"]).await;
        let invitee = inst.create_member(&b, "person@b.test", &["User"]).await;
        app(&inst, "app", None).await;
        let owner = inst
            .user_access("app", "owner@a.test", USER_PASSWORD, ADMIN_SCOPES, Some(&a))
            .await;
        let (status, v) = inst
            .call(
                Method::POST,
                &format!("/admin/tenants/{a}/users"),
                &owner,
                Some(json!({"email": "person@b.test", "roles": ["Admin"]})),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        assert!(!v.to_string().contains(&invitee), "{v}");
        let (_, list) = inst
            .get_as(&format!("/admin/tenants/{a}/invitations"), &owner)
            .await;
        assert_eq!(list["items"][0]["email"], "person@b.test", "{list}");

        // The invitee signs in (to B) and accepts on the account page.
        let (query, _) = auth_query("app", "openid", Some(&b));
        let signed = inst.sign_in(&query, "person@b.test", USER_PASSWORD).await;
        let session = signed.session_cookie.expect("a session");
        let http = no_redirects();
        let page = http
            .get(inst.url("/account/invitations"))
            .header("cookie", &session)
            .send_ok()
            .await;
        let csrf_cookie = set_cookie(&page, "tansu_csrf").expect("csrf cookie");
        let html = page.text().await.unwrap();
        assert!(html.contains("Shop shop-a"), "{html}");
        let csrf = hidden_field(&html, "csrf").unwrap();
        let invitation = hidden_field(&html, "invitation").unwrap();
        let accept = async || {
            let resp = http
                .post(inst.url("/account/invitations"))
                .header("cookie", format!("{session}; {csrf_cookie}"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("invitation", invitation.as_str()),
                    ("decision", "accept"),
                ])
                .send_ok()
                .await;
            resp.text().await.unwrap()
        };
        // Anyone could have made an account with this address (B's administrator did): until
        // its owner proves the mailbox, the invitation addressed to it is not theirs to take.
        let store = &inst.state.store;
        let html = accept().await;
        assert!(html.contains("Confirm your address first"), "{html}");
        assert!(store.membership(&invitee, &a).await.unwrap().is_none());
        // B's own provider vouching for the address counts for B only, not for A.
        let now = tansu_identity::store::now_ms();
        assert!(
            store
                .mark_email_vouched(&invitee, "person@b.test", &b, now)
                .await
                .unwrap()
        );
        let html = accept().await;
        assert!(html.contains("Confirm your address first"), "{html}");
        assert!(store.membership(&invitee, &a).await.unwrap().is_none());
        // Proven by mail (what following a confirmation link records): accepted.
        assert!(
            store
                .mark_email_verified(&invitee, "person@b.test", now)
                .await
                .unwrap()
        );
        let html = accept().await;
        assert!(html.contains("Invitation accepted"), "{html}");
        // The account now opens A, which did not create it: B, its home tenant, no longer
        // manages its credentials.
        let account = store.user_by_id(&invitee).await.unwrap().unwrap();
        assert_eq!(account.home_tenant_id, None);
        let m = inst
            .state
            .store
            .membership(&invitee, &a)
            .await
            .unwrap()
            .expect("a member now");
        assert_eq!(m.roles, vec!["Admin".to_owned()]);
        // An invitation nobody accepted expires and is purged.
        inst.state
            .store
            .upsert_invitation(&tansu_identity::store::invitations::InvitationRow {
                id: "expired".into(),
                tenant_id: a.clone(),
                email: "late@b.test".into(),
                roles: vec!["User".into()],
                invited_by: "user:x".into(),
                created_at: 0,
                expires_at: 1,
            })
            .await
            .unwrap();
        inst.state.store.purge_expired(2).await;
        let left = raw_count(&inst.state.store, "SELECT COUNT(*) FROM invitations").await;
        assert_eq!(left, 0);
        inst.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_tenant_client_introspects_only_its_own_tenants_tokens() {
    for db in backends("tenant boundary").await {
        let inst = Instance::start(&db, "", |_| {}).await;
        let a = inst.create_tenant("shop-a").await;
        let b = inst.create_tenant("shop-b").await;
        inst.create_member(&a, "user@a.test", &["User"]).await;
        inst.create_member(&b, "user@b.test", &["User"]).await;
        app(&inst, "app", None).await;
        let (client, secret) = inst
            .create_client(json!({
                "name": "A's backend",
                "tenant_id": a,
                "client_type": "confidential",
                "grant_types": ["client_credentials"],
                "scopes": ["db.read"],
            }))
            .await;
        let introspect = |token: String| {
            let (client, secret) = (client.clone(), secret.clone());
            let inst = &inst;
            async move {
                inst.http
                    .post(inst.url("/connect/introspect"))
                    .basic_auth(client, Some(secret))
                    .form(&[("token", token)])
                    .send_json()
                    .await
            }
        };
        let own = inst
            .user_access(
                "app",
                "user@a.test",
                USER_PASSWORD,
                "openid db.read",
                Some(&a),
            )
            .await;
        let other = inst
            .user_access(
                "app",
                "user@b.test",
                USER_PASSWORD,
                "openid db.read",
                Some(&b),
            )
            .await;
        assert_eq!(introspect(own).await["active"], true);
        let v = introspect(other).await;
        assert_eq!(v, json!({"active": false}), "{v}");
        inst.stop().await;
        db.cleanup().await;
    }
}
