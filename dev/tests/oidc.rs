//! An independent relying party (the `openidconnect` crate) signs in through the TLS gateway:
//! discovery at the public issuer, authorization code + PKCE through the real login form,
//! ID token verification (signature, iss, aud, nonce, at_hash, exp) and userinfo.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "correct horse battery staple 42";

fn client(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

fn query(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn relying_party_signs_in_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tansu.toml");
    std::fs::write(
        &config,
        format!("[identity]\ndev_admin_password = \"{PASSWORD}\"\n"),
    )
    .unwrap();
    let mut stack = Stack::start(StackOptions {
        config_file: Some(config),
        ..StackOptions::for_tests(dir.path())
    })
    .await
    .unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    let http = client(&stack.certificate_pem);
    let base = format!("https://{}", stack.gateway);

    // Register the relying party with the dev-mode admin client.
    let secret =
        std::fs::read_to_string(dir.path().join("identity/tansu-dashboard.secret")).unwrap();
    let resp = http
        .post(format!("{base}/identity/connect/token"))
        .basic_auth("tansu-dashboard", Some(secret.trim()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "admin.full"),
        ])
        .send()
        .await
        .unwrap();
    let admin: Value = resp.json().await.unwrap();
    let resp = http
        .post(format!("{base}/identity/admin/clients"))
        .bearer_auth(admin["access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": "rp", "name": "Relying party", "first_party": true,
            "client_type": "public", "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT], "scopes": ["openid", "profile", "email"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let rp_http = http.clone();
    let http_client = move |request: openidconnect::HttpRequest| {
        let rp_http = rp_http.clone();
        async move {
            let io = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
            let (parts, body) = request.into_parts();
            let resp = rp_http
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
    };

    let provider = CoreProviderMetadata::discover_async(
        IssuerUrl::new(stack.issuer.clone()).unwrap(),
        &http_client,
    )
    .await
    .expect("discovery through the gateway");
    let rp = CoreClient::from_provider_metadata(provider, ClientId::new("rp".into()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(
        auth_url
            .as_str()
            .starts_with(&format!("{}connect/authorize?", stack.issuer))
    );

    // The browser's part: the login form, through the gateway.
    let resp = http.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the login page");
    let csrf_cookie = cookie(&resp, "tansu_csrf").expect("CSRF cookie");
    let html = resp.text().await.unwrap();
    let resp = http
        .post(format!("{base}/identity/login"))
        .header("cookie", csrf_cookie)
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("request", hidden(&html, "request").as_str()),
            ("email", "admin@tansu.local"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query(&location, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        query(&location, "iss").as_deref(),
        Some(stack.issuer.as_str()),
        "RFC 9207"
    );
    let code = query(&location, "code").unwrap();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange through the gateway");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = rp.id_token_verifier();
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
    assert_eq!(&actual, expected);
    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().to_owned(), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo through the gateway");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("admin@tansu.local"));
    stack.shutdown().await.unwrap();
}
