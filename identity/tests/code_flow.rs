//! Authorization code + PKCE through the real login form, ID tokens, userinfo, refresh token
//! rotation and reuse detection — over real HTTP, on SQLite and (when configured) PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

const SUITE: &str = "identity code flow";
const REDIRECT: &str = "https://app.example/cb";

async fn public_app(id: &Instance) -> String {
    let resp = id
        .http
        .post(id.url("/admin/clients"))
        .bearer_auth(id.admin_token().await)
        .json(&json!({
            "client_id": "web-app",
            "name": "Web app",
            "first_party": true,
            "client_type": "public",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT, "http://127.0.0.1:9999/cb"],
            "scopes": ["openid", "profile", "email", "roles", "offline_access", "db.read"],
        }))
        .send_ok()
        .await;
    assert_eq!(resp.status(), 201);
    "web-app".into()
}

fn authorize_query(client: &str, challenge: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile%20email%20db.read&state=st%26ate&nonce=n-0S6_WzA2Mj&code_challenge={challenge}&code_challenge_method=S256{extra}",
        form_encode(REDIRECT)
    )
}

/// Verifies an ID token's signature against the JWKS and returns its claims.
async fn verify_id_token(id: &Instance, token: &str, client: &str) -> Value {
    let header = jws_header(token);
    assert_eq!(header["typ"], "JWT");
    let (jwks, _) = id.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the ID token's key is published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let alg: jsonwebtoken::Algorithm = serde_json::from_value(header["alg"].clone()).unwrap();
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_issuer(&[id.issuer.as_str()]);
    v.set_audience(&[client]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("ID token verifies")
        .claims
}

#[tokio::test]
async fn code_flow_with_pkce_through_the_login_form() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let client = public_app(&id).await;
        let (verifier, challenge) = pkce();
        let query = authorize_query(&client, &challenge, "");

        // Unknown user and wrong password: the same answer.
        let http = no_redirects();
        let page = id.authorize(&http, &query, None).await;
        let csrf_cookie = set_cookie(&page, "tansu_csrf").unwrap();
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf").unwrap();
        let mut answers = Vec::new();
        for (email, password) in [
            ("nobody@tansu.local", "whatever-password"),
            ("admin@tansu.local", "wrong-password"),
        ] {
            let resp = http
                .post(id.url("/login"))
                .header("cookie", &csrf_cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("request", &query),
                    ("email", email),
                    ("password", password),
                ])
                .send_ok()
                .await;
            let status = resp.status();
            assert!(set_cookie(&resp, "tansu_session").is_none());
            let body = resp.text().await.unwrap();
            assert!(body.contains("Invalid email or password."));
            answers.push((status, body.replace(&csrf, "")));
        }
        assert_eq!(
            answers[0], answers[1],
            "unknown user and wrong password look the same"
        );
        // A forged submission (no CSRF cookie) is refused.
        let resp = http
            .post(id.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("request", &query),
                ("email", "admin@tansu.local"),
                ("password", ADMIN_PASSWORD),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 403);

        // The real sign-in.
        let signed = id
            .sign_in(&query, "Admin@Tansu.Local", ADMIN_PASSWORD)
            .await;
        assert!(signed.location.starts_with(REDIRECT), "{}", signed.location);
        assert_eq!(
            query_param(&signed.location, "state").as_deref(),
            Some("st&ate")
        );
        assert_eq!(
            query_param(&signed.location, "iss").as_deref(),
            Some(id.issuer.as_str()),
            "RFC 9207"
        );
        let code = query_param(&signed.location, "code").unwrap();
        let session = signed.session_cookie.expect("session cookie");

        let resp = id
            .redeem(&client, &code, REDIRECT, Some(verifier.as_str()))
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let tokens: Value = resp.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let claims = id
            .verifier("tansu.db")
            .await
            .verify(access)
            .await
            .expect("access token verifies");
        assert_eq!(claims.client_id, client);
        assert!(claims.has_scope("openid") && claims.has_scope("db.read"));
        assert_eq!(claims.roles, vec!["Admin".to_owned()]);
        let id_token = verify_id_token(&id, tokens["id_token"].as_str().unwrap(), &client).await;
        assert_eq!(id_token["sub"], claims.sub.as_str());
        assert_eq!(id_token["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(id_token["email"], "admin@tansu.local");
        assert_eq!(id_token["name"], "Platform admin (dev)");
        assert_eq!(id_token["amr"], json!(["pwd"]));
        assert!(id_token["sid"].is_string() && id_token["auth_time"].is_i64());
        assert_eq!(
            id_token["at_hash"],
            tansu_identity::oauth::code::at_hash(access, tansu_identity::keys::SigningAlg::RS256)
        );
        assert!(
            tokens["refresh_token"]
                .as_str()
                .is_some_and(|t| t.len() == 43)
        );

        // Userinfo answers for the access token.
        let info: Value = id
            .http
            .get(id.url("/connect/userinfo"))
            .bearer_auth(access)
            .send_json()
            .await;
        assert_eq!(info["sub"], claims.sub.as_str());
        assert_eq!(info["email"], "admin@tansu.local");
        let resp = id.http.get(id.url("/connect/userinfo")).send_ok().await;
        assert_eq!(resp.status(), 401);

        // The code is single-use: a replay fails and revokes what the first redemption issued.
        let resp = id
            .redeem(&client, &code, REDIRECT, Some(verifier.as_str()))
            .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );
        assert_eq!(id.introspect(access).await, json!({"active": false}));
        let resp = id
            .refresh(&client, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );

        // The session signs in again without the form (SSO); prompt=none works with it.
        for extra in ["", "&prompt=none", "&max_age=3600"] {
            let resp = id
                .authorize(
                    &http,
                    &authorize_query(&client, &challenge, extra),
                    Some(session.as_str()),
                )
                .await;
            assert_eq!(resp.status(), 303, "{extra}");
            let location = resp.headers()["location"].to_str().unwrap();
            assert!(
                query_param(location, "code").is_some(),
                "{extra}: {location}"
            );
        }
        // prompt=login and max_age=0 force the form; prompt=none without a session is an error.
        for (extra, cookie) in [("&prompt=login", true), ("&max_age=0", true), ("", false)] {
            let mut req = http.get(id.url(&format!(
                "/connect/authorize?{}",
                authorize_query(&client, &challenge, extra)
            )));
            if cookie {
                req = req.header("cookie", &session);
            }
            let resp = req.send_ok().await;
            assert_eq!(resp.status(), 200, "{extra}: login form expected");
        }
        let resp = id
            .authorize(
                &http,
                &authorize_query(&client, &challenge, "&prompt=none"),
                None,
            )
            .await;
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some("login_required")
        );
        assert_eq!(query_param(location, "state").as_deref(), Some("st&ate"));
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn authorization_and_code_errors() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let client = public_app(&id).await;
        let http = no_redirects();
        let (verifier, challenge) = pkce();
        let get = |query: String| {
            let http = http.clone();
            let url = id.url(&format!("/connect/authorize?{query}"));
            async move { http.get(url).send_ok().await }
        };

        // Untrusted client or redirect URI: a page, never a redirect.
        for query in [
            authorize_query("nobody", &challenge, ""),
            authorize_query(&client, &challenge, "").replace("app.example", "evil.example"),
            format!("response_type=code&client_id={client}"),
            format!(
                "{}&client_id=again",
                authorize_query(&client, &challenge, "")
            ),
        ] {
            let resp = get(query.clone()).await;
            assert_eq!(resp.status(), 400, "{query}");
            assert!(resp.headers().get("location").is_none(), "{query}");
            assert!(
                resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        // Errors after that go back to the client, with state and iss.
        let base = format!(
            "client_id={client}&redirect_uri={}&state=s1",
            form_encode(REDIRECT)
        );
        for (query, error) in [
            (
                format!(
                    "{base}&response_type=token&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
                ),
                "unsupported_response_type",
            ),
            (
                format!(
                    "{base}&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
                ),
                "invalid_request",
            ),
            (
                format!("{base}&response_type=code&scope=openid"),
                "invalid_request",
            ),
            (
                format!(
                    "{base}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=plain"
                ),
                "invalid_request",
            ),
            (
                format!("{base}&response_type=code&scope=openid&code_challenge={challenge}"),
                "invalid_request",
            ),
            (
                format!(
                    "{base}&response_type=code&scope=openid&code_challenge=short&code_challenge_method=S256"
                ),
                "invalid_request",
            ),
            (
                format!(
                    "{base}&response_type=code&scope=openid%20admin.full&code_challenge={challenge}&code_challenge_method=S256"
                ),
                "invalid_scope",
            ),
            (
                format!(
                    "{base}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&prompt=none%20login"
                ),
                "invalid_request",
            ),
            (
                format!(
                    "{base}&response_type=code&scope=openid&code_challenge={challenge}&code_challenge_method=S256&max_age=-1"
                ),
                "invalid_request",
            ),
        ] {
            let resp = get(query.clone()).await;
            assert_eq!(resp.status(), 303, "{query}");
            let location = resp.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with(REDIRECT));
            assert_eq!(
                query_param(&location, "error").as_deref(),
                Some(error),
                "{query}"
            );
            assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
            assert_eq!(
                query_param(&location, "iss").as_deref(),
                Some(id.issuer.as_str())
            );
        }

        // Code redemption errors: each code is burnt by its first redemption attempt.
        let query = authorize_query(&client, &challenge, "");
        let fresh_code = async || {
            let signed = id
                .sign_in(&query, "admin@tansu.local", ADMIN_PASSWORD)
                .await;
            query_param(&signed.location, "code").unwrap()
        };
        let code = fresh_code().await;
        let resp = id.redeem(&client, &code, REDIRECT, None).await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "missing verifier"
        );
        let code = fresh_code().await;
        let (other_verifier, _) = pkce();
        let resp = id
            .redeem(&client, &code, REDIRECT, Some(&other_verifier))
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "wrong verifier"
        );
        let code = fresh_code().await;
        let resp = id
            .redeem(&client, &code, "http://127.0.0.1:9999/cb", Some(&verifier))
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "other redirect_uri"
        );
        let resp = id
            .redeem(&client, "no-such-code", REDIRECT, Some(&verifier))
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "unknown code"
        );
        let code = fresh_code().await;
        let resp = id
            .redeem(&client, &code, REDIRECT, Some("not a valid verifier"))
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "malformed verifier"
        );
        let resp = id
            .redeem(&client, &code, REDIRECT, Some(verifier.as_str()))
            .await;
        assert_eq!(
            resp.status(),
            200,
            "a malformed verifier does not burn the code"
        );
        let code = fresh_code().await;
        let resp = id
            .http
            .post(id.url("/connect/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client.as_str()),
                ("code", code.as_str()),
            ])
            .send_ok()
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_request",
            "no redirect_uri"
        );

        // An expired code (written directly with a past expiry).
        let expired = "expired-code-for-the-test";
        let now = tansu_identity::store::now_ms();
        let user = id
            .state
            .store
            .user_by_email("admin@tansu.local")
            .await
            .unwrap()
            .unwrap();
        id.state
            .store
            .insert_code(&tansu_identity::store::grants::CodeRow {
                code_hash: tansu_identity::crypto::sha256(expired.as_bytes()),
                client_id: client.clone(),
                user_id: user.id,
                session_id: "s".into(),
                redirect_uri: REDIRECT.into(),
                scope: "openid".into(),
                nonce: None,
                code_challenge: Some(challenge.clone()),
                code_challenge_method: Some("S256".into()),
                auth_time: now - 120_000,
                created_at: now - 120_000,
                expires_at: now - 60_000,
                used_at: None,
                issued_family_id: None,
                issued_access_jti: None,
                issued_access_exp: None,
            })
            .await
            .unwrap();
        let resp = id
            .redeem(&client, expired, REDIRECT, Some(verifier.as_str()))
            .await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "expired code");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("expired")
        );

        // A confidential client must authenticate to redeem; another client cannot use the code.
        let code = fresh_code().await;
        let (other, other_secret) = id
            .create_client(json!({"name": "other", "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT], "scopes": ["openid"]}))
            .await;
        let resp = id
            .http
            .post(id.url("/connect/token"))
            .basic_auth(&other, Some(&other_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ])
            .send_ok()
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "code of another client"
        );
        id.stop().await;
        db.cleanup().await;
    }
}

