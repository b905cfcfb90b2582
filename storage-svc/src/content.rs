//! How browsers may handle an object's bytes: stored content never runs on the platform's
//! origin.
//!
//! Behind the gateway, objects are served from the same origin as identity's sign-in pages and
//! the dashboard. An uploaded HTML page, SVG image or script opened there would run with that
//! origin's cookies and storage — anyone allowed to upload could act as whoever opens the
//! link. So every object answer (token or presigned, GET or HEAD, whole or ranged, and 304s):
//!
//! - `X-Content-Type-Options: nosniff` — the browser never guesses a more active type than the
//!   stored one;
//! - `Content-Security-Policy: default-src 'none'; sandbox` — even a document that is shown
//!   gets an opaque origin (no cookies, no storage), runs no script and loads nothing;
//! - `Content-Disposition: attachment` unless the stored type is on the inline allow-list
//!   (`inline_content_types`: raster images and plain text by default), with the key's last
//!   segment as the file name (RFC 6266, with the exact name in RFC 5987 encoding).
//!
//! Active types (HTML, XHTML, SVG, any XML, scripts) may be listed for inline answers only
//! together with a `public_origin` of storage's own (see the crate README); the sandbox stays.

use axum::http::{HeaderMap, HeaderValue, header};

/// The policy of every object answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

/// Types shown inline unless configured otherwise: inert media a browser renders itself.
pub fn default_inline_types() -> Vec<String> {
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
        "text/plain",
    ]
    .map(String::from)
    .to_vec()
}

/// A media type's essence: `type/subtype`, lower case, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a type can carry script or markup that a browser runs as a document.
pub fn is_active(essence: &str) -> bool {
    let (ty, sub) = essence.split_once('/').unwrap_or((essence, ""));
    matches!(
        essence,
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/x-shockwave-flash"
            | "multipart/x-mixed-replace"
    ) || sub.ends_with("+xml")
        || sub.contains("javascript")
        || sub.contains("ecmascript")
        || sub.contains("html")
        || ty == "*"
}

/// `type/subtype` of RFC 9110 token characters, no wildcard, no parameters.
pub fn is_plain_media_type(s: &str) -> bool {
    let token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    s.split_once('/')
        .is_some_and(|(t, sub)| token(t) && token(sub))
}

/// Adds the headers above to an object answer. `content_type_sent` tells whether the stored
/// type is the answer's `Content-Type` (a type that is not a valid header value is not sent,
/// and then nothing is inline).
pub fn apply(
    h: &mut HeaderMap,
    content_type: &str,
    content_type_sent: bool,
    key: &str,
    inline_types: &[String],
) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    let ess = essence(content_type);
    let inline = content_type_sent && inline_types.iter().any(|t| t.eq_ignore_ascii_case(&ess));
    let value = disposition(if inline { "inline" } else { "attachment" }, key);
    match HeaderValue::from_str(&value) {
        Ok(v) => h.insert(header::CONTENT_DISPOSITION, v),
        // Unreachable (the value is ASCII without controls); never answer inline by accident.
        Err(_) => h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        ),
    };
}

/// `<kind>; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>`, the name
/// being the key's last non-empty segment.
pub fn disposition(kind: &str, key: &str) -> String {
    let name = key
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("download");
    // The fallback keeps only characters no parser misreads inside a quoted string.
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        // RFC 5987 attr-char.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_types_are_recognised() {
        for t in [
            "text/html",
            "application/xhtml+xml",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/rss+xml",
            "text/javascript",
            "application/javascript",
            "application/x-ecmascript",
            "*/*",
        ] {
            assert!(is_active(t), "{t}");
        }
        for t in default_inline_types()
            .iter()
            .map(String::as_str)
            .chain(["application/pdf", "application/json"])
        {
            assert!(!is_active(t), "{t}");
        }
        assert_eq!(essence(" Text/HTML ; charset=utf-8"), "text/html");
    }

    #[test]
    fn media_types_in_configuration() {
        assert!(is_plain_media_type("image/png"));
        assert!(is_plain_media_type("application/vnd.ms-excel"));
        for bad in [
            "image/*",
            "image",
            "image/png; q=1",
            "/png",
            "image/",
            "a b/c",
        ] {
            assert!(!is_plain_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn file_names_are_safe_in_both_forms() {
        assert_eq!(
            disposition("attachment", "a/b/report 1.pdf"),
            "attachment; filename=\"report 1.pdf\"; filename*=UTF-8''report%201.pdf"
        );
        assert_eq!(
            disposition("inline", "x/\"; evil=1\\.png"),
            "inline; filename=\"__ evil_1_.png\"; filename*=UTF-8''%22%3B%20evil%3D1%5C.png"
        );
        assert_eq!(
            disposition("attachment", "dir/"),
            "attachment; filename=\"dir\"; filename*=UTF-8''dir"
        );
        assert_eq!(
            disposition("attachment", "ключ"),
            "attachment; filename=\"____\"; filename*=UTF-8''%D0%BA%D0%BB%D1%8E%D1%87"
        );
    }

    #[test]
    fn only_listed_types_that_were_sent_are_inline() {
        let list = default_inline_types();
        let cd = |ct: &str, sent: bool| {
            let mut h = HeaderMap::new();
            apply(&mut h, ct, sent, "k", &list);
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
            h[header::CONTENT_DISPOSITION].to_str().unwrap().to_owned()
        };
        assert!(cd("image/PNG", true).starts_with("inline;"));
        assert!(cd("text/plain; charset=utf-8", true).starts_with("inline;"));
        assert!(cd("image/png", false).starts_with("attachment;"));
        for ct in [
            "text/html",
            "image/svg+xml",
            "application/pdf",
            "",
            "text/plain2",
        ] {
            assert!(cd(ct, true).starts_with("attachment;"), "{ct}");
        }
    }
}
