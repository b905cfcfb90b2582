//! [`Routes`]: an axum router that remembers the paths it routes.
//!
//! Every service builds its route table with it, so a test can enumerate the service's routes
//! from the router itself — the authorization matrix checks each against the policy table, and
//! a new route without a policy row fails it.

use axum::Router;
use axum::routing::MethodRouter;

/// An axum router that remembers the paths it routes.
pub struct Routes<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub fn route(mut self, path: &'static str, method_router: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }
}
