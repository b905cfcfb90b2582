//! Tenant resolution end to end: the upstream echoes what it received.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use tansu_gateway::TenantEntry;
use tansu_gateway::tenant::{TenantDirectory, TenantInfo, TenantStatus};
use tansu_shared::testing::http::SendOk;

fn tenants_config(db: &tansu_shared::testing::TestServer) -> tansu_gateway::Config {
    let mut c = config(vec![route("/db", &[db])]);
    c.base_domain = Some("tansu.test".into());
    let t = |slug: &str, id: &str, suspended| TenantEntry {
        slug: slug.into(),
        id: id.into(),
        suspended,
        allowed_origins: Vec::new(),
    };
    c.tenants = Some(vec![
        t("acme", "id-acme", false),
        t("globex", "id-globex", false),
        t("initech", "id-initech", true),
    ]);
    c
}

#[tokio::test]
async fn a_spoofed_tenant_header_never_reaches_the_service() {
    let db = echo("db").await;
    let gw = Gateway::start(tenants_config(&db)).await;
    let client = gw.client();
    // No tenant anywhere: the header is removed.
    let e = echo_of(
        client
            .get(gw.url("/db/x"))
            .header("x-tansu-tenant", "id-globex")
            .header("X-Tansu-Tenant", "id-other")
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.headers.get("x-tansu-tenant"), None);
    // A tenant resolved from the host: the resolved one replaces the spoofed one.
    let e = echo_of(
        client
            .get(gw.host_url("acme.tansu.test", "/db/x"))
            .header("x-tansu-tenant", "id-globex")
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.headers["x-tansu-tenant"], vec!["id-acme".to_string()]);
    gw.stop().await;
}

