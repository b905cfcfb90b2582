//! DPoP-bound tokens through the shared extractors (RFC 9449 §7, §9): a resource server whose
//! verifier requires nonces answers `use_dpop_nonce` with a `DPoP-Nonce` first, then accepts a
//! proof carrying it; the URL a proof names is the one the client called, behind the gateway
//! too (`X-Forwarded-*`). Replay caches sharing a Redis refuse a proof another one saw, and
//! keep refusing what they saw themselves while Redis is away.

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use tansu_shared::auth::{Confirmation, Principal, Verifier, VerifierConfig};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::dpop::DpopKey;
use tansu_shared::testing::issuer::*;

#[derive(Clone)]
struct AppState {
    verifier: Verifier,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(s: &AppState) -> Verifier {
        s.verifier.clone()
    }
}

async fn whoami(p: Principal) -> String {
    p.sub.clone()
}

#[tokio::test]
async fn a_nonce_is_asked_for_then_accepted_and_the_url_is_the_clients() {
    let key = ec_key("k1");
    let issuer = TestIssuer::start(&[&key]).await;
    let verifier = Verifier::new(VerifierConfig {
        dpop_nonce: true,
        ..VerifierConfig::new(issuer.issuer.clone(), AUDIENCE)
    })
    .await
    .unwrap();
    let router = Router::new()
        .route("/whoami", get(whoami))
        .with_state(AppState { verifier });
    let app = TestServer::start(router).await;
    let http = reqwest::Client::new();

    let dpop = DpopKey::ed25519();
    let mut claims = issuer.claims();
    claims.cnf = Some(Confirmation { jkt: dpop.jkt() });
    let token = sign(&key, &claims);
    // What the client called: the gateway's URL, which the service learns from the gateway.
    let public = "https://platform.example/db/whoami";
    let call = |proof: String| {
        http.get(app.url("/whoami"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "platform.example")
            .header("x-forwarded-prefix", "/db")
            .send()
    };

    let resp = call(dpop.proof("GET", public, Some(&token), None))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let nonce = resp.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP ") && challenge.contains("error=\"use_dpop_nonce\""));

    let resp = call(dpop.proof("GET", public, Some(&token), Some(&nonce)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "user-1");

    // The service's own address is not the URL the client called.
    let resp = call(dpop.proof("GET", &app.url("/whoami"), Some(&token), Some(&nonce)))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A nonce the server never gave.
    let resp = call(dpop.proof("GET", public, Some(&token), Some("made-up")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("dpop-nonce").is_some());
}

#[tokio::test]
async fn replay_caches_sharing_a_redis_see_each_others_proofs() {
    use tansu_shared::auth::dpop::{Proof, ReplayCache};
    use tansu_shared::testing::processes::Redis;
    if !Redis::available() {
        tansu_shared::testing::skip_or_fail::<()>(
            "dpop (shared replay cache)",
            "redis-server is not installed",
        );
        return;
    }
    let mut redis = Redis::start();
    let one = ReplayCache::shared(&redis.url()).unwrap();
    let two = ReplayCache::shared(&redis.url()).unwrap();
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let proof = |jti: &str| Proof {
        jkt: "thumbprint".into(),
        jti: jti.into(),
        iat: now,
        nonce: None,
    };
    assert!(one.first_use(&proof("a"), now).await.is_ok());
    assert!(
        two.first_use(&proof("a"), now).await.is_err(),
        "seen by the other"
    );
    assert!(
        one.first_use(&proof("a"), now).await.is_err(),
        "and by itself"
    );
    assert!(two.first_use(&proof("b"), now).await.is_ok(), "another jti");
    let other_key = Proof {
        jkt: "another thumbprint".into(),
        ..proof("a")
    };
    assert!(one.first_use(&other_key, now).await.is_ok(), "per key");
    assert!(ReplayCache::shared("not a url").is_err());

    // Redis away: each cache's own record decides.
    redis.stop_server();
    assert!(one.first_use(&proof("c"), now).await.is_ok());
    assert!(one.first_use(&proof("c"), now).await.is_err());
}
