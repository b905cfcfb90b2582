//! A minimal browser for the multi-step sign-in tests: keeps cookies, does not follow
//! redirects, and reads the hidden fields of the page it was shown.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::common::auth_query;
use crate::common::{Instance, hidden_field, query_param};
use tansu_shared::testing::http::SendOk;

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    /// `Set-Cookie` header values of the response.
    pub set_cookies: Vec<String>,
}

impl Page {
    pub fn field(&self, name: &str) -> Option<String> {
        hidden_field(&self.body, name)
    }

    pub fn code(&self) -> Option<String> {
        self.location
            .as_deref()
            .and_then(|l| query_param(l, "code"))
    }

    /// The text of the first `<tag class="class">…</tag>`.
    pub fn element(&self, open: &str, close: &str) -> Option<String> {
        let start = self.body.find(open)? + open.len();
        let end = start + self.body[start..].find(close)?;
        Some(self.body[start..end].to_owned())
    }

    /// The TOTP key shown on an enrolment page.
    pub fn totp_secret(&self) -> Option<String> {
        self.element("<code class=\"secret\">", "</code>")
    }

    /// The recovery codes shown after an enrolment.
    pub fn recovery_codes(&self) -> Vec<String> {
        let Some(list) = self.element("<ul class=\"recovery\">", "</ul>") else {
            return Vec::new();
        };
        list.split("<li><code>")
            .filter_map(|s| s.split("</code>").next())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .cloned()
    }
}

pub struct Browser {
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let mut set_cookies = Vec::new();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            if let Some((k, rest)) = v.split(';').next().unwrap().split_once('=') {
                if rest.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), rest.to_owned());
                }
            }
            set_cookies.push(v);
        }
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
            set_cookies,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let resp = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send_ok()
            .await;
        self.absorb(resp).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("x-forwarded-for", "192.0.2.44")
            .form(form)
            .send_ok()
            .await;
        self.absorb(resp).await
    }

    /// Submits the step form shown on `page` (csrf, request and step carried over).
    pub async fn submit(
        &mut self,
        id: &Instance,
        path: &str,
        page: &Page,
        extra: &[(&str, &str)],
    ) -> Page {
        let csrf = page.field("csrf").expect("csrf field");
        let request = page.field("request").unwrap_or_default();
        let step = page.field("step").unwrap_or_default();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("request", request.as_str()),
            ("step", step.as_str()),
        ];
        form.extend_from_slice(extra);
        self.post(&id.url(path), &form).await
    }

    /// Opens the authorization request and submits the password; returns the next page.
    pub async fn login(&mut self, id: &Instance, query: &str, email: &str, password: &str) -> Page {
        let page = self
            .get(&id.url(&format!("/connect/authorize?{query}")))
            .await;
        assert_eq!(page.status, 200, "expected the login page: {}", page.body);
        self.submit(
            id,
            "/login",
            &page,
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// Redeems the code of a final redirect; the token response.
pub async fn redeem(id: &Instance, client: &str, page: &Page, verifier: &str) -> serde_json::Value {
    let code = page
        .code()
        .unwrap_or_else(|| panic!("no code: {} {:?} {}", page.status, page.location, page.body));
    let resp = id
        .redeem(client, &code, "https://app.example/cb", Some(verifier))
        .await;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    v
}
