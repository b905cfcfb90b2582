//! The hash-chained security-event log: events, chain checks, ingest from services.

use serde::{Deserialize, Serialize};

/// A security event (the items of `GET /admin/security-events`, one line of its NDJSON export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: String,
    pub time: String,
    /// `None`: the platform's own chain.
    pub tenant_id: Option<String>,
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: String,
    pub ip: String,
    pub user_agent: String,
    pub outcome: String,
    pub details: serde_json::Value,
    pub trace_id: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The first event whose link in the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokenLink {
    pub id: String,
    pub seq: i64,
    pub reason: String,
}

/// A chain verification's result (`GET /admin/security-events/verify`, a finished job's
/// `result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChainCheck {
    pub ok: bool,
    /// Events checked.
    pub checked: i64,
    pub first_broken: Option<BrokenLink>,
    /// The sequence number the checked part of the chain follows (absent when broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_after_seq: Option<i64>,
}

/// A chain verification job (`POST /admin/security-events/verifications` (202) and
/// `GET /admin/security-events/verifications/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    pub id: String,
    /// The tenant id, or `platform`.
    pub tenant: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub checked: i64,
    /// The chain's events when the job started (never less than `checked`).
    pub total: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The result once `done`.
    pub result: Option<ChainCheck>,
    /// Why it `failed`.
    pub error: Option<String>,
}

/// The answer to `POST /admin/security-events/ingest` (202): how many events were appended and
/// how many were already in the log (same id: a retried delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ingested {
    pub accepted: usize,
    pub duplicates: usize,
}
