//! Request helpers for the end-to-end suites: a transport error always fails the test, so a
//! request reads as one call.

use std::future::Future;

use reqwest::{RequestBuilder, Response};

/// `send().await.unwrap()` and its JSON variant, for a [`RequestBuilder`].
pub trait SendOk {
    /// Sends the request; a transport error panics.
    fn send_ok(self) -> impl Future<Output = Response> + Send;
    /// Sends the request and parses the answer as JSON (status not checked).
    fn send_json(self) -> impl Future<Output = serde_json::Value> + Send;
    /// Sends the request and reads the answer as text (status not checked).
    fn send_text(self) -> impl Future<Output = String> + Send;
}

impl SendOk for RequestBuilder {
    async fn send_ok(self) -> Response {
        self.send().await.expect("request sent")
    }

    async fn send_json(self) -> serde_json::Value {
        self.send_ok().await.json().await.expect("a JSON answer")
    }

    async fn send_text(self) -> String {
        self.send_ok().await.text().await.expect("a text answer")
    }
}

/// `name=value` of a `Set-Cookie` header with that cookie name.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of `<input … name="{name}" value="…">` in a page, HTML-unescaped.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(
        html[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `(method, path)` pairs a service routes, found by asking it: each of `paths` (with
/// `{placeholders}` filled with `x`) is sent with every method anonymously; anything but 405
/// means the method is routed there. With [`crate::routes::Routes::paths`] this enumerates a
/// service's routes from its router, for the authorization matrix tests.
pub async fn routed_methods(
    base_url: &str,
    paths: &[&'static str],
) -> std::collections::BTreeSet<(String, String)> {
    use reqwest::Method;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let mut out = std::collections::BTreeSet::new();
    for path in paths {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let resp = http
                .request(
                    method.clone(),
                    format!("{}{concrete}", base_url.trim_end_matches('/')),
                )
                .send_ok()
                .await;
            if resp.status() != reqwest::StatusCode::METHOD_NOT_ALLOWED {
                out.insert((method.to_string(), (*path).to_owned()));
            }
        }
    }
    out
}
