//! Tenants, memberships, roles and the tenant-scoped admin API — over real HTTP,
//! on SQLite and (when configured) PostgreSQL.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const SUITE: &str = "identity tenants";

#[tokio::test]
async fn tenant_admin_api_and_suspension() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;

        // Create, validate, conflict.
        let (status, t) = id
            .call(
                Method::POST,
                "/admin/tenants",
                &admin,
                Some(
                    json!({"slug": "acme", "name": "Acme", "policy": {"password_min_length": 14}}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        let tid = t["id"].as_str().unwrap().to_owned();
        let parsed = uuid::Uuid::parse_str(&tid).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert_eq!(t["status"], "active");
        assert_eq!(t["policy"]["password_min_length"], 14);
        assert_eq!(t["policy"]["lockout_threshold"], 5);
        id.call_expect(
            Method::POST,
            "/admin/tenants",
            &admin,
            Some(json!({"slug": "acme", "name": "Other"})),
            409,
        )
        .await;
        for bad in [
            json!({"slug": "A B", "name": "x"}),
            json!({"slug": "okay", "name": ""}),
            json!({"slug": "okay", "name": "x", "policy": {"password_min_length": 2}}),
            json!({"slug": "okay", "name": "x", "nope": 1}),
        ] {
            let (status, v) = id
                .call(Method::POST, "/admin/tenants", &admin, Some(bad))
                .await;
            assert!(status == 422 || status == 400, "{status} {v}");
        }
        let (status, list) = id.get_as("/admin/tenants?limit=10", &admin).await;
        assert_eq!(status, 200);
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let (status, got) = id.get_as(&format!("/admin/tenants/{tid}"), &admin).await;
        assert_eq!(status, 200);
        assert_eq!(got["slug"], "acme");
        let upd = id
            .call_expect(
                Method::PATCH,
                &format!("/admin/tenants/{tid}"),
                &admin,
                Some(json!({"name": "Acme Ltd", "policy": {"lockout_threshold": 7}})),
                200,
            )
            .await;
        assert_eq!(upd["name"], "Acme Ltd");
        assert_eq!(upd["policy"]["lockout_threshold"], 7);
        assert_eq!(upd["policy"]["mfa_required"], false);
        let (status, _) = id.get_as("/admin/tenants/nope", &admin).await;
        assert_eq!(status, 404);
        // Without a token, or with a token without admin rights.
        let (status, _) = id.get_as("/admin/tenants", "garbage").await;
        assert_eq!(status, 401);

        // A client of the tenant; its tokens carry the tid.
        let (status, v) = id
            .call(Method::POST, "/admin/clients", &admin, Some(json!({"name": "svc", "tenant_id": uuid::Uuid::now_v7(), "grant_types": ["client_credentials"], "scopes": ["db.read"]})))
            .await;
        assert_eq!(status, 422, "a client of an unknown tenant: {v}");
        let (cid, secret) = id
            .create_client(json!({"name": "svc", "tenant_id": tid, "grant_types": ["client_credentials"], "scopes": ["db.read"]}))
            .await;
        let token = id.access_token(&cid, &secret, Some("db.read")).await;
        assert_eq!(jwt_claims(&token)["tid"], tid.as_str());

        // A user of the tenant signs in; refresh works.
        id.create_member(&tid, "shopper@acme.example", &["User"])
            .await;
        let app = id.tenant_app().await;
        let tokens = id
            .user_tokens(
                &app,
                "shopper@acme.example",
                USER_PASSWORD,
                "openid roles offline_access db.read",
                Some("acme"),
            )
            .await
            .unwrap();
        let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(claims["tid"], tid.as_str());
        assert_eq!(claims["roles"], json!(["User"]));
        assert_eq!(
            jwt_claims(tokens["id_token"].as_str().unwrap())["tid"],
            tid.as_str()
        );
        let resp = id
            .refresh(&app, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(resp.status(), 200);
        let refreshed: Value = resp.json().await.unwrap();
        let refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();

        // Suspension stops client_credentials, refresh and sign-in at once.
        let (status, s) = id
            .call(
                Method::POST,
                &format!("/admin/tenants/{tid}/suspend"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(s["status"], "suspended");
        let resp = id.token_basic(&cid, &secret, Some("db.read")).await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "unauthorized_client");
        let resp = id.refresh(&app, &refresh).await;
        assert_eq!(resp.status(), 400);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        let refused = id
            .user_tokens(
                &app,
                "shopper@acme.example",
                USER_PASSWORD,
                "openid",
                Some("acme"),
            )
            .await;
        assert!(refused.is_err(), "sign-in into a suspended tenant");

        // Reactivated: the refresh token was not consumed by the refused attempt.
        let (status, _) = id
            .call(
                Method::POST,
                &format!("/admin/tenants/{tid}/activate"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(id.refresh(&app, &refresh).await.status(), 200);
        id.access_token(&cid, &secret, Some("db.read")).await;

        // Deleted tenants sign nobody in either.
        let (status, d) = id
            .call(
                Method::DELETE,
                &format!("/admin/tenants/{tid}"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(d["status"], "deleted");
        assert_eq!(
            id.token_basic(&cid, &secret, Some("db.read"))
                .await
                .status(),
            400
        );

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn users_roles_and_isolation_matrix() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let a = id.create_tenant("shop-a").await;
        let b = id.create_tenant("shop-b").await;
        let app = id.tenant_app().await;
        let alice = id.create_member(&a, "alice@a.example", &["Admin"]).await;
        let bob = id.create_member(&b, "bob@b.example", &["User"]).await;
        // Carol belongs to both: B created her account, the platform adds it to A too.
        let carol = id.create_member(&b, "carol@ab.example", &["Admin"]).await;
        assert_eq!(
            id.create_member(&a, "carol@ab.example", &["User"]).await,
            carol
        );

        // Carol's tokens carry the tenant the sign-in was for.
        let scope = "openid roles db.read";
        let ta = id
            .user_access(&app, "carol@ab.example", USER_PASSWORD, scope, Some(&a))
            .await;
        let tb = id
            .user_access(
                &app,
                "carol@ab.example",
                USER_PASSWORD,
                scope,
                Some("shop-b"),
            )
            .await;
        let ca = jwt_claims(&ta);
        let cb = jwt_claims(&tb);
        assert_eq!(ca["tid"], a.as_str());
        assert_eq!(ca["roles"], json!(["User"]));
        assert_eq!(cb["tid"], b.as_str());
        assert_eq!(cb["roles"], json!(["Admin"]));
        // A session serves only the tenant it signed in for: switching is a new sign-in.
        let (_, challenge) = pkce();
        let q = |t: &str| {
            format!(
                "response_type=code&client_id={app}&redirect_uri={}&scope=openid&code_challenge={challenge}&code_challenge_method=S256&tenant={t}",
                form_encode("https://app.example/cb")
            )
        };
        let signed = id.sign_in(&q(&a), "carol@ab.example", USER_PASSWORD).await;
        assert!(signed.location.contains("code="), "{}", signed.location);
        let cookie = signed.session_cookie.unwrap();
        let same = no_redirects()
            .get(id.url(&format!("/connect/authorize?{}", q(&a))))
            .header("cookie", &cookie)
            .send_ok()
            .await;
        assert_eq!(same.status(), 303, "same tenant: the session is reused");
        let other = no_redirects()
            .get(id.url(&format!("/connect/authorize?{}", q(&b))))
            .header("cookie", &cookie)
            .send_ok()
            .await;
        assert_eq!(other.status(), 200, "another tenant: the login page again");
        assert!(
            other
                .text()
                .await
                .unwrap()
                .contains("<form method=\"post\"")
        );

        // Without a hint, a user of several tenants is not signed in to an arbitrary one.
        assert!(
            id.user_tokens(&app, "carol@ab.example", USER_PASSWORD, scope, None)
                .await
                .is_err()
        );
        // Bob (only B) gets B without a hint, and nothing for A.
        let tbob = id
            .user_access(&app, "bob@b.example", USER_PASSWORD, scope, None)
            .await;
        assert_eq!(jwt_claims(&tbob)["tid"], b.as_str());
        assert!(
            id.user_tokens(&app, "bob@b.example", USER_PASSWORD, scope, Some(&a))
                .await
                .is_err()
        );

        // Alice, admin of A, with an admin.tenant token for A.
        let at = id
            .user_access(
                &app,
                "alice@a.example",
                USER_PASSWORD,
                "openid admin.tenant",
                Some(&a),
            )
            .await;
        let alice_token = at;
        let (status, own) = id
            .get_as(&format!("/admin/tenants/{a}/users"), &alice_token)
            .await;
        assert_eq!(status, 200, "{own}");
        assert_eq!(own["items"].as_array().unwrap().len(), 2);
        // Carol's token (User in A) with admin.tenant is not an admin token.
        let ct = id
            .user_access(
                &app,
                "carol@ab.example",
                USER_PASSWORD,
                "openid admin.tenant",
                Some(&a),
            )
            .await;
        // The grant drops admin.tenant for a User: the token is not even for this service.
        let (status, _) = id.get_as(&format!("/admin/tenants/{a}/users"), &ct).await;
        assert_eq!(status, 401);

        // Every tenant-scoped endpoint with B's ids: 404, exactly as for ids that do not exist.
        let missing_tenant = uuid::Uuid::now_v7().to_string();
        let endpoints = |t: &str, u: &str| -> Vec<(Method, String, Option<Value>)> {
            vec![
                (Method::GET, format!("/admin/tenants/{t}"), None),
                (Method::GET, format!("/admin/tenants/{t}/users"), None),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/users"),
                    Some(json!({"email": "x@y.example", "name": "X", "password": USER_PASSWORD})),
                ),
                (Method::GET, format!("/admin/tenants/{t}/roles"), None),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/roles"),
                    Some(json!({"name": "Intruder", "scopes": []})),
                ),
                (Method::GET, format!("/admin/tenants/{t}/users/{u}"), None),
                (
                    Method::PATCH,
                    format!("/admin/tenants/{t}/users/{u}"),
                    Some(json!({"name": "pwned"})),
                ),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/users/{u}/disable"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/users/{u}/enable"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/users/{u}/password"),
                    Some(json!({"password": "another long phrase 77"})),
                ),
                (
                    Method::PUT,
                    format!("/admin/tenants/{t}/users/{u}/roles"),
                    Some(json!({"roles": ["Admin"]})),
                ),
                (
                    Method::PUT,
                    format!("/admin/tenants/{t}/users/{u}/roles/Admin"),
                    None,
                ),
                (
                    Method::DELETE,
                    format!("/admin/tenants/{t}/users/{u}/roles/User"),
                    None,
                ),
                (
                    Method::POST,
                    format!("/admin/tenants/{t}/users/{u}/mfa/reset"),
                    None,
                ),
                (
                    Method::DELETE,
                    format!("/admin/tenants/{t}/users/{u}"),
                    None,
                ),
            ]
        };
        for (t, u) in [
            (b.as_str(), bob.as_str()),
            (a.as_str(), bob.as_str()),
            (missing_tenant.as_str(), bob.as_str()),
        ] {
            // With A's own id, only the user-level endpoints are about someone else.
            let skip = if t == a { 5 } else { 0 };
            for (method, path, body) in endpoints(t, u).into_iter().skip(skip) {
                let (status, v) = id.call(method.clone(), &path, &alice_token, body).await;
                assert_eq!(status, 404, "{method} {path}: {v}");
                assert_eq!(v["status"], 404, "a problem document: {v}");
                assert!(v.get("items").is_none() && v.get("email").is_none());
            }
        }
        // Platform-only endpoints: 403 for a tenant admin, whatever the ids.
        for (method, path) in [
            (Method::GET, "/admin/tenants".to_owned()),
            (Method::POST, "/admin/tenants".to_owned()),
            (Method::PATCH, format!("/admin/tenants/{a}")),
            (Method::POST, format!("/admin/tenants/{b}/suspend")),
            (Method::POST, format!("/admin/tenants/{a}/suspend")),
            (Method::DELETE, format!("/admin/tenants/{b}")),
        ] {
            let (status, _) = id
                .call(
                    method.clone(),
                    &path,
                    &alice_token,
                    Some(json!({"slug": "zz-z", "name": "z"})),
                )
                .await;
            assert_eq!(status, 403, "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/admin/clients".to_owned()),
            (Method::POST, "/admin/keys/rotate-now".to_owned()),
        ] {
            let (status, _) = id.call(method.clone(), &path, &alice_token, None).await;
            assert_eq!(status, 403, "{method} {path}");
        }
        // B is untouched.
        let (_, bob_view) = id
            .get_as(&format!("/admin/tenants/{b}/users/{bob}"), &admin)
            .await;
        assert_eq!(bob_view["roles"], json!(["User"]));
        assert_eq!(bob_view["disabled"], false);
        assert_eq!(bob_view["name"], "Test Person");
        // A tenant admin cannot change what is global about a user another tenant created, nor
        // grant Owner.
        id.call_expect(
            Method::POST,
            &format!("/admin/tenants/{a}/users/{carol}/password"),
            &alice_token,
            Some(json!({"password": "another long phrase 77"})),
            403,
        )
        .await;
        id.call_expect(
            Method::PUT,
            &format!("/admin/tenants/{a}/users/{carol}/roles/Owner"),
            &alice_token,
            None,
            403,
        )
        .await;
        let _ = alice;

        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn user_lifecycle() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let admin = id.admin_token().await;
        let t = id.create_tenant("lifecycle").await;
        let app = id.tenant_app().await;
        let base = format!("/admin/tenants/{t}/users");

        // Password policy on create.
        for (pw, why) in [
            ("short", "length"),
            ("password1234", "common"),
            ("dave@l.example!!", "email"),
            ("dave-is-the-best-1", "name"),
        ] {
            let (status, v) = id
                .call(
                    Method::POST,
                    &base,
                    &admin,
                    Some(json!({"email": "dave@l.example", "name": "Dave", "password": pw})),
                )
                .await;
            assert_eq!(status, 422, "{why}: {v}");
            assert!(!v.to_string().contains(pw), "the password is not echoed");
        }
        id.call_expect(
            Method::POST,
            &base,
            &admin,
            Some(json!({"email": "not-an-email"})),
            422,
        )
        .await;
        id.call_expect(
            Method::POST,
            &base,
            &admin,
            Some(json!({"email": "x@l.example", "roles": ["Wizard"]})),
            422,
        )
        .await;

        let dave = id.create_member(&t, "dave@l.example", &["User"]).await;
        for i in 0..3 {
            id.create_member(&t, &format!("member{i}@l.example"), &["User"])
                .await;
        }
        id.call_expect(
            Method::POST,
            &base,
            &admin,
            Some(json!({"email": "dave@l.example"})),
            409,
        )
        .await;

        // Search and cursor paging.
        let (_, found) = id.get_as(&format!("{base}?search=DAVE"), &admin).await;
        assert_eq!(found["items"].as_array().unwrap().len(), 1);
        assert_eq!(found["items"][0]["id"], dave.as_str());
        let mut seen = Vec::new();
        let mut after = String::new();
        for _ in 0..10 {
            let (status, page) = id
                .get_as(&format!("{base}?limit=3&after={after}"), &admin)
                .await;
            assert_eq!(status, 200);
            for item in page["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["next_after"].as_str() {
                Some(n) => after = n.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen.len(), 4);
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);

        // Update, roles take effect at the next token.
        let v = id
            .call_expect(
                Method::PATCH,
                &format!("{base}/{dave}"),
                &admin,
                Some(json!({"name": "David"})),
                200,
            )
            .await;
        assert_eq!(v["name"], "David");
        let scope = "openid roles offline_access";
        let first = id
            .user_tokens(&app, "dave@l.example", USER_PASSWORD, scope, None)
            .await
            .unwrap();
        assert_eq!(
            jwt_claims(first["access_token"].as_str().unwrap())["roles"],
            json!(["User"])
        );
        let (status, v) = id
            .call(
                Method::PUT,
                &format!("{base}/{dave}/roles/Admin"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["roles"], json!(["User", "Admin"]));
        let resp = id
            .refresh(&app, first["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(resp.status(), 200);
        let second: Value = resp.json().await.unwrap();
        assert_eq!(
            jwt_claims(second["access_token"].as_str().unwrap())["roles"],
            json!(["User", "Admin"])
        );
        let (_, v) = id
            .call(
                Method::DELETE,
                &format!("{base}/{dave}/roles/User"),
                &admin,
                None,
            )
            .await;
        assert_eq!(v["roles"], json!(["Admin"]));

        // Disabling revokes refresh tokens and sessions.
        let (status, v) = id
            .call(
                Method::POST,
                &format!("{base}/{dave}/disable"),
                &admin,
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["disabled"], true);
        let resp = id
            .refresh(&app, second["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(resp.status(), 400);
        assert!(
            id.user_tokens(&app, "dave@l.example", USER_PASSWORD, scope, None)
                .await
                .is_err()
        );
        let (status, _) = id
            .call(Method::POST, &format!("{base}/{dave}/enable"), &admin, None)
            .await;
        assert_eq!(status, 200);
        // The revoked family stays revoked after re-enabling.
        assert_eq!(
            id.refresh(&app, second["refresh_token"].as_str().unwrap())
                .await
                .status(),
            400
        );

        // Reset password: policy-checked; the old password stops working.
        id.call_expect(
            Method::POST,
            &format!("{base}/{dave}/password"),
            &admin,
            Some(json!({"password": "short"})),
            422,
        )
        .await;
        id.call_expect(
            Method::POST,
            &format!("{base}/{dave}/password"),
            &admin,
            Some(json!({"password": "another long phrase 77"})),
            204,
        )
        .await;
        assert!(
            id.user_tokens(&app, "dave@l.example", USER_PASSWORD, scope, None)
                .await
                .is_err()
        );
        id.user_tokens(
            &app,
            "dave@l.example",
            "another long phrase 77",
            scope,
            None,
        )
        .await
        .unwrap();

        // Removal from the tenant.
        id.call_expect(Method::DELETE, &format!("{base}/{dave}"), &admin, None, 204)
            .await;
        let (status, _) = id.get_as(&format!("{base}/{dave}"), &admin).await;
        assert_eq!(status, 404);

        id.stop().await;
        db.cleanup().await;
    }
}

/// The dev `tansu-dashboard` client may ask for `admin.full`, but only platform admins'
/// grants carry it: a tenant user signing in through the dashboard's own client gets a token
/// without it (and no platform access), the dev platform admin gets it.
#[tokio::test]
async fn admin_full_only_for_platform_admins() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let tid = id.create_tenant("plain-shop").await;
        id.create_member(&tid, "owner@plain.example", &["Owner"])
            .await;
        // The seeded dashboard client: code flow and the dashboard's callback, no PATCH needed.
        let redirect = "https://127.0.0.1:8443/dashboard/callback";
        let tokens = |email: &'static str, password: &'static str| {
            let id = &id;
            async move {
                let (verifier, challenge) = pkce();
                let query = format!(
                    "response_type=code&client_id={}&redirect_uri={}&scope={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
                    tansu_identity::DEV_CLIENT_ID,
                    form_encode(redirect),
                    form_encode("openid profile email roles admin.full offline_access"),
                );
                let signed = id.sign_in(&query, email, password).await;
                let code = query_param(&signed.location, "code")
                    .unwrap_or_else(|| panic!("no code: {}", signed.location));
                let resp = id
                    .http
                    .post(id.url("/connect/token"))
                    .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", code.as_str()),
                        ("redirect_uri", redirect),
                        ("code_verifier", verifier.as_str()),
                    ])
                    .send_ok()
                    .await;
                assert_eq!(resp.status(), 200);
                resp.json::<Value>().await.unwrap()
            }
        };
        let scope_of = |t: &Value| -> Vec<String> {
            jwt_claims(t["access_token"].as_str().unwrap())["scope"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(str::to_owned)
                .collect()
        };

        let user = tokens("owner@plain.example", USER_PASSWORD).await;
        assert!(!scope_of(&user).iter().any(|s| s == "admin.full"), "{user}");
        assert!(!user["scope"].as_str().unwrap().contains("admin.full"));
        let access = user["access_token"].as_str().unwrap();
        let (status, _) = id.get_as("/admin/tenants", access).await;
        // Without admin.full the token is not even for identity's admin audience.
        assert!(
            matches!(status, 401 | 403),
            "no platform access for a tenant user: {status}"
        );
        // Nor after a refresh.
        let resp = id
            .http
            .post(id.url("/connect/token"))
            .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", user["refresh_token"].as_str().unwrap()),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let refreshed: Value = resp.json().await.unwrap();
        assert!(!scope_of(&refreshed).iter().any(|s| s == "admin.full"));

        let admin = tokens(tansu_identity::DEV_ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert!(
            scope_of(&admin).iter().any(|s| s == "admin.full"),
            "{admin}"
        );
        let (status, _) = id
            .get_as("/admin/tenants", admin["access_token"].as_str().unwrap())
            .await;
        assert_eq!(status, 200);

        id.stop().await;
        db.cleanup().await;
    }
}
