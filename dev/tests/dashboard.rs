//! The admin dashboard through the TLS gateway, signed in as the dev platform admin through
//! identity (code + PKCE, confidential client): every page, key rotation, client creation and
//! secret rotation, CSRF refusal on every form, sign-in redirects, RP-initiated sign-out.
//!
//! The form flow is driven at the HTTP level (reqwest with a small cookie jar); Chromium
//! (headless, through the gateway) renders the pages for screenshots, which are written to
//! `$CARGO_TARGET_DIR/dashboard-screenshots/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use tansu_dev::{Stack, StackOptions};

const PASSWORD: &str = "dashboard-test-password-1";

/// Every page: (service-relative path, a text the page must show).
const PAGES: &[(&str, &str)] = &[
    ("", "Service health"),
    ("keys", "Signing keys"),
    ("clients", "Create a client"),
    ("tenants", "Coming with issue 4"),
    ("users", "Coming with issue 4"),
    ("admin/providers", "Coming with issue 4"),
    ("admin/security-events", "Coming with issue 4"),
    ("settings", "Coming with issue 4"),
    ("secrets", "Coming with issue 4"),
];

/// Every form action (POST).
const FORMS: &[&str] = &[
    "logout",
    "keys/rotate",
    "clients",
    "clients/tansu-dashboard/secret",
];

struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Browser {
    fn new(pem: &str) -> Self {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            http,
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.jar.is_empty() {
            req
        } else {
            req.header(COOKIE, self.cookie_header())
        };
        let resp = req.send().await.unwrap();
        for c in resp.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                self.jar.remove(k.trim());
            } else {
                self.jar.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = resp.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the hidden input `name` in an HTML page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    unescape(&html[start..end])
}

fn config_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("tansu.toml");
    std::fs::write(
        &path,
        format!("[identity]\ndev_admin_password = \"{PASSWORD}\"\n"),
    )
    .unwrap();
    path
}

async fn started(dir: &std::path::Path) -> Stack {
    let mut opts = StackOptions::for_tests(&dir.join("data"));
    opts.config_file = Some(config_file(dir));
    let mut stack = Stack::start(opts).await.unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    stack
}

