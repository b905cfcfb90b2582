//! A stand-in for identity's tenant directory (and its token endpoint), for services' suites:
//! the test sets each tenant's status and can take the directory down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::TestServer;
use crate::config::Secret;
use crate::tenant_directory::TenantDirectoryConfig;

const TOKEN: &str = "fake-directory-token";

#[derive(Default)]
pub struct DirectoryState {
    /// Tenant id → `active`/`suspended`; absent: 404 (unknown or deleted).
    pub statuses: Mutex<HashMap<String, String>>,
    pub lookups: AtomicUsize,
    /// While set, every request is answered 503.
    pub down: AtomicBool,
}

pub struct FakeDirectory {
    pub server: TestServer,
    pub state: Arc<DirectoryState>,
}

impl FakeDirectory {
    pub async fn start() -> FakeDirectory {
        let state = Arc::new(DirectoryState::default());
        let router = Router::new()
            .route("/connect/token", post(token))
            .route("/admin/tenant-directory/{tenant}", get(lookup))
            .with_state(state.clone());
        FakeDirectory {
            server: TestServer::start(router).await,
            state,
        }
    }

    /// The service configuration that uses this directory, caching answers for `cache_ms`
    /// and never past that when the directory is down.
    pub fn config(&self, cache_ms: u64) -> TenantDirectoryConfig {
        TenantDirectoryConfig {
            identity_url: self.server.url("/"),
            client_id: "platform-service".into(),
            client_secret: Secret::new("platform-service-secret"),
            client_secret_file: None,
            cache_ms,
            stale_ms: 0,
            timeout_ms: 2_000,
        }
    }

    /// Sets `tenant`'s status (`None`: deleted / unknown, answered 404).
    pub fn set(&self, tenant: &str, status: Option<&str>) {
        let mut map = self.state.statuses.lock().unwrap();
        match status {
            Some(s) => map.insert(tenant.to_owned(), s.to_owned()),
            None => map.remove(tenant),
        };
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn lookups(&self) -> usize {
        self.state.lookups.load(Ordering::SeqCst)
    }
}

async fn token(State(s): State<Arc<DirectoryState>>) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(json!({ "access_token": TOKEN, "token_type": "Bearer", "expires_in": 300 }))
        .into_response()
}

async fn lookup(
    State(s): State<Arc<DirectoryState>>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Response {
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.lookups.fetch_add(1, Ordering::SeqCst);
    let status = s.statuses.lock().unwrap().get(&tenant).cloned();
    match status {
        Some(status) => axum::Json(crate::tenant_directory::DirectoryAnswer {
            id: Some(tenant.clone()),
            slug: Some(tenant),
            status,
            allowed_origins: Vec::new(),
        })
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
