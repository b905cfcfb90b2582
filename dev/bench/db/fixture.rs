//! The document benchmark's fixture: tokens from identity and the seeded documents.

use super::*;
use crate::token::{DEV_SECRET, json_ok};
use serde_json::{Value, json};

/// A client-credentials token of `client_id` for `scope`.
pub(crate) async fn client_token(
    http: &reqwest::Client,
    identity: &str,
    (client_id, secret): (&str, &str),
    scope: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{identity}connect/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await?;
    let v = json_ok(resp, "token").await?;
    Ok(v["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned())
}

/// `POST {url}` with a bearer token and a JSON body; the answer's JSON (2xx required).
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let resp = http.post(url).bearer_auth(token).json(body).send().await?;
    json_ok(resp, url).await
}

/// What the set-up made in identity: the tenant, its read-write token, a provisioning token.
pub(crate) struct Tokens {
    pub(crate) tenant: String,
    pub(crate) read_write: String,
    pub(crate) provision: String,
}

/// In identity (through its admin API, as its seeded dev client): a tenant, a
/// client-credentials client of that tenant with `db.read db.write`, a platform client with
/// `db.provision`, and a token of each.
pub(crate) async fn identity_set_up(
    http: &reqwest::Client,
    identity: &str,
) -> anyhow::Result<Tokens> {
    let dev = (tansu_identity::DEV_CLIENT_ID, DEV_SECRET);
    let admin = client_token(http, identity, dev, "admin.full").await?;
    let url = |p: &str| format!("{identity}admin/{p}");
    let tenant = post_json(
        http,
        &url("tenants"),
        &admin,
        &json!({"slug": "bench", "name": "Bench"}),
    )
    .await?["id"]
        .as_str()
        .context("tenant id")?
        .to_owned();
    let mut tokens = Vec::new();
    for (name, tenant_id, scope) in [
        ("bench db app", Some(&tenant), "db.read db.write"),
        ("bench provisioner", None, "db.provision"),
    ] {
        let client = post_json(
            http,
            &url("clients"),
            &admin,
            &json!({
                "name": name,
                "tenant_id": tenant_id,
                "grant_types": ["client_credentials"],
                "scopes": scope.split(' ').collect::<Vec<_>>(),
            }),
        )
        .await?;
        let id = client["client_id"].as_str().context("client_id")?;
        let secret = client["client_secret"].as_str().context("client_secret")?;
        tokens.push(client_token(http, identity, (id, secret), scope).await?);
    }
    let provision = tokens.pop().context("provisioning token")?;
    let read_write = tokens.pop().context("read-write token")?;
    Ok(Tokens {
        tenant,
        read_write,
        provision,
    })
}

/// Through the gateway: the collection and `documents` documents (`d0000000`, …).
pub(crate) async fn fill(
    http: &reqwest::Client,
    gateway: &str,
    token: &str,
    documents: usize,
) -> anyhow::Result<()> {
    let api = format!("{gateway}/db/api/collections");
    post_json(http, &api, token, &json!({ "name": COLLECTION })).await?;
    let bulk = format!("{api}/{COLLECTION}/bulk");
    for start in (0..documents).step_by(BULK) {
        let items: Vec<Value> = (start..(start + BULK).min(documents))
            .map(|k| json!({"id": doc_id(k as u64), "data": document(k as u64)}))
            .collect();
        post_json(http, &bulk, token, &json!({ "documents": items })).await?;
    }
    Ok(())
}
