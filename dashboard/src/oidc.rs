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

async fn client(state: &AppState) -> anyhow::Result<(Client, reqwest::Client)> {
    let http = state.http.clone();
    let h = http.clone();
    let issuer = IssuerUrl::new(state.config.issuer.clone())?;
    let metadata =
        CoreProviderMetadata::discover_async(issuer, &move |r| send(h.clone(), r)).await?;
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
    let (client, _) = client(state).await?;
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
    let (client, http) = client(state).await?;
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
    let claims = id_token.claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))?;
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
        let url = format!("{}.well-known/openid-configuration", state.config.issuer);
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
