//! The client-credentials token source against a real token endpoint on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use serde_json::json;
use tansu_shared::config::Secret;
use tansu_shared::testing::TestServer;
use tansu_shared::token_source::{ClientCredentials, TokenSource, TokenSourceError};

struct Endpoint {
    calls: AtomicUsize,
    expires_in: u64,
}

async fn token(
    State(s): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|b| String::from_utf8(b).unwrap());
    // The secret is form-encoded before Basic encoding (RFC 6749 §2.3.1).
    if auth.as_deref() != Some("svc:p%40ss+word") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": "bad secret"})),
        )
            .into_response();
    }
    assert!(body.contains("grant_type=client_credentials"));
    assert!(body.contains("scope=db.provision"));
    axum::Json(json!({
        "access_token": format!("token-{n}"),
        "token_type": "Bearer",
        "expires_in": s.expires_in,
    }))
    .into_response()
}

async fn endpoint(expires_in: u64) -> (TestServer, Arc<Endpoint>) {
    let state = Arc::new(Endpoint {
        calls: AtomicUsize::new(0),
        expires_in,
    });
    let router = Router::new()
        .route("/connect/token", post(token))
        .with_state(state.clone());
    (TestServer::start(router).await, state)
}

fn source(server: &TestServer, secret: &str) -> TokenSource {
    TokenSource::new(ClientCredentials {
        token_endpoint: server.url("/connect/token").parse().unwrap(),
        client_id: "svc".into(),
        client_secret: Secret::new(secret),
        scope: "db.provision".into(),
    })
}

#[tokio::test]
async fn caches_until_shortly_before_expiry_and_shares_one_request() {
    let (server, state) = endpoint(3600).await;
    let src = source(&server, "p@ss word");
    let tokens = futures::future::join_all((0..20).map(|_| src.token())).await;
    assert!(
        tokens
            .iter()
            .all(|t| t.as_ref().unwrap().as_ref() == "token-1")
    );
    assert_eq!(state.calls.load(Ordering::SeqCst), 1);

    src.invalidate().await;
    assert_eq!(&*src.token().await.unwrap(), "token-2");
}

#[tokio::test]
async fn expired_tokens_are_renewed() {
    let (server, state) = endpoint(0).await; // already inside the renewal margin
    let src = source(&server, "p@ss word");
    assert_eq!(&*src.token().await.unwrap(), "token-1");
    assert_eq!(&*src.token().await.unwrap(), "token-2");
    assert_eq!(state.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn oauth_errors_and_transport_errors_are_reported() {
    let (server, _) = endpoint(60).await;
    let err = source(&server, "wrong").token().await.unwrap_err();
    match err {
        TokenSourceError::OAuth { error, description } => {
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("bad secret"));
        }
        other => panic!("{other:?}"),
    }
    let url = server.url("/connect/token");
    server.stop().await;
    let src = TokenSource::new(ClientCredentials {
        token_endpoint: url.parse().unwrap(),
        client_id: "svc".into(),
        client_secret: Secret::new("p@ss word"),
        scope: "db.provision".into(),
    });
    let err = src.token().await.unwrap_err();
    assert!(matches!(err, TokenSourceError::Transport(_)), "{err:?}");
    assert!(!err.to_string().contains("p@ss"), "secrets never in errors");
}