/// Signs in through identity's login form; returns the dashboard page landed on.
async fn sign_in(b: &mut Browser, base: &str, start: &str) -> Page {
    let r = b.get(&format!("{base}{start}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{start}: {}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}login")),
        "{start} → {}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login: {}", r.body);
    assert!(
        r.location.contains("/identity/connect/authorize?"),
        "{}",
        r.location
    );
    assert!(
        r.location.contains("code_challenge_method=S256"),
        "{}",
        r.location
    );
    let mut r = b.get(&r.location).await;
    // The authorize endpoint shows the login form (possibly after a redirect).
    for _ in 0..3 {
        if r.status != StatusCode::SEE_OTHER {
            break;
        }
        r = b.get(&r.location.clone()).await;
    }
    assert_eq!(r.status, StatusCode::OK, "authorize: {}", r.body);
    let csrf = hidden(&r.body, "csrf");
    let request = hidden(&r.body, "request");
    let issuer = base.replace("/dashboard/", "/identity/");
    let r = b
        .post(
            &format!("{issuer}login"),
            &[
                ("csrf", &csrf),
                ("request", &request),
                ("email", "admin@tansu.local"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login POST: {}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}callback?")),
        "{}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "callback: {}", r.body);
    assert!(b.jar.contains_key("tansu_dashboard_session"));
    let r = b.get(&r.location.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn admin_signs_in_uses_every_page_and_forms_need_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let stack = started(dir.path()).await;
    let base = format!("https://{}/dashboard/", stack.gateway);
    let mut b = Browser::new(&stack.certificate_pem);

    // Signed out: every page redirects to sign-in, every form is refused.
    for (path, _) in PAGES {
        let r = b.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "/{path}");
        assert!(
            r.location.starts_with(&format!("{base}login?return_to=")),
            "/{path} → {}",
            r.location
        );
    }
    for action in FORMS {
        let r = b
            .post(
                &format!("{base}{action}"),
                &[("csrf", "x"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST /{action} signed out");
    }

    // Sign in (returning to the page asked for).
    let landed = sign_in(&mut b, &base, "keys").await;
    assert!(landed.body.contains("Rotate now"), "{}", landed.body);
    let session_cookie = b.jar.get("tansu_dashboard_session").cloned().unwrap();

    // Every page renders for the platform admin.
    let mut csrf = String::new();
    for (path, text) in PAGES {
        let r = b.get(&format!("{base}{path}")).await;
        assert_eq!(r.status, StatusCode::OK, "/{path}: {}", r.body);
        assert!(r.body.contains(text), "/{path} lacks {text:?}: {}", r.body);
        assert!(r.body.contains("admin@tansu.local"), "/{path}");
        csrf = hidden(&r.body, "csrf");
    }
    let overview = b.get(&base).await;
    assert!(overview.body.contains("identity"), "{}", overview.body);

    // Every form refuses a missing or wrong CSRF token, signed in.
    for action in FORMS {
        let r = b
            .post(&format!("{base}{action}"), &[("confirm", "yes")])
            .await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "POST /{action} without csrf"
        );
        let r = b
            .post(
                &format!("{base}{action}"),
                &[("csrf", "wrong"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST /{action} wrong csrf");
    }

    // Rotate the signing keys: confirmation, then the rotation.
    let keys_before = b
        .get(&format!("{base}keys"))
        .await
        .body
        .matches("<tr>")
        .count();
    let r = b.get(&format!("{base}keys/rotate")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Rotate the signing keys now?"));
    let r = b
        .post(
            &format!("{base}keys/rotate"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Rotation scheduled"), "{}", r.body);
    let keys_after = b
        .get(&format!("{base}keys"))
        .await
        .body
        .matches("<tr>")
        .count();
    assert!(keys_after > keys_before, "{keys_before} → {keys_after}");

    // Create a confidential client: its secret is shown once; rotate it.
    let r = b
        .post(
            &format!("{base}clients"),
            &[
                ("csrf", &csrf),
                ("name", "Nightly export"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
                ("scopes", "db.read"),
                ("redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("client-secret"), "{}", r.body);
    let r = b.get(&format!("{base}clients")).await;
    assert!(r.body.contains("Nightly export"));
    let r = b
        .post(
            &format!("{base}clients/tansu-dashboard/secret"),
            &[("csrf", &csrf)],
        )
        .await;
    // Without the confirmation the rotation does not happen.
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // An invalid client form is answered with the page and a message, not an error.
    let r = b
        .post(&format!("{base}clients"), &[("csrf", &csrf), ("name", "")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // The same in a real browser, with screenshots.
    in_chromium(&stack).await;

    // Sign out: RP-initiated logout at identity, back to the dashboard's signed-out page.
    let r = b.post(&format!("{base}logout"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location.contains("/identity/connect/endsession?"),
        "{}",
        r.location
    );
    assert!(r.location.contains("id_token_hint="));
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location.starts_with(&format!("{base}signed-out")),
        "{}",
        r.location
    );
    let r = b.get(&r.location).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = b.get(&base).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "signed out again");
    // The old session id is dead.
    let mut other = Browser::new(&stack.certificate_pem);
    other
        .jar
        .insert("tansu_dashboard_session".into(), session_cookie);
    let r = other.get(&base).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    stack.shutdown().await.unwrap();
}

/// Chromium (headless, CDP) signs in through identity's login form, visits every page (a
/// screenshot each, plus the overview at phone width), rotates a key and signs out.
async fn in_chromium(stack: &Stack) {
    let Some(path) = tansu_shared::testing::chromium("dashboard_in_chromium") else {
        return;
    };
    let out = screenshot_dir();
    let base = format!("https://{}/dashboard/", stack.gateway);
    let issuer = stack.issuer.clone();
    let mut c = Chromium::start(&path).await;
    let tab = c.tab().await;
    c.cdp
        .call(Some(&tab), "Page.enable", serde_json::json!({}))
        .await;

    // Signed out: the dashboard sends the browser to identity's sign-in form.
    c.cdp
        .call(
            Some(&tab),
            "Page.navigate",
            serde_json::json!({ "url": base }),
        )
        .await;
    c.wait_for(&tab, &format!("{issuer}connect/authorize"))
        .await;
    c.screenshot(&tab, &out.join("sign-in.png")).await;
    let submitted = c
        .eval(
            &tab,
            &format!(
                "document.querySelector('input[name=email]').value='admin@tansu.local';\
                 document.querySelector('input[name=password]').value='{PASSWORD}';\
                 document.querySelector('form').submit(); true"
            ),
        )
        .await;
    assert_eq!(submitted, serde_json::json!(true));
    c.wait_for(&tab, &base).await;
    c.wait_text(&tab, "Service health").await;

    for (path, text) in PAGES {
        let url = format!("{base}{path}");
        c.goto(&tab, &url).await;
        c.wait_text(&tab, text).await;
        let name = if path.is_empty() {
            "overview".to_owned()
        } else {
            path.replace('/', "-")
        };
        c.screenshot(&tab, &out.join(format!("{name}.png"))).await;
    }

    // Rotate a key: the link, the confirmation, the result.
    c.goto(&tab, &format!("{base}keys")).await;
    c.eval(&tab, "document.getElementById('rotate-now').click(); true")
        .await;
    c.wait_text(&tab, "Rotate the signing keys now?").await;
    c.screenshot(&tab, &out.join("keys-rotate-confirm.png"))
        .await;
    c.eval(&tab, "document.getElementById('confirm').click(); true")
        .await;
    c.wait_text(&tab, "Rotation scheduled").await;
    c.screenshot(&tab, &out.join("keys-rotated.png")).await;

    // The layout at phone width.
    c.cdp
        .call(
            Some(&tab),
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({ "width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true }),
        )
        .await;
    c.goto(&tab, &format!("{base}clients")).await;
    c.wait_text(&tab, "Create a client").await;
    let overflow = c
        .eval(
            &tab,
            "document.documentElement.scrollWidth <= window.innerWidth + 1",
        )
        .await;
    c.screenshot(&tab, &out.join("clients-phone.png")).await;
    assert_eq!(
        overflow,
        serde_json::json!(true),
        "no horizontal page scroll at phone width"
    );

    // Sign out through the button: RP-initiated logout, back on the signed-out page.
    c.eval(
        &tab,
        "document.querySelector('form[action$=\"logout\"] button').click(); true",
    )
    .await;
    c.wait_for(&tab, &format!("{base}signed-out")).await;
    c.wait_text(&tab, "signed out").await;
    c.screenshot(&tab, &out.join("signed-out.png")).await;
    c.stop().await;
}

/// A minimal Chrome DevTools Protocol client over the browser's WebSocket (text frames only),
/// enough to set a cookie, navigate, read the DOM and capture screenshots.
mod cdp {
    use std::time::Duration;

    use base64::Engine;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    pub struct Cdp {
        stream: BufReader<TcpStream>,
        next: u64,
    }

    const STEP: Duration = Duration::from_secs(20);

    impl Cdp {
        pub async fn connect(ws_url: &str) -> Cdp {
            let rest = ws_url.strip_prefix("ws://").unwrap();
            let (host, path) = rest.split_once('/').unwrap();
            assert!(host.starts_with("127.0.0.1:"), "{host}");
            let mut stream = tokio::time::timeout(STEP, TcpStream::connect(host))
                .await
                .unwrap()
                .unwrap();
            let key = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
            let req = format!(
                "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut stream = BufReader::new(stream);
            // Read the 101 response head.
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let b = tokio::time::timeout(STEP, stream.read_u8())
                    .await
                    .unwrap()
                    .unwrap();
                head.push(b);
            }
            let head = String::from_utf8_lossy(&head);
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            Cdp { stream, next: 1 }
        }

        async fn send_frame(&mut self, text: &str) {
            let payload = text.as_bytes();
            let mut frame = vec![0x81u8];
            let mask = [0x12u8, 0x34, 0x56, 0x78];
            match payload.len() {
                n if n < 126 => frame.push(0x80 | n as u8),
                n if n < 65536 => {
                    frame.push(0x80 | 126);
                    frame.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    frame.push(0x80 | 127);
                    frame.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            frame.extend_from_slice(&mask);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            self.stream.get_mut().write_all(&frame).await.unwrap();
        }

        async fn read_message(&mut self) -> Value {
            let mut message = Vec::new();
            loop {
                let b0 = self.stream.read_u8().await.unwrap();
                let b1 = self.stream.read_u8().await.unwrap();
                let len = match b1 & 0x7f {
                    126 => u64::from(self.stream.read_u16().await.unwrap()),
                    127 => self.stream.read_u64().await.unwrap(),
                    n => u64::from(n),
                };
                let mut buf = vec![0u8; usize::try_from(len).unwrap()];
                self.stream.read_exact(&mut buf).await.unwrap();
                let opcode = b0 & 0x0f;
                if opcode == 0x9 || opcode == 0xA {
                    continue; // ping/pong: ignore
                }
                assert_ne!(opcode, 0x8, "DevTools closed the connection");
                message.extend_from_slice(&buf);
                if b0 & 0x80 != 0 {
                    return serde_json::from_slice(&message).unwrap();
                }
            }
        }

        /// Asks the browser to close (all its processes); the connection ends without an answer.
        pub async fn close_browser(&mut self) {
            let id = self.next;
            self.send_frame(&json!({ "id": id, "method": "Browser.close" }).to_string())
                .await;
        }

        /// Sends a command (to a page session if given) and waits for its result.
        pub async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
            let id = self.next;
            self.next += 1;
            let mut msg = json!({ "id": id, "method": method, "params": params });
            if let Some(s) = session {
                msg["sessionId"] = json!(s);
            }
            self.send_frame(&msg.to_string()).await;
            tokio::time::timeout(STEP, async {
                loop {
                    let m = self.read_message().await;
                    if m.get("id").and_then(Value::as_u64) == Some(id) {
                        assert!(m.get("error").is_none(), "{method}: {m}");
                        return m["result"].clone();
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("{method} answered within {STEP:?}"))
        }
    }
}

/// Headless Chromium with remote debugging on an ephemeral port: killed on drop.
struct Chromium {
    child: tokio::process::Child,
    cdp: cdp::Cdp,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn start(path: &std::path::Path) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new(path)
            .args(tansu_shared::testing::CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--ignore-certificate-errors")
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("--remote-debugging-port=0")
            .arg("--window-size=1280,900")
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Chromium writes its port and browser WebSocket path to DevToolsActivePort.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&file)
                && t.lines().count() >= 2
            {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromium did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut lines = text.lines();
        let port = lines.next().unwrap().trim().to_owned();
        let path = lines.next().unwrap().trim().to_owned();
        let cdp = cdp::Cdp::connect(&format!("ws://127.0.0.1:{port}{path}")).await;
        Chromium {
            child,
            cdp,
            _profile: profile,
        }
    }

    /// A new tab; returns its session id.
    async fn tab(&mut self) -> String {
        let t = self
            .cdp
            .call(
                None,
                "Target.createTarget",
                serde_json::json!({ "url": "about:blank" }),
            )
            .await;
        let r = self
            .cdp
            .call(
                None,
                "Target.attachToTarget",
                serde_json::json!({ "targetId": t["targetId"], "flatten": true }),
            )
            .await;
        r["sessionId"].as_str().unwrap().to_owned()
    }

    async fn eval(&mut self, tab: &str, expr: &str) -> serde_json::Value {
        let r = self
            .cdp
            .call(
                Some(tab),
                "Runtime.evaluate",
                serde_json::json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Navigates (or runs `action`, e.g. a form submit) and waits until `location.href`
    /// starts with `expect` and the document is complete.
    async fn wait_for(&mut self, tab: &str, expect: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let v = self
                .eval(tab, "document.readyState + ' ' + location.href")
                .await;
            let s = v.as_str().unwrap_or("").to_owned();
            if let Some(href) = s.strip_prefix("complete ")
                && href.starts_with(expect)
            {
                return href.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {expect}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_text(&mut self, tab: &str, text: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let expr = format!(
            "document.readyState === 'complete' && document.body.innerText.includes({})",
            serde_json::json!(text)
        );
        while self.eval(tab, &expr).await != serde_json::json!(true) {
            assert!(
                std::time::Instant::now() < deadline,
                "page never showed {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn goto(&mut self, tab: &str, url: &str) {
        self.cdp
            .call(
                Some(tab),
                "Page.navigate",
                serde_json::json!({ "url": url }),
            )
            .await;
        self.wait_for(tab, url).await;
    }

    async fn screenshot(&mut self, tab: &str, file: &std::path::Path) {
        use base64::Engine;
        let r = self
            .cdp
            .call(
                Some(tab),
                "Page.captureScreenshot",
                serde_json::json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(file, png).unwrap();
    }

    /// Closes the browser gracefully (every child process exits with it), killing it if it
    /// has not exited within 10 s.
    async fn stop(mut self) {
        self.cdp.close_browser().await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        }
    }
}
