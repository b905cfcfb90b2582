//! Stored content never runs on the platform's origin: every object answer (token or
//! presigned, GET or HEAD, whole or ranged) carries `X-Content-Type-Options: nosniff` and a
//! sandboxing `Content-Security-Policy`, and only the inert types of the inline allow-list are
//! shown inline — everything else (HTML, SVG, XML, scripts, …) is an attachment with a safe
//! file name. In Chromium: an HTML object opened through a presigned URL does not run its
//! script with the platform's cookies.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use tansu_shared::testing::TestServer;
use tansu_shared::testing::browser::Chromium;
use tansu_shared::testing::http::SendOk;

/// A page whose script, when it runs, writes a marker and the cookies it can read (the marker
/// text "script ran" is not in the source: only running the script produces it).
const PAGE: &str = "<!doctype html><html><head><title>untouched</title></head><body>\
<p>stored page</p><script>document.title = 'ran'; document.body.insertAdjacentHTML('beforeend', \
'<p id=\"ran\">' + ['script', 'ran'].join(' ') + '; cookie=[' + document.cookie + ']</p>');\
</script></body></html>";

const SVG: &str =
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(document.cookie)</script></svg>";

/// 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn upload(f: &Fixture, key: &str, content_type: &str, body: &[u8]) {
    let r = f
        .as_tenant(
            Method::PUT,
            TENANT_A,
            &format!("/api/buckets/files/objects/{key}"),
        )
        .header("content-type", content_type)
        .body(body.to_vec())
        .send_ok()
        .await;
    assert!(r.status().is_success(), "upload {key}: {}", r.status());
}

