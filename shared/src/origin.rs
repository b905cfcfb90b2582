//! Web origins (RFC 6454) as browsers send them in `Origin`: `scheme://host[:port]`, the
//! scheme and host lowercase, no default port, nothing after. Tenants' and clients' allowed
//! origins are stored in exactly this form, so a request's `Origin` is allowed by plain string
//! equality.

/// The serialized origin of `s` when it is an `http` or `https` origin; `None` for anything
/// else (a path, a query, credentials, `null`, another scheme, a wildcard).
pub fn serialized(s: &str) -> Option<String> {
    if s.len() > 512 || s.contains('*') {
        return None;
    }
    let url = url::Url::parse(s).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

/// Whether `s` is already a serialized origin (what an allow-list entry must be).
pub fn is_serialized(s: &str) -> bool {
    serialized(s).is_some_and(|o| o == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        for ok in [
            "https://app.example",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
        ] {
            assert!(is_serialized(ok), "{ok}");
        }
        assert_eq!(
            serialized("HTTPS://App.Example:443/").as_deref(),
            Some("https://app.example")
        );
        for bad in [
            "null",
            "https://app.example/x",
            "https://app.example?x",
            "https://u:p@app.example",
            "ftp://app.example",
            "https://*.example",
            "*",
            "app.example",
            "",
        ] {
            assert_eq!(serialized(bad), None, "{bad}");
        }
        assert!(!is_serialized("https://App.example"));
        assert!(!is_serialized("https://app.example:443"));
        assert!(!is_serialized("https://app.example/"));
    }
}
