//! A tenant's own wording of the messages its users get by mail.

use serde::{Deserialize, Serialize};

/// A message kind's template as the tenant's users get it (the items of
/// `GET /admin/tenants/{tid}/mail-templates`, and the answer to setting one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailTemplate {
    pub kind: String,
    pub subject: String,
    pub body: String,
    /// The tenant's own (else the built-in one).
    pub custom: bool,
}

/// `PUT /admin/tenants/{tid}/mail-templates/{kind}`; the body must contain `{{link}}` where
/// the message carries one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MailTemplateBody {
    pub subject: String,
    pub body: String,
}