/// A presigned GET path of `key` (percent-encoded as the service encodes it).
async fn presign_get(f: &Fixture, key: &str) -> Value {
    f.as_tenant(Method::POST, TENANT_A, "/api/buckets/files/presign")
        .json(&json!({ "key": key, "method": "GET", "expires_in": 300 }))
        .send_json()
        .await
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// Checks the headers of one object answer: always nosniff and the sandbox; `disposition`
/// is what `Content-Disposition` must start with.
fn assert_safe(r: &reqwest::Response, disposition: &str, what: &str) {
    assert!(r.status().is_success(), "{what}: {}", r.status());
    assert_eq!(header(r, "x-content-type-options"), "nosniff", "{what}");
    let csp = header(r, "content-security-policy");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{what}: {csp:?}"
    );
    let cd = header(r, "content-disposition");
    assert!(cd.starts_with(disposition), "{what}: {cd:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_answers_carry_nosniff_sandbox_and_disposition() {
    let f = Fixture::start(Db::Sqlite, |_| {}).await.unwrap();
    f.create_bucket(TENANT_A, "files").await;
    upload(&f, "page.html", "text/html; charset=utf-8", PAGE.as_bytes()).await;
    upload(&f, "logo.svg", "image/svg+xml", SVG.as_bytes()).await;
    upload(&f, "dot.png", "image/png", PNG).await;
    upload(&f, "notes.txt", "text/plain; charset=utf-8", b"plain words").await;
    upload(&f, "feed.xml", "application/xml", b"<a/>").await;
    upload(&f, "app.js", "text/javascript", b"alert(1)").await;
    // A type the uploader did not name is stored as application/octet-stream.
    upload(&f, "blob", "application/octet-stream", b"bytes").await;

    let cases = [
        ("page.html", "attachment"),
        ("logo.svg", "attachment"),
        ("feed.xml", "attachment"),
        ("app.js", "attachment"),
        ("blob", "attachment"),
        ("dot.png", "inline"),
        ("notes.txt", "inline"),
    ];
    for (key, disposition) in cases {
        let path = format!("/api/buckets/files/objects/{key}");
        let r = f.send(Method::GET, TENANT_A, &path).await;
        assert_safe(&r, disposition, &format!("GET {key}"));
        let r = f.send(Method::HEAD, TENANT_A, &path).await;
        assert_safe(&r, disposition, &format!("HEAD {key}"));
        let r = f
            .send_with(
                Method::GET,
                TENANT_A,
                &path,
                vec![("range", "bytes=0-1".into())],
                "",
            )
            .await;
        assert_eq!(r.status(), 206, "{key}");
        assert_safe(&r, disposition, &format!("ranged GET {key}"));
        let presigned = presign_get(&f, key).await;
        let url = f.app.url(presigned["path"].as_str().unwrap());
        let r = f.http.get(&url).send_ok().await;
        assert_safe(&r, disposition, &format!("presigned GET {key}"));
        let r = f.http.head(&url).send_ok().await;
        assert_safe(&r, disposition, &format!("presigned HEAD {key}"));
    }
    // The stored type is still the answer's type: only its handling changes.
    let r = f
        .send(Method::GET, TENANT_A, "/api/buckets/files/objects/dot.png")
        .await;
    assert_eq!(header(&r, "content-type"), "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG);

    // The file name is the key's last segment: a quoted ASCII fallback without anything that
    // could end the parameter, and the exact name in RFC 5987 encoding.
    let key = "docs/Résumé \"final\";.html";
    upload(
        &f,
        "docs/R%C3%A9sum%C3%A9%20%22final%22%3B.html",
        "text/html",
        b"x",
    )
    .await;
    let presigned = presign_get(&f, key).await;
    let r = f
        .http
        .get(f.app.url(presigned["path"].as_str().unwrap()))
        .send_ok()
        .await;
    assert_safe(&r, "attachment", "a name that needs encoding");
    assert_eq!(
        header(&r, "content-disposition"),
        "attachment; filename=\"R_sum_ _final__.html\"; \
         filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22%3B.html"
    );
    f.finish().await;
}

/// The cookie the platform's sign-in would set on its origin.
const COOKIE: &str = "platform_session=platform-secret";

/// The platform's own pages on the same origin as the storage routes: `/platform/login?next=`
/// sets the platform cookie and redirects, `/platform/page` serves the test page as a page of
/// the platform itself would be (the harness's proof that script runs when it is allowed to).
fn platform_routes() -> axum::Router {
    use axum::response::IntoResponse;
    use axum::routing::get;
    axum::Router::new()
        .route(
            "/platform/login",
            get(|uri: axum::http::Uri| async move {
                let next = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "next")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                (
                    axum::http::StatusCode::FOUND,
                    [
                        ("set-cookie", format!("{COOKIE}; Path=/")),
                        ("location", next),
                    ],
                )
                    .into_response()
            }),
        )
        .route(
            "/platform/page",
            get(|| async { ([("content-type", "text/html")], PAGE).into_response() }),
        )
}

/// What a fresh tab shows after following `path` on `site` through the platform's sign-in.
struct Visit {
    /// `Page.navigate`'s error (`net::ERR_ABORTED` when the answer became a download).
    error: Option<String>,
    href: String,
    html: String,
}

async fn visit(browser: &mut Chromium, site: &TestServer, path: &str) -> Visit {
    let tab = browser.tab().await;
    let login = format!(
        "{}?next={}",
        site.url("/platform/login"),
        url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
    );
    let error = browser.navigate(&tab, &login).await;
    let text = |v: Option<Value>| {
        v.and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let href = text(browser.eval(&tab, "location.href").await);
    let html = text(
        browser
            .eval(&tab, "document.documentElement.outerHTML")
            .await,
    );
    Visit { error, href, html }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_object_does_not_run_script_with_the_platform_cookies() {
    let Some(path) = tansu_shared::testing::chromium("storage_active_content_in_chromium") else {
        return;
    };
    let f = Fixture::start(Db::Sqlite, |_| {}).await.unwrap();
    f.create_bucket(TENANT_A, "files").await;
    upload(&f, "page.html", "text/html", PAGE.as_bytes()).await;
    // One origin for the platform's pages and storage, as behind the gateway.
    let site =
        TestServer::start(platform_routes().merge(tansu_storage::router(f.state.clone()))).await;
    let mut browser = Chromium::start(&path).await;
    // Downloads are refused (nothing is written) but reported.
    browser
        .call(
            None,
            "Browser.setDownloadBehavior",
            json!({ "behavior": "deny", "eventsEnabled": true }),
        )
        .await;

    // The harness sees script that runs: the platform's own page reads the cookie.
    let control = visit(&mut browser, &site, "/platform/page").await;
    assert!(
        control
            .html
            .contains(&format!("script ran; cookie=[{COOKIE}]")),
        "the control page's script ran with the cookie: {:?} {}",
        control.error,
        control.html
    );

    // The stored HTML through its presigned URL: not a page of the platform's origin.
    let presigned = presign_get(&f, "page.html").await;
    let object = presigned["path"].as_str().unwrap().to_owned();
    let stored = visit(&mut browser, &site, &object).await;
    assert!(
        !stored.html.contains("script ran") && !stored.html.contains("platform-secret"),
        "the stored page's script ran: {} {}",
        stored.href,
        stored.html
    );
    assert!(
        stored.error.is_some() && !stored.href.contains("/api/buckets/"),
        "the answer became a download, not a document: {:?} {}",
        stored.error,
        stored.href
    );
    let download_began = |browser: &Chromium| {
        browser
            .events()
            .iter()
            .any(|e| e["method"] == "Browser.downloadWillBegin")
    };
    assert!(download_began(&browser), "{:?}", browser.events());
    drop(browser);
    site.stop().await;
    f.finish().await;
}

/// An operator who serves storage from its own origin may show HTML inline: it is answered
/// inline but still under the sandboxing policy, so its script does not run. (Checked on the
/// headers: DevTools' `Runtime.evaluate` does not answer reliably in a document whose
/// scripting the sandbox turned off, so a browser check of this case would be flaky.)
#[tokio::test]
async fn inline_html_on_its_own_origin_stays_sandboxed() {
    let f = Fixture::start(Db::Sqlite, |c| {
        c.public_origin = "https://files.example-usercontent.net".into();
        c.inline_content_types.push("text/html".into());
    })
    .await
    .unwrap();
    f.create_bucket(TENANT_A, "files").await;
    upload(&f, "page.html", "text/html", PAGE.as_bytes()).await;
    let r = f
        .send(
            Method::GET,
            TENANT_A,
            "/api/buckets/files/objects/page.html",
        )
        .await;
    assert_eq!(r.status(), 200);
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(
        csp.contains("sandbox") && !csp.contains("allow-scripts"),
        "{csp}"
    );
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(!header("content-disposition").starts_with("attachment"));
    f.finish().await;
}

/// With `public_origin`, presigned URLs point at storage's own origin, not the platform's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_urls_use_the_public_origin() {
    let f = Fixture::start(Db::Sqlite, |c| {
        c.public_origin = "https://files.example-usercontent.net/".into();
    })
    .await
    .unwrap();
    f.create_bucket(TENANT_A, "files").await;
    upload(&f, "dot.png", "image/png", PNG).await;
    let presigned = presign_get(&f, "dot.png").await;
    let url = presigned["url"].as_str().unwrap();
    let path = presigned["path"].as_str().unwrap();
    assert_eq!(url, format!("https://files.example-usercontent.net{path}"));
    assert_eq!(f.http.get(f.app.url(path)).send_ok().await.status(), 200);
    f.finish().await;
}
