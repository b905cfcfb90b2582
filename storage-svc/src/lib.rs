//! `tansu-storage` — Tenant object storage behind scope-protected APIs (`storage.read`/`storage.write`,
//! audience `tansu.storage`).
//!
//! Health-only for now: the object API lands with issue #7.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use tansu_shared::config::Validate;
use tansu_shared::health::Health;
use tokio::net::TcpListener;

/// The `[storage]` section of the platform config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7003".into(),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Vec<String> {
        match self.listen.parse::<std::net::SocketAddr>() {
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("listen: {e}")],
        }
    }
}

/// Shared state of the service's handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
}

/// The service's routes, with the common middleware.
pub fn router(state: AppState) -> Router {
    let _ = state;
    let routes = Router::new()
        .merge(Health::new("storage").router())
        .fallback(tansu_shared::problem::not_found_fallback);
    tansu_shared::server::with_common_layers("storage", routes)
}

/// Serves on `config.listen` until `shutdown` resolves.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tansu_shared::server::bind(&config.listen).await?;
    serve_on(listener, config, shutdown).await
}

/// Serves on an already bound listener (the dev stack and tests bind first).
pub async fn serve_on(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "storage listening");
    let state = AppState {
        config: Arc::new(config),
    };
    tansu_shared::server::serve(listener, router(state), shutdown).await?;
    Ok(())
}
