//! The request scripts the issuer benchmark drives: client credentials, refresh rotation and a
//! browser password sign-in (form, cookie, code).

use super::*;
use crate::load::{Req, Script, Step};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::Full;
use std::sync::Arc;
use tansu_bench::identity_rig::PASSWORD;

pub(crate) fn form_request(host: &str, path: &str, body: String, extra: &[(&str, &str)]) -> Req {
    let mut b = Request::post(path)
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body)))
        .expect("a benchmark request is well-formed")
}

pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) const CC_BODY: &str = "grant_type=client_credentials&scope=db.read%20db.write";

/// `client_credentials` with `client_secret_basic`; 200 = success. Sent pre-encoded
/// ([`Script::encoded`]): the same bytes every time.
pub(crate) struct ClientCredentials {
    pub(crate) host: String,
    pub(crate) basic: String,
}

impl Script for ClientCredentials {
    fn start(&mut self) -> Req {
        form_request(
            &self.host,
            "/connect/token",
            CC_BODY.into(),
            &[("authorization", &self.basic)],
        )
    }

    fn encoded(&self) -> Option<Bytes> {
        Some(Bytes::from(format!(
            "POST /connect/token HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{CC_BODY}",
            self.host,
            self.basic,
            CC_BODY.len()
        )))
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        if status == StatusCode::OK && body.starts_with(b"{\"access_token\"") {
            Step::Done
        } else {
            Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}

/// One rotation of a refresh-token chain per operation; the new token is used next time.
pub(crate) struct Refresh {
    pub(crate) host: String,
    pub(crate) client_id: String,
    pub(crate) token: String,
    /// Where the chain's newest token goes back when the connection ends, for the next round.
    pub(crate) chains: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Refresh {
    fn drop(&mut self) {
        if let Ok(mut chains) = self.chains.lock() {
            chains.push(std::mem::take(&mut self.token));
        }
    }
}

impl Script for Refresh {
    fn start(&mut self) -> Req {
        form_request(
            &self.host,
            "/connect/token",
            format!(
                "grant_type=refresh_token&client_id={}&refresh_token={}",
                enc(&self.client_id),
                enc(&self.token)
            ),
            &[],
        )
    }

    fn response(&mut self, status: StatusCode, _: &HeaderMap, body: Bytes) -> Step {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        match parsed
            .as_ref()
            .and_then(|v| v.get("refresh_token"))
            .and_then(|t| t.as_str())
        {
            Some(t) if status == StatusCode::OK => {
                self.token = t.to_owned();
                Step::Done
            }
            _ => Step::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
        }
    }
}

/// A browser sign-in through the real login form: `GET /connect/authorize` (the login page,
/// its CSRF cookie and fields), then `POST /login` with the password → a redirect to the client with
/// a code. No session cookie is kept, so every operation is a full password login.
pub(crate) struct Login {
    pub(crate) host: String,
    pub(crate) authorize: String,
    pub(crate) email: String,
    pub(crate) csrf_cookie: Option<String>,
}

impl Script for Login {
    fn start(&mut self) -> Req {
        self.csrf_cookie = None;
        Request::get(self.authorize.as_str())
            .header(header::HOST, self.host.as_str())
            .body(Full::default())
            .expect("a benchmark request is well-formed")
    }

    fn response(&mut self, status: StatusCode, headers: &HeaderMap, body: Bytes) -> Step {
        match self.csrf_cookie.take() {
            None => {
                let html = String::from_utf8_lossy(&body);
                let (Some(cookie), Some(csrf), Some(request)) = (
                    cookie_pair(headers, "tansu_csrf"),
                    hidden_field(&html, "csrf"),
                    hidden_field(&html, "request"),
                ) else {
                    return Step::Failed(format!("login page: status {status}"));
                };
                let body = format!(
                    "csrf={}&request={}&email={}&password={}",
                    enc(&csrf),
                    enc(&request),
                    enc(&self.email),
                    enc(PASSWORD)
                );
                self.csrf_cookie = Some(cookie.clone());
                Step::Next(Box::new(form_request(
                    &self.host,
                    "/login",
                    body,
                    &[("cookie", &cookie)],
                )))
            }
            Some(_) => {
                let location = headers
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if status.is_redirection()
                    && location.starts_with(REDIRECT_URI)
                    && location.contains("code=")
                {
                    Step::Done
                } else {
                    Step::Failed(format!("login: status {status}, location {location:?}"))
                }
            }
        }
    }
}

/// `name=value` of a `Set-Cookie` header.
pub(crate) fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.split_once('=').is_some_and(|(n, _)| n == name))
        .map(str::to_owned)
}

/// The value of `<input type="hidden" name="{name}" value="…">`, HTML-unescaped.
pub(crate) fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}