#[tokio::test]
async fn subdomain_path_and_token_resolution() {
    let db = echo("db").await;
    let gw = Gateway::start(tenants_config(&db)).await;
    let client = gw.client();

    let e = echo_of(
        client
            .get(gw.host_url("acme.tansu.test", "/db/x"))
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-acme"));
    assert_eq!(e.path, "/x");

    let e = echo_of(client.get(gw.url("/t/globex/db/api/y?q=1")).send_ok().await).await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-globex"));
    assert_eq!(e.path, "/api/y");
    assert_eq!(e.query.as_deref(), Some("q=1"));
    assert_eq!(e.header("x-forwarded-prefix"), Some("/t/globex/db"));

    // Only the token names the tenant.
    let e = echo_of(
        client
            .get(gw.url("/db/x"))
            .bearer_auth(token_with_tid("id-globex"))
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-globex"));
    assert!(
        e.header("authorization").is_some(),
        "the token goes on to the service"
    );

    // Host and token agree.
    let e = echo_of(
        client
            .get(gw.host_url("acme.tansu.test", "/db/x"))
            .bearer_auth(token_with_tid("id-acme"))
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-acme"));
    gw.stop().await;
}

/// `GET url`, with a token naming `tid` when given: the problem answer, of `status`.
async fn problem_at(
    client: &reqwest::Client,
    url: String,
    tid: Option<&str>,
    status: u16,
) -> serde_json::Value {
    let mut req = client.get(url);
    if let Some(tid) = tid {
        req = req.bearer_auth(token_with_tid(tid));
    }
    problem_of(req.send_ok().await, status).await
}

#[tokio::test]
async fn host_or_path_against_token_mismatch_is_forbidden() {
    let db = echo("db").await;
    let gw = Gateway::start(tenants_config(&db)).await;
    let client = gw.client();
    let mismatch = Some("urn:tansu:problem:tenant-mismatch");
    for (url, tid, problem_type) in [
        (
            gw.host_url("acme.tansu.test", "/db/x"),
            Some("id-globex"),
            mismatch,
        ),
        (gw.url("/t/acme/db/x"), Some("id-globex"), mismatch),
        // Host and path disagree.
        (gw.host_url("acme.tansu.test", "/t/globex/db/x"), None, None),
    ] {
        let v = problem_at(&client, url, tid, 403).await;
        if let Some(t) = problem_type {
            assert_eq!(v["type"], t);
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn unknown_and_suspended_tenants() {
    let db = echo("db").await;
    let gw = Gateway::start(tenants_config(&db)).await;
    let client = gw.client();
    let unknown = Some("urn:tansu:problem:unknown-tenant");
    for (url, tid, status, problem_type) in [
        (gw.url("/t/nope/db/x"), None, 404, unknown),
        (gw.host_url("nope.tansu.test", "/db/x"), None, 404, None),
        (gw.url("/db/x"), Some("id-nope"), 404, None),
        (gw.url("/t/Bad_Slug/db/x"), None, 404, None),
        (
            gw.url("/t/initech/db/x"),
            None,
            403,
            Some("urn:tansu:problem:tenant-suspended"),
        ),
    ] {
        let v = problem_at(&client, url, tid, status).await;
        if let Some(t) = problem_type {
            assert_eq!(v["type"], t);
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn without_a_directory_every_slug_is_its_own_id() {
    let db = echo("db").await;
    let gw = Gateway::start(config(vec![route("/db", &[&db])])).await;
    let e = echo_of(
        gw.client()
            .get(gw.url("/t/acme/db/x"))
            .header("x-tansu-tenant", "evil")
            .send_ok()
            .await,
    )
    .await;
    assert_eq!(e.headers["x-tansu-tenant"], vec!["acme".to_string()]);
    gw.stop().await;
}

/// A directory the test changes while the gateway runs (as identity's tenant API will).
#[derive(Default)]
struct LiveDirectory(std::sync::Mutex<Option<TenantStatus>>);

impl LiveDirectory {
    fn get(&self, slug: &str) -> Option<TenantInfo> {
        let status = (*self.0.lock().unwrap())?;
        (slug == "acme").then(|| TenantInfo {
            id: "id-acme".into(),
            slug: "acme".into(),
            status,
            allowed_origins: Vec::new(),
        })
    }
}

impl TenantDirectory for LiveDirectory {
    fn by_slug<'a>(&'a self, slug: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move { Ok(self.get(slug)) })
    }
    fn by_id<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<TenantInfo>, String>> {
        Box::pin(async move {
            Ok(if id == "id-acme" {
                self.get("acme")
            } else {
                None
            })
        })
    }
}

#[tokio::test]
async fn tenant_status_changes_apply_within_the_cache_time() {
    let db = echo("db").await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.tenant_cache_ms = 300;
    let dir = Arc::new(LiveDirectory::default());
    *dir.0.lock().unwrap() = Some(TenantStatus::Active);
    let gw = Gateway::start_with_parts(
        c,
        tansu_gateway::Parts {
            tenant_directory: Some(dir.clone()),
            ..Default::default()
        },
    )
    .await;
    let client = gw.client();
    let e = echo_of(client.get(gw.url("/t/acme/db/x")).send_ok().await).await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-acme"));

    let url = gw.url("/t/acme/db/x");
    for (status, code, what) in [
        (Some(TenantStatus::Suspended), 403, "suspension applies"),
        (None, 404, "deletion applies"),
        (Some(TenantStatus::Active), 200, "reactivation applies"),
    ] {
        *dir.0.lock().unwrap() = status;
        eventually_answers(
            what,
            Duration::from_secs(3),
            &url,
            |s| s == code,
            || client.clone(),
        )
        .await;
    }
    gw.stop().await;
}

/// identity's tenant directory as the gateway sees it: a token endpoint and
/// `/admin/tenant-directory/{ref}`, with the tenant's status and identity's reachability
/// switched by the test.
#[derive(Default)]
struct FakeIdentity {
    status: std::sync::Mutex<Option<&'static str>>,
    down: std::sync::atomic::AtomicBool,
    tokens_issued: std::sync::atomic::AtomicUsize,
}

async fn fake_identity(state: Arc<FakeIdentity>) -> tansu_shared::testing::TestServer {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use std::sync::atomic::Ordering::Relaxed;
    async fn token(State(s): State<Arc<FakeIdentity>>) -> axum::response::Response {
        let n = s.tokens_issued.fetch_add(1, Relaxed) + 1;
        axum::Json(serde_json::json!({
            "access_token": format!("token-{n}"),
            "token_type": "Bearer",
            "expires_in": 3600,
        }))
        .into_response()
    }
    async fn lookup(
        State(s): State<Arc<FakeIdentity>>,
        headers: HeaderMap,
        Path(reference): Path<String>,
    ) -> axum::response::Response {
        if s.down.load(Relaxed) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        // Only the latest token is valid (as after identity restarted with new keys).
        let want = format!("Bearer token-{}", s.tokens_issued.load(Relaxed));
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let status = *s.status.lock().unwrap();
        match status {
            Some(status) if reference == "acme" || reference == "id-acme" => {
                axum::Json(serde_json::json!({"id": "id-acme", "slug": "acme", "status": status}))
                    .into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let router = axum::Router::new()
        .route("/connect/token", post(token))
        .route("/admin/tenant-directory/{reference}", get(lookup))
        .with_state(state);
    tansu_shared::testing::TestServer::start(router).await
}

#[tokio::test]
async fn http_directory_resolves_refuses_and_survives_a_short_outage() {
    use std::sync::atomic::Ordering::Relaxed;
    let db = echo("db").await;
    let state = Arc::new(FakeIdentity::default());
    *state.status.lock().unwrap() = Some("active");
    let identity = fake_identity(state.clone()).await;
    let mut c = config(vec![route("/db", &[&db])]);
    c.tenant_cache_ms = 200;
    c.tenant_stale_ms = 1_500;
    c.tenant_directory = Some(tansu_gateway::TenantDirectoryConfig {
        identity_url: identity.url("/"),
        client_id: "gateway".into(),
        client_secret: tansu_shared::config::Secret::new("s3cret"),
        ..Default::default()
    });
    let gw = Gateway::start(c).await;
    let client = gw.client();
    let status_of = |path: &'static str| {
        let client = client.clone();
        let url = gw.url(path);
        async move { client.get(&url).send_ok().await.status().as_u16() }
    };
    let e = echo_of(client.get(gw.url("/t/acme/db/x")).send_ok().await).await;
    assert_eq!(e.header("x-tansu-tenant"), Some("id-acme"));
    assert_eq!(status_of("/t/nope/db/x").await, 404);

    // A token identity no longer accepts is replaced once, transparently.
    state.tokens_issued.fetch_add(1, Relaxed);
    eventually("a new token is used", Duration::from_secs(3), || async {
        status_of("/t/acme/db/y").await == 200 && state.tokens_issued.load(Relaxed) >= 3
    })
    .await;

    *state.status.lock().unwrap() = Some("suspended");
    eventually("suspension applies", Duration::from_secs(3), || async {
        status_of("/t/acme/db/x").await == 403
    })
    .await;

    // identity goes down: the cached answer stays served for the stale bound, then 503.
    *state.status.lock().unwrap() = Some("active");
    state.down.store(true, Relaxed);
    assert_eq!(
        status_of("/t/acme/db/x").await,
        403,
        "served from the cache"
    );
    eventually(
        "unreachable directory answers 503",
        Duration::from_secs(5),
        || async { status_of("/t/acme/db/x").await == 503 },
    )
    .await;
    // Back up: the current status again.
    state.down.store(false, Relaxed);
    eventually("recovery", Duration::from_secs(3), || async {
        status_of("/t/acme/db/x").await == 200
    })
    .await;
    gw.stop().await;
}
