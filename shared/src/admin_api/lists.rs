//! The two list shapes: a cursor [`Page`] and a complete [`Items`] list.

use serde::{Deserialize, Serialize};

/// A page of a cursor-paged list: `{"items": […], "next_after": "…" | null}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page (`after=`); `None` on the last page.
    pub next_after: Option<String>,
}

/// A complete list: `{"items": […]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Items<T> {
    pub items: Vec<T>,
}
