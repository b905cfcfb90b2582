//! What every HTTP handler of identity shares: who is calling ([`Caller`]), what they may do
//! ([`policy`]), and the route table that remembers its paths ([`Routes`]).

pub mod caller;
pub mod policy;

use axum::Router;
use axum::routing::MethodRouter;

pub use caller::Caller;
pub use policy::{Action, Actor, Denied, Rank, Target};

/// An axum router that remembers the paths it routes, so the route list the authorization
/// matrix checks comes from the router itself: a new route cannot miss the test.
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