async fn first_tokens(id: &Instance, client: &str) -> Value {
    let (verifier, challenge) = pkce();
    let signed = id
        .sign_in(
            &authorize_query(client, &challenge, ""),
            "admin@tansu.local",
            ADMIN_PASSWORD,
        )
        .await;
    let code = query_param(&signed.location, "code").unwrap();
    let resp = id
        .redeem(client, &code, REDIRECT, Some(verifier.as_str()))
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn refresh_rotation_and_reuse_detection() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |c| c.refresh_reuse_grace_secs = 0).await;
        let client = public_app(&id).await;
        let t0 = first_tokens(&id, &client).await;
        let rt0 = t0["refresh_token"].as_str().unwrap();

        let resp = id.refresh(&client, rt0).await;
        assert_eq!(resp.status(), 200);
        let t1: Value = resp.json().await.unwrap();
        let rt1 = t1["refresh_token"].as_str().unwrap();
        assert_ne!(rt0, rt1, "rotated");
        assert!(t1["id_token"].is_string());
        let access1 = t1["access_token"].as_str().unwrap();
        assert_eq!(id.introspect(access1).await["active"], true);
        assert_eq!(id.introspect(rt1).await["active"], true);
        assert_eq!(
            id.introspect(rt0).await,
            json!({"active": false}),
            "superseded"
        );

        // Narrowing the scope is allowed, widening is not.
        let resp = id
            .http
            .post(id.url("/connect/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", client.as_str()),
                ("refresh_token", rt1),
                ("scope", "openid admin.full"),
            ])
            .send_ok()
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_scope"
        );

        // Replaying the old token after the grace window revokes the family: rt1 dies too.
        let resp = id.refresh(&client, rt0).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );
        let resp = id.refresh(&client, rt1).await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant",
            "family revoked"
        );
        assert_eq!(
            id.introspect(access1).await,
            json!({"active": false}),
            "access tokens of the family"
        );
        id.stop().await;

        // Within the grace window a retried old token is refused without revoking the family.
        let id = Instance::start(&db, "", |c| c.refresh_reuse_grace_secs = 300).await;
        let t0 = first_tokens(&id, &client).await;
        let rt0 = t0["refresh_token"].as_str().unwrap();
        let t1: Value = id.refresh(&client, rt0).await.json().await.unwrap();
        let rt1 = t1["refresh_token"].as_str().unwrap();
        let resp = id.refresh(&client, rt0).await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );
        assert_eq!(
            id.refresh(&client, rt1).await.status(),
            200,
            "the family survives a retry"
        );

        // Revoking a refresh token revokes its family.
        let t0 = first_tokens(&id, &client).await;
        let rt0 = t0["refresh_token"].as_str().unwrap();
        let resp = id
            .http
            .post(id.url("/connect/revocation"))
            .form(&[
                ("client_id", client.as_str()),
                ("token", rt0),
                ("token_type_hint", "refresh_token"),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(id.refresh(&client, rt0).await.status(), 400);
        assert_eq!(
            id.introspect(t0["access_token"].as_str().unwrap()).await,
            json!({"active": false})
        );
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_yield_one_new_head() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let client = public_app(&id).await;
        let t0 = first_tokens(&id, &client).await;
        let rt0 = t0["refresh_token"].as_str().unwrap().to_owned();
        let access = t0["access_token"].as_str().unwrap();
        let fid = {
            let v = id.state.verify_issued_token(access, None).await.unwrap();
            v.fid.expect("access tokens of a family name it")
        };
        let attempts = (0..20).map(|_| {
            let http = id.http.clone();
            let url = id.url("/connect/token");
            let (client, rt0) = (client.clone(), rt0.clone());
            async move {
                let resp = http
                    .post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", client.as_str()),
                        ("refresh_token", rt0.as_str()),
                    ])
                    .send_ok()
                    .await;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap();
                (status, body)
            }
        });
        let results = futures::future::join_all(attempts).await;
        assert!(
            results.iter().all(|(s, _)| *s == 200 || *s == 400),
            "no 5xx: {results:?}"
        );
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one refresh wins on {}",
            db.name()
        );
        assert!(
            results
                .iter()
                .filter(|(s, _)| *s == 400)
                .all(|(_, b)| b["error"] == "invalid_grant")
        );
        assert_eq!(
            id.state.store.family_generation(&fid).await.unwrap(),
            Some(1),
            "one new head"
        );
        // The winner's token keeps working (the losers were within the grace window).
        let rt1 = winners[0]["refresh_token"].as_str().unwrap();
        assert_eq!(id.refresh(&client, rt1).await.status(), 200);
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn rp_initiated_logout() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let client = public_app(&id).await;
        let admin = id.admin_token().await;
        let resp = id
            .http
            .patch(id.url(&format!("/admin/clients/{client}")))
            .bearer_auth(&admin)
            .json(&json!({"post_logout_redirect_uris": ["https://app.example/bye"]}))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let (verifier, challenge) = pkce();
        let query = authorize_query(&client, &challenge, "");
        let signed = id
            .sign_in(&query, "admin@tansu.local", ADMIN_PASSWORD)
            .await;
        let session = signed.session_cookie.unwrap();
        let code = query_param(&signed.location, "code").unwrap();
        let tokens: Value = id
            .redeem(&client, &code, REDIRECT, Some(&verifier))
            .await
            .json()
            .await
            .unwrap();
        let hint = tokens["id_token"].as_str().unwrap();
        let http = no_redirects();
        let end = |q: String| {
            let http = http.clone();
            let url = id.url(&format!("/connect/endsession?{q}"));
            let session = session.clone();
            async move { http.get(url).header("cookie", session).send_ok().await }
        };

        // Refused: an unregistered target, a forged hint, a client_id that contradicts the hint.
        for q in [
            format!(
                "id_token_hint={hint}&post_logout_redirect_uri={}",
                form_encode("https://evil.example/bye")
            ),
            format!(
                "id_token_hint={hint}x&post_logout_redirect_uri={}",
                form_encode("https://app.example/bye")
            ),
            format!("id_token_hint={hint}&client_id=someone-else"),
            format!(
                "post_logout_redirect_uri={}",
                form_encode("https://app.example/bye")
            ),
        ] {
            let resp = end(q.clone()).await;
            assert_eq!(resp.status(), 400, "{q}");
            assert!(resp.headers().get("location").is_none());
        }
        // Without a hint the user must confirm (a CSRF-protected form); a forged POST fails.
        let resp = end(format!("client_id={client}")).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("Sign out?"));
        let resp = http
            .post(id.url("/connect/endsession"))
            .header("cookie", &session)
            .form(&[("confirm", "1"), ("client_id", client.as_str())])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 403);

        // With the hint: signed out at once, sent to the registered target with state.
        let resp = end(format!(
            "id_token_hint={hint}&post_logout_redirect_uri={}&state=bye1",
            form_encode("https://app.example/bye")
        ))
        .await;
        assert_eq!(resp.status(), 303);
        assert_eq!(
            resp.headers()["location"],
            "https://app.example/bye?state=bye1"
        );
        let cleared = set_cookie(&resp, "tansu_session").unwrap();
        assert_eq!(cleared, "tansu_session=");
        // The old session no longer signs in, and its refresh tokens are revoked.
        let resp = id
            .authorize(
                &http,
                &authorize_query(&client, &challenge, "&prompt=none"),
                Some(session.as_str()),
            )
            .await;
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("login_required")
        );
        let resp = id
            .refresh(&client, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn third_party_clients_need_consent() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let _ = public_app(&id).await;
        let resp = id
            .http
            .post(id.url("/admin/clients"))
            .bearer_auth(id.admin_token().await)
            .json(&json!({
                "client_id": "third",
                "name": "Third <party> app",
                "client_type": "public",
                "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT],
                "scopes": ["openid", "email", "profile", "db.read"],
            }))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 201);
        let http = no_redirects();
        let (verifier, challenge) = pkce();
        let query = |client: &str, scope: &str, extra: &str| {
            format!(
                "response_type=code&client_id={client}&redirect_uri={}&scope={}&state=c1&code_challenge={challenge}&code_challenge_method=S256{extra}",
                form_encode(REDIRECT),
                form_encode(scope)
            )
        };
        // Sign in: the answer is the consent page, with the session already set.
        let q = query("third", "openid email", "");
        let page = id.authorize(&http, &q, None).await;
        let csrf_cookie = set_cookie(&page, "tansu_csrf").unwrap();
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf").unwrap();
        let resp = http
            .post(id.url("/login"))
            .header("cookie", &csrf_cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("request", &q),
                ("email", "admin@tansu.local"),
                ("password", ADMIN_PASSWORD),
            ])
            .send_ok()
            .await;
        assert_eq!(resp.status(), 200);
        let session = set_cookie(&resp, "tansu_session").unwrap();
        let cookies = format!("{csrf_cookie}; {session}");
        // An authorization request of the signed-in browser.
        let ask = |query: String| {
            let (id, http, cookies) = (&id, &http, cookies.as_str());
            async move { id.authorize(http, &query, Some(cookies)).await }
        };
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("Allow access?") && html.contains("Third &lt;party&gt; app"),
            "{html}"
        );
        assert_eq!(hidden_field(&html, "request").unwrap(), q);
        let decide = |decision: &'static str, request: String, cookies: Option<String>| {
            let http = http.clone();
            let url = id.url("/consent");
            let csrf = csrf.clone();
            async move {
                let mut req = http.post(url).form(&[
                    ("csrf", csrf.as_str()),
                    ("request", &request),
                    ("decision", decision),
                ]);
                if let Some(c) = cookies {
                    req = req.header("cookie", c);
                }
                req.send_ok().await
            }
        };
        // Without the session or the CSRF cookie: refused.
        assert_eq!(
            decide("allow", q.clone(), Some(csrf_cookie.clone()))
                .await
                .status(),
            400
        );
        assert_eq!(
            decide("allow", q.clone(), Some(session.clone()))
                .await
                .status(),
            403
        );
        // Deny → access_denied back at the client.
        let resp = decide("deny", q.clone(), Some(cookies.clone())).await;
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("access_denied")
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("c1"));
        // Nothing was remembered: asked again; allow → a code that redeems.
        let again = ask(q.clone()).await;
        assert_eq!(again.status(), 200);
        let resp = decide("allow", q.clone(), Some(cookies.clone())).await;
        assert_eq!(resp.status(), 303);
        let code = query_param(resp.headers()["location"].to_str().unwrap(), "code").unwrap();
        assert_eq!(
            id.redeem("third", &code, REDIRECT, Some(&verifier))
                .await
                .status(),
            200
        );
        // Remembered: the same scopes go straight through, even with prompt=none.
        for extra in ["", "&prompt=none"] {
            let resp = ask(query("third", "openid email", extra)).await;
            assert_eq!(resp.status(), 303, "{extra}");
            assert!(query_param(resp.headers()["location"].to_str().unwrap(), "code").is_some());
        }
        // A wider request asks again (or fails with prompt=none).
        let resp = ask(query("third", "openid email db.read", "")).await;
        assert_eq!(resp.status(), 200);
        let resp = ask(query("third", "openid email db.read", "&prompt=none")).await;
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("consent_required")
        );
        // First-party clients skip consent unless the client asks with prompt=consent.
        let resp = ask(query("web-app", "openid", "")).await;
        assert_eq!(resp.status(), 303);
        let resp = ask(query("web-app", "openid", "&prompt=consent")).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("Allow access?"));
        id.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn maintenance_purges_dead_state_only() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let client = public_app(&id).await;
        let live = first_tokens(&id, &client).await;
        let dead = first_tokens(&id, &client).await;
        let store = &id.state.store;
        let fid_of = async |t: &Value| {
            id.state
                .verify_issued_token(t["access_token"].as_str().unwrap(), None)
                .await
                .unwrap()
                .fid
                .unwrap()
        };
        let (live_fid, dead_fid) = (fid_of(&live).await, fid_of(&dead).await);
        let now = tansu_identity::store::now_ms();
        // Revoked two days ago (as far as the purge can tell).
        store
            .revoke_family(&dead_fid, now - 2 * 86_400_000)
            .await
            .unwrap();
        assert!(store.purge_expired(now).await >= 1);
        assert_eq!(
            store.family_generation(&dead_fid).await.unwrap(),
            None,
            "dead family purged"
        );
        assert_eq!(
            store.family_generation(&live_fid).await.unwrap(),
            Some(0),
            "live family kept"
        );
        assert_eq!(
            id.refresh(&client, live["refresh_token"].as_str().unwrap())
                .await
                .status(),
            200
        );
        id.stop().await;
        db.cleanup().await;
    }
}
