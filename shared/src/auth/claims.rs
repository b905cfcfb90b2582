use serde::{Deserialize, Serialize};

/// The claims of an RFC 9068 access token as Tansu issues them (DESIGN.md §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    /// Space-separated scopes (RFC 9068 §2.2.3).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The tenant the token was issued for; absent on platform-level service tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The party acting for `sub` (RFC 8693 §4.1): the service that exchanged the subject's
    /// token for this one. Absent when the subject acts itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The key the token is bound to (RFC 9449 §6.1): presented only with a DPoP proof
    /// signed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// A confirmation claim (RFC 7800) naming a DPoP key by its RFC 7638 thumbprint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

/// An actor (RFC 8693 §4.1): who acts, and (nested) for whom that actor was acting in turn.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Act {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

impl AsRef<AccessClaims> for AccessClaims {
    fn as_ref(&self) -> &AccessClaims {
        self
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}
