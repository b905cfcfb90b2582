//! What every page of the browser flows shares: the HTML shell and escaping, the session and
//! CSRF cookies (scoped to the issuer's path, `Secure` when the issuer is https) and the CSRF
//! double submit (a SameSite=Strict cookie compared in constant time with the form's field).

use crate::AppState;
use crate::crypto;
use crate::oauth::params::{MAX_BODY_BYTES, Params};
use crate::web::authorize::AuthorizeError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "tansu_session";

pub const CSRF_COOKIE: &str = "tansu_csrf";

pub(crate) fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn cookie_path(state: &AppState) -> String {
    url::Url::parse(&state.config.issuer)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".into())
}

pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    same_site: &str,
    max_age: u64,
) -> Option<HeaderValue> {
    let secure = if state.config.issuer.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}",
        cookie_path(state)
    ))
    .ok()
}

/// Reads a submitted HTML form and checks its CSRF token: the form, or the error page
/// (413 too large, 400 malformed, 403 with `expired` when the token does not match).
#[allow(clippy::result_large_err)] // the error is the page the handler answers with
pub(crate) async fn read_csrf_form(
    headers: &HeaderMap,
    body: Body,
    expired: &'static str,
) -> Result<Params, Response> {
    let page = |status, message| Err(AuthorizeError::Page(status, message).into_response());
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let Ok(form) = Params::parse(&bytes) else {
        return page(StatusCode::BAD_REQUEST, "The form is malformed.");
    };
    if !csrf_matches(headers, &form) {
        return page(StatusCode::FORBIDDEN, expired);
    }
    Ok(form)
}

/// The 403 text of an expired or foreign form.
pub(crate) const FORM_EXPIRED: &str = "The form expired or was not sent from this site.";

/// [`FORM_EXPIRED`] on the sign-in pages.
pub(crate) const SIGN_IN_FORM_EXPIRED: &str =
    "The form expired or was not sent from this site. Go back and sign in again.";

/// The one stylesheet of every page (the dashboard's look), inlined: no request of its own,
/// nothing from another origin.
const STYLE: &str = include_str!("style.css");

/// A tenant's look on its pages: the name in the header, a logo, the primary colour.
#[derive(Debug, Clone, Default)]
pub struct Brand {
    pub name: String,
    /// An https URL (checked when the tenant's policy is saved).
    pub logo_url: Option<String>,
    /// `#rrggbb` (checked when the tenant's policy is saved).
    pub primary_colour: Option<String>,
}

impl Brand {
    /// The brand of a tenant (its display name, else its name).
    pub fn of(tenant: &crate::store::tenants::TenantRow) -> Self {
        let policy = crate::tenants::policy_of(tenant);
        Self {
            name: policy
                .display_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| tenant.name.clone()),
            logo_url: policy.logo_url.filter(|u| u.starts_with("https://")),
            primary_colour: policy
                .primary_colour
                .filter(|c| crate::tenants::valid_colour(c)),
        }
    }
}

/// Black or white, whichever reads better on `colour` (`#rrggbb`; WCAG relative luminance).
fn text_on(colour: &str) -> &'static str {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&colour[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with white (1.05 / (l + .05)) against with black ((l + .05) / .05).
    if 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 {
        "#fff"
    } else {
        "#111"
    }
}

pub(crate) fn page(title: &str, body: &str) -> String {
    branded_page(title, body, None)
}

/// [`page`] in a tenant's look.
pub(crate) fn branded_page(title: &str, body: &str, brand: Option<&Brand>) -> String {
    let name = brand.map(|b| b.name.as_str()).unwrap_or("Tansu");
    let colour = brand
        .and_then(|b| b.primary_colour.as_deref())
        .filter(|c| crate::tenants::valid_colour(c))
        .map(|c| format!(":root{{--brand:{c};--brand-text:{}}}", text_on(c)))
        .unwrap_or_default();
    let logo = brand
        .and_then(|b| b.logo_url.as_deref())
        .map(|u| format!("<img src=\"{}\" alt=\"\">", escape(u)))
        .unwrap_or_default();
    let wide = if body.contains("<table") {
        " class=\"wide\""
    } else {
        ""
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {name}</title><style>{STYLE}{colour}</style></head><body>\
         <header class=\"top\">{logo}<span class=\"brand\">{name}</span></header>\
         <main{wide}>{body}</main></body></html>",
        title = escape(title),
        name = escape(name),
    )
}

pub(crate) fn html(status: StatusCode, content: &str) -> Response {
    let mut r = (status, content.to_owned()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// HTML text and attribute escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }

    out
}

/// The CSRF token of this browser (from its cookie) or a new one with the cookie to set.
pub(crate) fn csrf_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<(String, Option<HeaderValue>)> {
    let existing = cookie_value(headers, CSRF_COOKIE).filter(|c| {
        c.len() == 43
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match existing {
        Some(c) => Some((c.to_owned(), None)),
        None => {
            let c = crypto::random_secret().ok()?;
            let cookie = set_cookie(state, CSRF_COOKIE, &c, "Strict", 3600);
            Some((c, cookie))
        }
    }
}

pub(crate) fn csrf_matches(headers: &HeaderMap, form: &Params) -> bool {
    match (cookie_value(headers, CSRF_COOKIE), form.get("csrf")) {
        (Some(c), Some(f)) => c.len() == f.len() && bool::from(c.as_bytes().ct_eq(f.as_bytes())),
        _ => false,
    }
}

pub(crate) const UNAVAILABLE: &str = "Sign-in is unavailable right now; retry later.";

pub(crate) fn unavailable(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "sign-in step failed");
    AuthorizeError::Page(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE).into_response()
}

/// A two-step verification page of the account, in the tenant's look.
pub(crate) fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    brand: Option<&Brand>,
    content: impl FnOnce(&str) -> String,
) -> Response {
    let title = ("Two-step verification", brand);
    branded_account_page(state, headers, status, title, content)
}

/// A page of the browser flows with forms: `content` gets this browser's CSRF token (the
/// cookie is set when it is new).
pub(crate) fn account_page_titled(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    title: &str,
    content: impl FnOnce(&str) -> String,
) -> Response {
    branded_account_page(state, headers, status, (title, None), content)
}

/// [`account_page_titled`] in a tenant's look.
pub(crate) fn branded_account_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    (title, brand): (&str, Option<&Brand>),
    content: impl FnOnce(&str) -> String,
) -> Response {
    let Some((csrf, cookie)) = csrf_token(state, headers) else {
        return unavailable(&"no CSRF token");
    };
    let mut response = html(status, &branded_page(title, &content(&csrf), brand));
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

pub(crate) fn not_signed_in() -> Response {
    AuthorizeError::Page(
        StatusCode::UNAUTHORIZED,
        "Sign in first, then open this page again.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_on_a_brand_colour_is_whichever_contrasts_more() {
        assert_eq!(text_on("#ffffff"), "#111");
        assert_eq!(text_on("#000000"), "#fff");
        assert_eq!(text_on("#7a1f5c"), "#fff");
        assert_eq!(text_on("#ffd400"), "#111");
        let page = branded_page(
            "T",
            "<p>x</p>",
            Some(&Brand {
                name: "A <b>".into(),
                logo_url: Some("https://x.example/l.png\"".into()),
                primary_colour: Some("red;}".into()),
            }),
        );
        assert!(page.contains("A &lt;b&gt;") && page.contains("l.png&quot;"));
        assert!(
            !page.contains("red;}"),
            "an invalid colour reaches no stylesheet"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
