//! Headless Chromium driven over the Chrome DevTools Protocol, for browser suites that must
//! observe what a page did (which script ran, whether a response became a download) rather
//! than only its final DOM.
//!
//! The protocol client is minimal: one WebSocket to the browser (text frames, client frames
//! masked), commands answered by id, every protocol event kept for the caller to inspect.
//! Only loopback addresses are reached.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one protocol step (connecting, a command's answer) may take.
const STEP: Duration = Duration::from_secs(20);

/// Headless Chromium with remote debugging on an ephemeral loopback port; the browser is
/// killed and its profile removed on drop.
pub struct Chromium {
    child: tokio::process::Child,
    stream: BufReader<TcpStream>,
    next: u64,
    events: Vec<Value>,
    profile: PathBuf,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The browser first (it writes to its profile until it exits), bounded, then the profile.
        let _ = self.child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Chromium {
    /// Starts `path` (see [`super::chromium`]) with [`super::CHROMIUM_FLAGS`] and a fresh
    /// profile, and connects to it.
    pub async fn start(path: &Path) -> Chromium {
        Self::start_with(path, &[]).await
    }

    /// [`Self::start`] with further flags (a window size, trusting a test certificate).
    pub async fn start_with(path: &Path, flags: &[&str]) -> Chromium {
        let profile = std::env::temp_dir().join(format!("tansu-chromium-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&profile).expect("a profile directory");
        let child = tokio::process::Command::new(path)
            .args(super::CHROMIUM_FLAGS)
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        // Chromium writes its port and the browser's WebSocket path to DevToolsActivePort.
        let file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            if let Ok(t) = std::fs::read_to_string(&file)
                && t.lines().count() >= 2
            {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut lines = text.lines();
        let port = lines.next().unwrap_or_default().trim().to_owned();
        let ws_path = lines.next().unwrap_or_default().trim().to_owned();
        let stream = connect(&format!("127.0.0.1:{port}"), &ws_path).await;
        Chromium {
            child,
            stream,
            next: 1,
            events: Vec::new(),
            profile,
        }
    }

    /// Sends a command (to a tab's session if given) and waits for its result; a refusal
    /// fails the test.
    pub async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Like [`Self::call`], but a refusal comes back as the protocol's error object.
    pub async fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.call_within(session, method, params, STEP)
            .await
            .unwrap_or_else(|| panic!("{method} answered within {STEP:?}"))
    }

    /// [`Self::try_call`] that gives up after `within` (`None`): for calls Chromium may leave
    /// unanswered, such as `Runtime.evaluate` while a navigation replaces the page's context. A
    /// late answer is recognised by its id and dropped.
    async fn call_within(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Option<Result<Value, Value>> {
        let id = self.next;
        self.next += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.send_frame(&msg.to_string()).await;
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = tokio::time::timeout(left, self.read_message()).await.ok()?;
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                return Some(match m.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(m["result"].clone()),
                });
            }
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
    }

    /// The protocol events received so far (`{"method", "params", "sessionId"?}`).
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// A new tab at `about:blank`; returns its session id.
    pub async fn tab(&mut self) -> String {
        let t = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let r = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": t["targetId"], "flatten": true }),
            )
            .await;
        r["sessionId"].as_str().expect("a session id").to_owned()
    }

    /// Evaluates `expr` in the tab's page: its value, or `None` when the page was navigating
    /// (its context went away, or Chromium left the call unanswered for 2 s). A script exception is returned as the protocol reports it.
    pub async fn eval(&mut self, tab: &str, expr: &str) -> Option<Value> {
        let r = self
            .call_within(
                Some(tab),
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
                Duration::from_secs(2),
            )
            .await?
            .ok()?;
        if let Some(e) = r.get("exceptionDetails") {
            return Some(json!({ "exception": e }));
        }
        Some(r["result"]["value"].clone())
    }

    /// Navigates the tab to `url` and waits (at most 20 s) until the navigation settled:
    /// either it did not produce a document (`Page.navigate` reported an error, as for a
    /// response that became a download) or the new document finished loading. Returns the
    /// navigation's `errorText`, if any.
    pub async fn navigate(&mut self, tab: &str, url: &str) -> Option<String> {
        let r = self
            .call(Some(tab), "Page.navigate", json!({ "url": url }))
            .await;
        if let Some(e) = r.get("errorText").and_then(Value::as_str)
            && !e.is_empty()
        {
            return Some(e.to_owned());
        }
        let deadline = Instant::now() + STEP;
        loop {
            if self.eval(tab, "document.readyState").await == Some(json!("complete")) {
                return None;
            }
            assert!(Instant::now() < deadline, "{url} loaded within {STEP:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
        self.stream
            .get_mut()
            .write_all(&frame)
            .await
            .expect("DevTools connection open");
    }

    async fn read_message(&mut self) -> Value {
        let mut message = Vec::new();
        loop {
            let b0 = self.stream.read_u8().await.expect("DevTools frame");
            let b1 = self.stream.read_u8().await.expect("DevTools frame");
            let len = match b1 & 0x7f {
                126 => u64::from(self.stream.read_u16().await.expect("frame length")),
                127 => self.stream.read_u64().await.expect("frame length"),
                n => u64::from(n),
            };
            let mut buf = vec![0u8; usize::try_from(len).expect("frame length")];
            self.stream
                .read_exact(&mut buf)
                .await
                .expect("DevTools frame");
            let opcode = b0 & 0x0f;
            if opcode == 0x9 || opcode == 0xA {
                continue; // ping/pong
            }
            assert_ne!(opcode, 0x8, "DevTools closed the connection");
            message.extend_from_slice(&buf);
            if b0 & 0x80 != 0 {
                return serde_json::from_slice(&message).expect("a JSON protocol message");
            }
        }
    }
}

/// The WebSocket handshake with the browser's DevTools endpoint (loopback only).
async fn connect(host: &str, path: &str) -> BufReader<TcpStream> {
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    let mut stream = tokio::time::timeout(STEP, TcpStream::connect(host))
        .await
        .expect("DevTools reachable in time")
        .expect("DevTools reachable");
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .expect("handshake sent");
    let mut stream = BufReader::new(stream);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = tokio::time::timeout(STEP, stream.read_u8())
            .await
            .expect("handshake answered in time")
            .expect("handshake answered");
        head.push(b);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}
