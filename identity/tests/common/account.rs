//! A browser for the account pages (its cookies kept, CSRF fields read from each page), a
//! signed-in user with a refresh token, and aiosmtpd as a real SMTP server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

/// One browser: the session and CSRF cookies it holds.
pub struct Browser<'a> {
    pub inst: &'a Instance,
    pub http: reqwest::Client,
    pub session: Option<String>,
    pub csrf: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(inst: &'a Instance, session: Option<String>) -> Self {
        Self {
            inst,
            http: no_redirects(),
            session,
            csrf: None,
        }
    }

    fn cookies(&self) -> String {
        [self.session.clone(), self.csrf.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        if let Some(c) = set_cookie(resp, "tansu_csrf") {
            self.csrf = Some(c);
        }
        if let Some(c) = set_cookie(resp, "tansu_session") {
            self.session = Some(c).filter(|c| c != "tansu_session=");
        }
    }

    /// `GET path`: (status, body).
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(self.inst.url(path))
            .header("cookie", self.cookies())
            .send_ok()
            .await;
        self.keep(&resp);
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// Opens `page`, then submits its form to `action` with the page's CSRF field and `fields`.
    pub async fn submit(
        &mut self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let (status, html) = self.get(page).await;
        assert_eq!(status, 200, "{page}: {html}");
        let csrf = hidden_field(&html, "csrf").expect("a CSRF field");
        self.post(action, &csrf, fields).await
    }

    /// `POST action` with `csrf` and `fields`.
    pub async fn post(
        &mut self,
        action: &str,
        csrf: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        let resp = self
            .http
            .post(self.inst.url(action))
            .header("cookie", self.cookies())
            .form(&form)
            .send_ok()
            .await;
        self.keep(&resp);
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

/// A user signed in through the login form: the browser's session cookie and the tokens the
/// code was redeemed for (with a refresh token: `tenant-app` asks `offline_access`).
pub struct SignedIn {
    pub session: String,
    pub tokens: serde_json::Value,
}

impl SignedIn {
    pub fn refresh_token(&self) -> &str {
        self.tokens["refresh_token"].as_str().unwrap()
    }
}

/// Signs `email` in to `tenant` at `tenant-app` (registered by the caller).
pub async fn sign_in_with_refresh(
    inst: &Instance,
    email: &str,
    password: &str,
    tenant: &str,
) -> SignedIn {
    let (query, verifier) = auth_query("tenant-app", "openid offline_access", Some(tenant));
    let signed = inst.sign_in(&query, email, password).await;
    let code = query_param(&signed.location, "code")
        .unwrap_or_else(|| panic!("{email} signs in, not: {}", signed.location));
    let resp = inst
        .redeem(
            "tenant-app",
            &code,
            "https://app.example/cb",
            Some(&verifier),
        )
        .await;
    assert_eq!(resp.status(), 200);
    SignedIn {
        session: signed.session_cookie.expect("a session cookie"),
        tokens: resp.json().await.unwrap(),
    }
}

/// The status and `error` of a refresh at the token endpoint; on success the signed-in user
/// keeps the rotated refresh token.
pub async fn refresh(inst: &Instance, s: &mut SignedIn) -> (u16, String) {
    let resp = inst.refresh("tenant-app", s.refresh_token()).await;
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == 200 {
        s.tokens = v;
        return (status, String::new());
    }
    (status, v["error"].as_str().unwrap_or("").to_owned())
}

/// The `.eml` files of a directory, oldest first, as text (quoted-printable soft breaks and
/// `=3D` undone, so links read whole).
pub fn mails(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=")
        })
        .collect()
}

/// The first link under the issuer in a message.
pub fn link_in(mail: &str, issuer: &str) -> String {
    let start = mail
        .find(issuer)
        .unwrap_or_else(|| panic!("no link in: {mail}"));
    mail[start..].split_whitespace().next().unwrap().to_owned()
}

/// Waits for the `n`-th message in `dir` (within 20 s).
pub async fn nth_mail(dir: &Path, n: usize) -> String {
    eventually(Duration::from_secs(20), &format!("mail #{n}"), || async {
        mails(dir).into_iter().nth(n - 1)
    })
    .await
}

/// The path and query of a URL (what the test client's `url` takes).
pub fn path_of(link: &str) -> String {
    let u = url::Url::parse(link).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

/// aiosmtpd (PyPI), started on a port: each message it accepts becomes a `.eml` file in
/// `dir`. Stopped on drop.
pub struct SmtpServer {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
}

const SMTP_SERVER: &str = r#"
import os, sys, time
from aiosmtpd.controller import Controller
class Keep:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(sys.argv[2], "%020d" % time.time_ns())
        with open(name + ".part", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(name + ".part", name + ".eml")
        return "250 OK"
c = Controller(Keep(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

impl SmtpServer {
    /// Whether aiosmtpd is installed (else the caller skips, or fails under
    /// `TANSU_REQUIRE_ALL=1`).
    pub fn available() -> bool {
        std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts the server on `port` and waits until it listens.
    pub async fn start(port: u16) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .arg(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout).read_line(&mut line).ok();
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("aiosmtpd starts within 20 s")
            .unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Self { child, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (just now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Identity's mail to the SMTP server on `port` (plain, loopback), retried quickly.
pub fn smtp_to(port: u16) -> impl FnOnce(&mut tansu_identity::Config) {
    move |c| {
        c.mail.transport = "smtp".into();
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.smtp_tls = "none".into();
        c.mail.smtp_timeout_ms = 2000;
        c.mail.retry_base_ms = 200;
        c.mail.retry_max_ms = 1000;
        c.mail.poll_ms = 100;
    }
}
