//! The relying party: discovery, authorization URL (code + PKCE S256), code exchange with ID
//! token verification (`openidconnect`), and the RP-initiated logout URL.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use crate::AppState;
use crate::session::{Pending, Session};

/// Scopes the dashboard asks for, to call identity's admin API for the signed-in admin:
/// `admin.full` (dev mode; identity grants it only to platform admins), `admin.tenant` (tenant
/// owners and admins: their tenant only) and the vault's `secrets.read`/`secrets.write`.
const SCOPES: &[&str] = &[
    "profile",
    "email",
    "roles",
    "admin.full",
    "admin.tenant",
    "secrets.read",
    "secrets.write",
];

#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Debug for ProviderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCache").finish_non_exhaustive()
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// The `openidconnect` HTTP client over our `reqwest` client (no redirects, bounded time).
async fn send(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let req = reqwest::Request::try_from(req).map_err(|e| HttpError(e.to_string()))?;
    let resp = http
        .execute(req)
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    let mut out = http::Response::new(body.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

fn secret(state: &AppState) -> anyhow::Result<String> {
    let c = &state.config;
    if !c.client_secret.is_empty() {
        return Ok(c.client_secret.expose().to_owned());
    }
    let path = c
        .client_secret_file
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no client secret configured"))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("client_secret_file {}: {e}", path.display()))?;
    let s = text.lines().next().unwrap_or("").trim().to_owned();
    anyhow::ensure!(!s.is_empty(), "client_secret_file is empty");
    Ok(s)
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// How long the provider's metadata (discovery document and key set) is used before it is
/// fetched again.
const METADATA_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// The provider's metadata, fetched once per [`METADATA_TTL`] (one fetch at a time), and at
/// once when an ID token names a key it lacks (identity rotated its keys). A sign-in then costs
/// identity one request, the code exchange: nobody can make the dashboard fetch discovery and
/// keys for every sign-in attempt they start or replay.
#[derive(Default)]
pub(crate) struct ProviderCache(
    tokio::sync::Mutex<Option<(std::time::Instant, CoreProviderMetadata)>>,
);

/// The provider's metadata: the cached one unless it is older than [`METADATA_TTL`] or
/// `fresh` is asked for.
async fn metadata(state: &AppState, fresh: bool) -> anyhow::Result<CoreProviderMetadata> {
    let mut cached = state.provider.0.lock().await;
    if !fresh
        && let Some((at, m)) = cached.as_ref()
        && at.elapsed() < METADATA_TTL
    {
        return Ok(m.clone());
    }
    let h = state.http.clone();
    let issuer = IssuerUrl::new(state.config.issuer.clone())?;
    let m = if state.config.identity_url.is_empty() {
        CoreProviderMetadata::discover_async(issuer, &move |r| send(h.clone(), r)).await?
    } else {
        backchannel_metadata(state, &issuer).await?
    };
    *cached = Some((std::time::Instant::now(), m.clone()));
    Ok(m)
}

/// The provider's metadata read from identity's own address: the document must name the
/// configured issuer; the endpoints the dashboard calls itself (token, keys) are moved from the
/// issuer to `identity_url`, the ones the browser visits stay public.
async fn backchannel_metadata(
    state: &AppState,
    issuer: &IssuerUrl,
) -> anyhow::Result<CoreProviderMetadata> {
    let base = &state.config.identity_url;
    let internal = |public: &str| -> Option<String> {
        public
            .strip_prefix(state.config.issuer.as_str())
            .map(|rest| format!("{base}{rest}"))
    };
    let url = format!("{base}.well-known/openid-configuration");
    let resp = state.http.get(url).send().await?.error_for_status()?;
    let metadata: CoreProviderMetadata = serde_json::from_slice(&resp.bytes().await?)?;
    anyhow::ensure!(
        metadata.issuer() == issuer,
        "the discovery document names another issuer"
    );
    let token = metadata
        .token_endpoint()
        .and_then(|t| internal(t.as_str()))
        .ok_or_else(|| anyhow::anyhow!("the token endpoint is not under the issuer"))?;
    let jwks = internal(metadata.jwks_uri().as_str())
        .ok_or_else(|| anyhow::anyhow!("the key set is not under the issuer"))?;
    let jwks = openidconnect::JsonWebKeySetUrl::new(jwks)?;
    let h = state.http.clone();
    let keys =
        openidconnect::core::CoreJsonWebKeySet::fetch_async(&jwks, &move |r| send(h.clone(), r))
            .await?;
    Ok(metadata
        .set_token_endpoint(Some(openidconnect::TokenUrl::new(token)?))
        .set_jwks(keys))
}

async fn client(state: &AppState, fresh: bool) -> anyhow::Result<(Client, reqwest::Client)> {
    let http = state.http.clone();
    let metadata = metadata(state, fresh).await?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(state.config.client_id.clone()),
        Some(ClientSecret::new(secret(state)?)),
    )
    .set_redirect_uri(RedirectUrl::new(state.url("callback"))?);
    Ok((client, http))
}

/// Starts a sign-in: returns the authorization URL, the OAuth `state` and what to keep.
pub async fn begin(
    state: &AppState,
    return_to: String,
) -> anyhow::Result<(String, String, Pending)> {
    let (client, _) = client(state, false).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in SCOPES {
        req = req.add_scope(Scope::new((*s).to_owned()));
    }
    let (url, csrf, nonce) = req.set_pkce_challenge(challenge).url();
    Ok((
        url.to_string(),
        csrf.secret().clone(),
        Pending::new(
            verifier.secret().clone(),
            nonce.secret().clone(),
            return_to,
            csrf.secret().clone(),
        ),
    ))
}

fn jwt_payload(jwt: &str) -> Option<serde_json::Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn strings(v: Option<&serde_json::Value>) -> Option<Vec<String>> {
    Some(
        v?.as_array()?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Completes a sign-in: exchanges the code (with the PKCE verifier), verifies the ID token
/// (signature, issuer, audience, expiry, nonce) and builds the session.
pub async fn finish(state: &AppState, code: String, pending: Pending) -> anyhow::Result<Session> {
    let (client, http) = client(state, false).await?;
    let h = http.clone();
    let token = client
        .exchange_code(AuthorizationCode::new(code))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
        .request_async(&move |r| send(h.clone(), r))
        .await
        .map_err(|e| anyhow::anyhow!("token request failed: {e}"))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| anyhow::anyhow!("no ID token in the token response"))?;
    let nonce = Nonce::new(pending.nonce);
    // A key the cached set lacks: identity rotated its keys since; fetched again, once (only
    // after a successful code exchange, so nobody can force it at will).
    let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
        Ok(c) => c,
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            let renewed = self::client(state, true).await?.0;
            id_token.claims(&renewed.id_token_verifier(), &nonce)?
        }
        Err(e) => return Err(e.into()),
    };
    let access_token = token.access_token().secret().clone();
    let id_token_raw = id_token.to_string();
    // The ID token's signature is verified above; read the claims openidconnect's core type
    // does not model (roles, tid) from its payload, then from the access token (received
    // directly from the token endpoint over TLS).
    let id_payload = jwt_payload(&id_token_raw).unwrap_or_default();
    let at_payload = jwt_payload(&access_token).unwrap_or_default();
    let roles = strings(id_payload.get("roles"))
        .or_else(|| strings(at_payload.get("roles")))
        .unwrap_or_default();
    let tenant = id_payload
        .get("tid")
        .or_else(|| at_payload.get("tid"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let email = claims
        .email()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default();
    let name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| email.clone());
    let lifetime = std::time::Duration::from_secs(state.config.session_lifetime_secs);
    let lifetime = token.expires_in().map_or(lifetime, |t| t.min(lifetime));
    Ok(Session {
        subject: claims.subject().as_str().to_owned(),
        email,
        name,
        roles,
        tenant,
        access_token,
        id_token: id_token_raw,
        csrf: crate::session::random_token(),
        expires: crate::session::unix_now() + lifetime.as_secs(),
    })
}

/// The RP-initiated logout URL (`end_session_endpoint` from discovery, else the issuer's
/// `connect/endsession`).
pub async fn logout_url(state: &AppState, id_token: &str) -> String {
    let endpoint = async {
        let url = format!("{}.well-known/openid-configuration", state.identity_base());
        let v: serde_json::Value = state.http.get(url).send().await.ok()?.json().await.ok()?;
        v.get("end_session_endpoint")?.as_str().map(str::to_owned)
    }
    .await
    .unwrap_or_else(|| format!("{}connect/endsession", state.config.issuer));
    let query = serde_urlencoded::to_string([
        ("id_token_hint", id_token),
        ("client_id", state.config.client_id.as_str()),
        ("post_logout_redirect_uri", state.url("signed-out").as_str()),
    ])
    .unwrap_or_default();
    format!("{endpoint}?{query}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::routing::get;
    use tansu_shared::testing::TestServer;

    use crate::{AppState, Config};

    /// An issuer serving its discovery document (counting the fetches) and an empty key set,
    /// at its own address; the document names `public` as the issuer when given (identity
    /// behind the gateway, reached directly).
    async fn issuer(fetches: Arc<AtomicUsize>, public: Option<&str>) -> (TestServer, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let own = format!("http://{}/identity/", listener.local_addr().unwrap());
        let issuer = public.map_or(own.clone(), str::to_owned);
        let document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}connect/authorize"),
            "token_endpoint": format!("{issuer}connect/token"),
            "jwks_uri": format!("{issuer}.well-known/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        let router = axum::Router::new()
            .route(
                "/identity/.well-known/openid-configuration",
                get(move || {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let document = document.clone();
                    async move { axum::Json(document) }
                }),
            )
            .route(
                "/identity/.well-known/jwks",
                get(|| async { axum::Json(serde_json::json!({"keys": []})) }),
            );
        (TestServer::start_on(listener, router), own)
    }

    #[tokio::test]
    async fn sign_ins_share_one_discovery_until_it_ages_or_keys_change() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let (server, issuer) = issuer(fetches.clone(), None).await;
        let state = AppState::new(Config {
            issuer: issuer.clone(),
            health_url: "http://127.0.0.1:1/health".into(),
            public_url: "https://gw.test/dashboard/".into(),
            client_secret: tansu_shared::config::Secret::new("secret"),
            ..Config::default()
        })
        .unwrap();
        // Sign-ins started (and any number of callbacks) reuse one discovery.
        for _ in 0..5 {
            let (url, _, _) = super::begin(&state, "/".into()).await.unwrap();
            assert!(
                url.starts_with(&format!("{issuer}connect/authorize?")),
                "{url}"
            );
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // New keys (an unknown key id in an ID token) fetch it again, once.
        super::client(&state, true).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        super::begin(&state, "/".into()).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        server.stop().await;
    }

    #[tokio::test]
    async fn with_identity_url_the_dashboard_calls_identity_directly() {
        let public = "https://gw.test/identity/";
        let fetches = Arc::new(AtomicUsize::new(0));
        let (server, own) = issuer(fetches.clone(), Some(public)).await;
        let state = AppState::new(Config {
            issuer: public.into(),
            identity_url: own.clone(),
            health_url: "http://127.0.0.1:1/health".into(),
            public_url: "https://gw.test/dashboard/".into(),
            client_secret: tansu_shared::config::Secret::new("secret"),
            ..Config::default()
        })
        .unwrap();
        // Discovery from identity's own address; the browser still goes to the public issuer,
        // the code exchange and the keys to identity directly.
        let (url, _, _) = super::begin(&state, "/".into()).await.unwrap();
        assert!(
            url.starts_with(&format!("{public}connect/authorize?")),
            "{url}"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let m = super::metadata(&state, false).await.unwrap();
        assert_eq!(
            m.token_endpoint().unwrap().as_str(),
            format!("{own}connect/token")
        );
        assert_eq!(m.jwks_uri().as_str(), format!("{public}.well-known/jwks"));
        // A document naming another issuer is refused.
        let other = AppState::new(Config {
            issuer: "https://elsewhere.test/identity/".into(),
            ..(*state.config).clone()
        })
        .unwrap();
        assert!(super::metadata(&other, false).await.is_err());
        server.stop().await;
    }
}
