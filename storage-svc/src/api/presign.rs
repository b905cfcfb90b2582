//! Minting presigned URLs (verifying them is [`super::access`]'s).

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tansu_shared::Problem;
use tansu_shared::auth::{AuthError, Tenant};

use super::{ApiResult, P, auth, read_json, rfc3339, valid_bucket, valid_key};
use crate::AppState;
use crate::presign;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PresignRequest {
    key: String,
    /// `GET`, `PUT` or `DELETE`.
    method: String,
    /// Seconds (bounded by the service's `max_presign_secs`).
    expires_in: Option<u64>,
}

/// Percent-encodes a key for a URL path, keeping '/' separators.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) async fn presign_url(
    State(st): State<AppState>,
    tenant: Tenant,
    P(bucket): P<String>,
    body: Body,
) -> ApiResult<Response> {
    valid_bucket(&bucket)?;
    let req: PresignRequest = read_json(body).await?;
    valid_key(&req.key)?;
    let method = req.method.to_ascii_uppercase();
    let scope = match method.as_str() {
        "GET" | "HEAD" => "storage.read",
        "PUT" | "DELETE" => "storage.write",
        _ => return Err(Problem::bad_request("method must be GET, PUT or DELETE")),
    };
    // Minting needs the scope the URL grants.
    if !tenant.principal.has_scope(scope) {
        return Err(auth(AuthError::InsufficientScope(scope.to_owned())));
    }
    let method = if method == "HEAD" {
        "GET".into()
    } else {
        method
    };
    let expires_in = req.expires_in.unwrap_or(900);
    if expires_in == 0 || expires_in > st.config.max_presign_secs {
        return Err(Problem::bad_request(format!(
            "expires_in must be between 1 and {} seconds",
            st.config.max_presign_secs
        )));
    }
    st.store.get_bucket(tenant.id, &bucket).await?;
    let expires = crate::store::now_ms() / 1000 + expires_in as i64;
    let secret = st.presign_keys.key(&st.store, tenant.id).await?;
    let sig = presign::sign(&secret, &method, tenant.id, &bucket, &req.key, expires);
    let path = format!(
        "/api/buckets/{bucket}/objects/{}?{}={}&{}={method}&{}={expires}&{}={sig}",
        encode_key(&req.key),
        presign::Q_TENANT,
        tenant.id,
        presign::Q_METHOD,
        presign::Q_EXPIRES,
        presign::Q_SIGNATURE,
    );
    // Storage on an origin of its own: the URL points there, not at the platform's origin.
    let base = if st.config.public_origin.is_empty() {
        &st.config.public_prefix
    } else {
        &st.config.public_origin
    };
    Ok(axum::Json(serde_json::json!({
        "method": method,
        "url": format!("{}{path}", base.trim_end_matches('/')),
        "path": path,
        "expires_at": rfc3339(expires * 1000),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_encoded_keeping_separators() {
        assert_eq!(encode_key("a b/ü?.txt"), "a%20b/%C3%BC%3F.txt");
    }
}
