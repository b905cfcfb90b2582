//! Activity counts for the dashboard's overview.

use serde::{Deserialize, Serialize};

/// Sign-ins, failed sign-ins and tokens issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    pub sign_ins: i64,
    pub failures: i64,
    pub tokens: i64,
}

/// One hour of [`Activity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityBucket {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// `GET /admin/stats/activity`: counts per hour of the last `hours` hours, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    pub hours: i64,
    /// The tenant counted; `None`: every tenant (platform administrators).
    pub tenant: Option<String>,
    pub buckets: Vec<ActivityBucket>,
    pub totals: Counts,
}
