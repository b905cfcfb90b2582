//! An independent relying party for the end-to-end suites: the `openidconnect` crate checks
//! what the issuer says about itself and what it issues, with no code of ours in between.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};

/// A client configured from the issuer's discovery document.
pub type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// `openidconnect`'s HTTP client over `http` (whose redirect policy and timeouts apply).
pub async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, std::io::Error> {
    let io = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let request = reqwest::Request::try_from(request).map_err(|e| io(&e))?;
    let resp = http.execute(request).await.map_err(|e| io(&e))?;
    let mut out = http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        out = out.header(name, value);
    }
    let body = resp.bytes().await.map_err(|e| io(&e))?;
    out.body(body.to_vec()).map_err(|e| io(&e))
}

/// A public client `client_id` with `redirect`, and what a sign-in must remember.
pub struct RelyingParty {
    pub client: DiscoveredClient,
    http: reqwest::Client,
}

/// An authorization request on its way: the URL to open and what checks the answer.
pub struct Authorization {
    pub url: openidconnect::url::Url,
    pub state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

/// What the sign-in yielded, verified.
pub struct SignedIn {
    pub id_token: CoreIdTokenClaims,
    pub userinfo: CoreUserInfoClaims,
}

impl RelyingParty {
    /// Discovers `issuer` through `http` and configures the public client.
    pub async fn discover(
        http: &reqwest::Client,
        issuer: &str,
        client_id: &str,
        redirect: &str,
    ) -> RelyingParty {
        let h = http.clone();
        let provider = CoreProviderMetadata::discover_async(
            IssuerUrl::new(issuer.to_owned()).unwrap(),
            &move |r| send(h.clone(), r),
        )
        .await
        .expect("discovery");
        let client =
            CoreClient::from_provider_metadata(provider, ClientId::new(client_id.to_owned()), None)
                .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).unwrap());
        RelyingParty {
            client,
            http: http.clone(),
        }
    }

    /// An authorization code request with PKCE, a nonce and `scopes` besides `openid`; its
    /// URL starts at the discovered authorization endpoint.
    pub fn authorize(&self, issuer: &str, scopes: &[&str]) -> Authorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in scopes {
            request = request.add_scope(Scope::new((*s).to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        assert!(
            url.as_str()
                .starts_with(&format!("{issuer}connect/authorize?")),
            "{url}"
        );
        Authorization {
            url,
            state,
            nonce,
            verifier,
        }
    }

    /// Redeems `code`, verifies the ID token (signature, iss, aud, exp, nonce and at_hash)
    /// and reads the userinfo of the same subject.
    pub async fn finish(&self, auth: Authorization, code: String) -> SignedIn {
        let h = self.http.clone();
        let http = move |r| send(h.clone(), r);
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(auth.verifier)
            .request_async(&http)
            .await
            .expect("code exchange");
        let id_token = tokens.id_token().expect("an ID token");
        let id_verifier = self.client.id_token_verifier();
        let claims = id_token
            .claims(&id_verifier, &auth.nonce)
            .expect("ID token verifies: signature, iss, aud, exp, nonce");
        let expected = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(&actual, expected, "at_hash");
        let userinfo: CoreUserInfoClaims = self
            .client
            .user_info(tokens.access_token().to_owned(), None)
            .unwrap()
            .request_async(&http)
            .await
            .expect("userinfo");
        assert_eq!(userinfo.subject(), claims.subject());
        SignedIn {
            id_token: claims.clone(),
            userinfo,
        }
    }
}
