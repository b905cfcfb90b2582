//! The master key that wraps every stored secret, and the re-wrap run after it changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A re-wrap run of this replica. Times are unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RewrapRun {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Rows under a previous key when the run started.
    pub total_at_start: u64,
    /// Rows moved under the current key.
    pub rewrapped: u64,
    /// Rows that could not be opened.
    pub failed: u64,
    /// Every row was visited (false: stopped early, or an error).
    pub complete: bool,
    pub error: Option<String>,
}

/// `GET /admin/master-key` and `POST /admin/master-key/rewrap` (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MasterKey {
    pub current_key_id: String,
    pub previous_key_ids: Vec<String>,
    /// `done`, `running` or `pending`.
    pub state: String,
    /// Rows still sealed under a previous key.
    pub remaining: i64,
    pub remaining_by_table: BTreeMap<String, i64>,
    pub last_run: Option<RewrapRun>,
}
