//! An independent relying party (the `openidconnect` crate) checks the issuer: discovery,
//! authorization code + PKCE through the real login form, ID token verification (signature,
//! iss, aud, nonce, at_hash, exp) and userinfo. Direct to the service over HTTP; the run
//! through the gateway with TLS belongs to the end-to-end suite of the dev stack.

mod common;

use common::*;
use serde_json::json;
use tansu_shared::testing::rp::RelyingParty;

const SUITE: &str = "identity relying party";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn openidconnect_relying_party_signs_in() {
    for db in backends(SUITE).await {
        let id = Instance::start(&db, "", |_| {}).await;
        let resp = id
            .http
            .post(id.url("/admin/clients"))
            .bearer_auth(id.admin_token().await)
            .json(&json!({
                "client_id": "rp",
                "name": "Relying party",
                "first_party": true,
                "client_type": "public",
                "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT],
                "scopes": ["openid", "profile", "email"],
            }))
            .send_ok()
            .await;
        assert_eq!(resp.status(), 201);

        let rp = RelyingParty::discover(&no_redirects(), &id.issuer, "rp", REDIRECT).await;
        let auth = rp.authorize(&id.issuer, &["email", "profile"]);
        let signed = id
            .sign_in(
                auth.url.query().unwrap(),
                "admin@tansu.local",
                ADMIN_PASSWORD,
            )
            .await;
        assert!(signed.location.starts_with(REDIRECT), "{}", signed.location);
        assert_eq!(
            query_param(&signed.location, "state").as_deref(),
            Some(auth.state.secret().as_str())
        );
        let code = query_param(&signed.location, "code").unwrap();

        let done = rp.finish(auth, code).await;
        assert_eq!(
            done.id_token.email().map(|e| e.as_str()),
            Some("admin@tansu.local")
        );
        assert!(done.id_token.auth_time().is_some());
        assert_eq!(
            done.userinfo.email().map(|e| e.as_str()),
            Some("admin@tansu.local")
        );
        id.stop().await;
        db.cleanup().await;
    }
}
