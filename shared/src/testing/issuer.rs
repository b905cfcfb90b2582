//! A token-signing fixture: serves discovery metadata and a JWKS over HTTP on an ephemeral
//! port, counts JWKS fetches, and signs access tokens with real RSA/EC/Ed25519 keys.
//!
//! It exists to test the verifier and resource servers in isolation (any issuer, any key,
//! any malformed token). End-to-end tests use the real identity service instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::{AccessClaims, Audience};
use crate::testing::TestServer;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The audience of [`TestIssuer::claims`].
pub const AUDIENCE: &str = "tansu.db";

pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub enc: EncodingKey,
    pub jwk: Value,
    /// The DER SubjectPublicKeyInfo (RSA keys only): what an HS256 confusion attack would use.
    pub public_der: Vec<u8>,
}

fn finish(kid: &str, alg: Algorithm, enc: EncodingKey, public_der: Vec<u8>) -> TestKey {
    let mut jwk = Jwk::from_encoding_key(&enc, alg).expect("jwk from key");
    jwk.common.key_id = Some(kid.to_owned());
    TestKey {
        kid: kid.to_owned(),
        alg,
        enc,
        jwk: serde_json::to_value(&jwk).unwrap(),
        public_der,
    }
}

pub fn rsa_key(kid: &str) -> TestKey {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
    let pem = pem_wrap("PRIVATE KEY", pkcs8.as_ref());
    let enc = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    let public_der = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(kp.public_key())
        .unwrap()
        .as_ref()
        .to_vec();
    finish(kid, Algorithm::RS256, enc, public_der)
}

pub fn ec_key(kid: &str) -> TestKey {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let enc = EncodingKey::from_ec_der(pkcs8.as_ref());
    finish(kid, Algorithm::ES256, enc, Vec::new())
}

pub fn ed_key(kid: &str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
    let enc = EncodingKey::from_ed_der(pkcs8.as_ref());
    finish(kid, Algorithm::EdDSA, enc, Vec::new())
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub struct TestIssuer {
    pub server: TestServer,
    pub issuer: String,
    pub state: Arc<IssuerState>,
}

pub struct IssuerState {
    pub issuer: Mutex<String>,
    pub jwks_uri: String,
    pub keys: Mutex<Vec<Value>>,
    pub jwks_fetches: AtomicUsize,
    pub cache_control: Mutex<String>,
}

impl TestIssuer {
    pub async fn start(keys: &[&TestKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}/issuer/");
        let state = Arc::new(IssuerState {
            issuer: Mutex::new(issuer.clone()),
            jwks_uri: format!("http://{addr}/issuer/jwks"),
            keys: Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect()),
            jwks_fetches: AtomicUsize::new(0),
            cache_control: Mutex::new("public, max-age=300".into()),
        });
        let router = Router::new()
            .route("/issuer/.well-known/openid-configuration", get(metadata))
            .route("/issuer/jwks", get(jwks))
            .with_state(state.clone());
        let server = TestServer::start_on(listener, router);
        Self {
            server,
            issuer,
            state,
        }
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.keys.lock().unwrap().push(key.jwk.clone());
    }

    pub fn fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Valid claims for this issuer: audience [`AUDIENCE`], scope `db.read openid`, a tenant.
    pub fn claims(&self) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            sub: "user-1".into(),
            aud: Audience::One(AUDIENCE.into()),
            exp: now() + 300,
            iat: now(),
            nbf: Some(now()),
            jti: "jti-1".into(),
            client_id: "app".into(),
            scope: "db.read openid".into(),
            tid: Some("0190f5c0-0000-7000-8000-000000000001".into()),
            roles: vec!["User".into()],
            act: None,
            cnf: None,
        }
    }

    /// Claims of a token for `audience` and `scope` in `tenant` (`None`: a platform token
    /// without `tid`), with a fresh `jti` and 10 minutes to live.
    pub fn claims_for(&self, audience: &str, tenant: Option<&str>, scope: &str) -> AccessClaims {
        AccessClaims {
            aud: Audience::One(audience.into()),
            tid: tenant.map(str::to_owned),
            scope: scope.into(),
            jti: uuid::Uuid::now_v7().to_string(),
            exp: now() + 600,
            ..self.claims()
        }
    }
}

async fn metadata(State(s): State<Arc<IssuerState>>) -> impl IntoResponse {
    axum::Json(json!({
        "issuer": s.issuer.lock().unwrap().clone(),
        "jwks_uri": s.jwks_uri,
    }))
}

async fn jwks(State(s): State<Arc<IssuerState>>) -> impl IntoResponse {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let cc = s.cache_control.lock().unwrap().clone();
    (
        [(axum::http::header::CACHE_CONTROL, cc)],
        axum::Json(json!({ "keys": s.keys.lock().unwrap().clone() })),
    )
}

pub fn sign(key: &TestKey, claims: &impl serde::Serialize) -> String {
    sign_with(key, claims, Some("at+jwt"))
}

pub fn sign_with(key: &TestKey, claims: &impl serde::Serialize, typ: Option<&str>) -> String {
    let mut header = Header::new(key.alg);
    header.typ = typ.map(str::to_owned);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.enc).unwrap()
}

/// base64url without padding, for hand-built (malicious) tokens.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
