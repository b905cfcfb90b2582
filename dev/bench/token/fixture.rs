//! The issuer benchmark's fixture: clients, users and the refresh tokens the scripts start from.

use super::*;
use std::time::Duration;
pub(crate) use tansu_bench::identity_rig::DEV_SECRET;
use tansu_bench::identity_rig::PASSWORD;

/// What the benchmark created in identity.
pub(crate) struct Fixture {
    pub(crate) rs: (String, String),
    pub(crate) es: (String, String),
    pub(crate) app: String,
    pub(crate) users: Vec<String>,
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = tansu_identity::crypto::random_secret().expect("randomness");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

pub(crate) fn authorize_path(client_id: &str, challenge: &str, login_hint: Option<&str>) -> String {
    let mut p = format!(
        "/connect/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=bench&code_challenge={}&code_challenge_method=S256",
        enc(client_id),
        enc(REDIRECT_URI),
        enc("openid offline_access db.read"),
        enc(challenge)
    );
    if let Some(h) = login_hint {
        let _ = write!(p, "&login_hint={}", enc(h));
    }
    p
}

pub(crate) async fn json_ok(
    resp: reqwest::Response,
    what: &str,
) -> anyhow::Result<serde_json::Value> {
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{what}: {status}: {text}");
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

pub(crate) async fn set_up(base: &str, users: usize) -> anyhow::Result<Fixture> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = json_ok(
        http.post(format!("{base}connect/token"))
            .basic_auth(tansu_identity::DEV_CLIENT_ID, Some(DEV_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full"),
            ])
            .send()
            .await?,
        "admin token",
    )
    .await?;
    let admin = admin["access_token"]
        .as_str()
        .context("admin access_token")?
        .to_owned();
    let create_client = |body: serde_json::Value| {
        let (http, admin) = (http.clone(), admin.clone());
        async move {
            let v = json_ok(
                http.post(format!("{base}admin/clients"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await?,
                "create client",
            )
            .await?;
            anyhow::Ok((
                v["client_id"].as_str().context("client_id")?.to_owned(),
                v["client_secret"].as_str().unwrap_or_default().to_owned(),
            ))
        }
    };
    let machine = |alg: &str| {
        serde_json::json!({
            "name": format!("bench {alg}"),
            "grant_types": ["client_credentials"],
            "scopes": ["db.read", "db.write"],
            "signing_alg": alg,
        })
    };
    let rs = create_client(machine("RS256")).await?;
    let es = create_client(machine("ES256")).await?;
    let (app, _) = create_client(serde_json::json!({
        "name": "bench app",
        "client_type": "public",
        "first_party": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "offline_access", "db.read"],
        "redirect_uris": [REDIRECT_URI],
        "signing_alg": "RS256",
    }))
    .await?;
    let tenant = json_ok(
        http.post(format!("{base}admin/tenants"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"slug": "bench", "name": "Bench"}))
            .send()
            .await?,
        "create tenant",
    )
    .await?;
    let tid = tenant["id"].as_str().context("tenant id")?.to_owned();
    let mut emails = Vec::new();
    for i in 0..users {
        let email = format!("user{i}@bench.test");
        json_ok(
            http.post(format!("{base}admin/tenants/{tid}/users"))
                .bearer_auth(&admin)
                .json(&serde_json::json!({"email": email, "password": PASSWORD, "roles": ["User"]}))
                .send()
                .await?,
            "create user",
        )
        .await?;
        emails.push(email);
    }
    Ok(Fixture {
        rs,
        es,
        app,
        users: emails,
    })
}

/// A refresh token for `email` through the real code flow (login form, code, PKCE).
pub(crate) async fn refresh_token_for(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    email: &str,
) -> anyhow::Result<String> {
    let (verifier, challenge) = pkce();
    let page = http
        .get(format!(
            "{}{}",
            base.trim_end_matches('/'),
            authorize_path(client_id, &challenge, None)
        ))
        .send()
        .await?;
    let cookie = cookie_pair(page.headers(), "tansu_csrf").context("csrf cookie")?;
    let html = page.text().await?;
    let csrf = hidden_field(&html, "csrf").context("csrf field")?;
    let request = hidden_field(&html, "request").context("request field")?;
    let resp = http
        .post(format!("{base}login"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("login did not redirect")?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let tokens = json_ok(
        http.post(format!("{base}connect/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .send()
            .await?,
        "code exchange",
    )
    .await?;
    Ok(tokens["refresh_token"]
        .as_str()
        .context("no refresh_token")?
        .to_owned())
}
