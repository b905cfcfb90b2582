//! An independent relying party (the `openidconnect` crate) checks the issuer: discovery,
//! authorization code + PKCE through the real login form, ID token verification (signature,
//! iss, aud, nonce, at_hash, exp) and userinfo. Direct to the service over HTTP; the run
//! through the gateway with TLS belongs to the end-to-end suite of the dev stack.

mod common;

use common::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::json;

const SUITE: &str = "identity relying party";
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// openidconnect's HTTP client trait over the workspace's reqwest (no redirects followed).
async fn http_client(
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, std::io::Error> {
    let io = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let (parts, body) = request.into_parts();
    let resp = no_redirects()
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| io(&e))?;
    let mut builder = http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        builder = builder.header(name, value);
    }
    let bytes = resp.bytes().await.map_err(|e| io(&e))?;
    builder.body(bytes.to_vec()).map_err(|e| io(&e))
}

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
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);

        let provider = CoreProviderMetadata::discover_async(
            IssuerUrl::new(id.issuer.clone()).unwrap(),
            &http_client,
        )
        .await
        .expect("discovery");
        let client = CoreClient::from_provider_metadata(provider, ClientId::new("rp".into()), None)
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        assert!(
            auth_url
                .as_str()
                .starts_with(&format!("{}connect/authorize?", id.issuer))
        );

        let signed = id
            .sign_in(
                auth_url.query().unwrap(),
                "admin@tansu.local",
                ADMIN_PASSWORD,
            )
            .await;
        assert!(signed.location.starts_with(REDIRECT), "{}", signed.location);
        assert_eq!(
            query_param(&signed.location, "state").as_deref(),
            Some(csrf.secret().as_str())
        );
        let code = query_param(&signed.location, "code").unwrap();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http_client)
            .await
            .expect("code exchange");
        let id_token = tokens.id_token().expect("an ID token");
        let id_verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&id_verifier, &nonce)
            .expect("ID token verifies: signature, iss, aud, exp, nonce");
        let expected = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected, "at_hash");
        assert_eq!(
            claims.email().map(|e| e.as_str()),
            Some("admin@tansu.local")
        );
        assert!(claims.auth_time().is_some());

        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().to_owned(), None)
            .unwrap()
            .request_async(&http_client)
            .await
            .expect("userinfo");
        assert_eq!(info.subject(), claims.subject());
        assert_eq!(info.email().map(|e| e.as_str()), Some("admin@tansu.local"));
        id.stop().await;
        db.cleanup().await;
    }
}
