//! DPoP through the gateway (RFC 9449): a proof names the URL the client called — the gateway's
//! public one — and identity checks it against that URL, as the gateway describes the request
//! (`X-Forwarded-Proto/-Host/-Prefix`, which the gateway sets and a client cannot: its own
//! copies are dropped). A proof for identity's internal address, or for a host a client claims
//! in its own `X-Forwarded-Host`, is refused.

#[path = "apps/common.rs"]
mod common;

use common::*;
use serde_json::Value;
use tansu_shared::testing::dpop::DpopKey;
use tansu_shared::testing::http::SendOk;

#[tokio::test]
async fn proofs_name_the_public_url_and_only_the_gateway_describes_it() {
    let Some(p) = Platform::start("dpop through the gateway", false).await else {
        return;
    };
    let secret =
        std::fs::read_to_string(p.dir.path().join("data/identity/tansu-dashboard.secret")).unwrap();
    let key = DpopKey::es256();
    let token_url = format!("{}connect/token", p.stack.issuer);
    assert!(
        token_url.starts_with(&p.base),
        "the issuer is the public URL"
    );
    let token = |proof: String| {
        p.http
            .post(format!("{}/identity/connect/token", p.base))
            .basic_auth("tansu-dashboard", Some(secret.trim()))
            .header("DPoP", proof)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "admin.full"),
            ])
            .send_ok()
    };
    let resp = token(key.proof("POST", &token_url, None, None)).await;
    assert_eq!(resp.status(), 400);
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let resp = token(key.proof("POST", &token_url, None, Some(&nonce))).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap().to_owned();

    let public = format!("{}/identity/admin/tenants", p.base);
    let call = |proof: String, forwarded_host: Option<&'static str>| {
        let mut req = p
            .http
            .get(&public)
            .header("authorization", format!("DPoP {access}"))
            .header("DPoP", proof);
        if let Some(host) = forwarded_host {
            req = req.header("x-forwarded-host", host);
        }
        req.send_ok()
    };
    // The public URL: accepted.
    let resp = call(key.proof("GET", &public, Some(&access), Some(&nonce)), None).await;
    assert_eq!(resp.status(), 200, "a proof for the public URL");
    // identity's own address: not the URL the client called.
    let internal = p.identity_url("/admin/tenants");
    let resp = call(
        key.proof("GET", &internal, Some(&access), Some(&nonce)),
        None,
    )
    .await;
    assert_eq!(resp.status(), 401, "a proof for the internal URL");
    // A host the client claims: the gateway drops the claim, so the proof names another URL.
    let claimed = "https://claimed.example/identity/admin/tenants";
    let resp = call(
        key.proof("GET", claimed, Some(&access), Some(&nonce)),
        Some("claimed.example"),
    )
    .await;
    assert_eq!(resp.status(), 401, "a proof for a host the client claims");
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    p.shutdown().await;
}
