//! The platform's public surface as `tansu up` runs it: every path of a service that is not in
//! its documented public API — Prometheus `/metrics`, the readiness details `/health/ready`,
//! identity's tenant directory and security-event ingest — answers 404 problem+json through the
//! gateway, however it is spelled, while each service still serves it on its own listener and
//! the public entry points still answer.

use std::time::Duration;

use serde_json::{Value, json};
use tansu_dev::{Stack, StackOptions};

const SERVICES: [(&str, &str); 4] = [
    ("identity", "/identity"),
    ("database", "/db"),
    ("storage", "/storage"),
    ("dashboard", "/dashboard"),
];

struct Probe {
    method: reqwest::Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
}

fn get(path: impl Into<String>) -> Probe {
    Probe {
        method: reqwest::Method::GET,
        path: path.into(),
        token: None,
        body: None,
    }
}

#[tokio::test]
async fn internal_paths_are_not_reachable_through_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = Stack::start(StackOptions::for_tests(dir.path()))
        .await
        .unwrap();
    stack.wait_ready(Duration::from_secs(60)).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(stack.certificate_pem.as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = format!("https://{}", stack.gateway);
    let dev_secret = std::fs::read_to_string(dir.path().join("identity/tansu-dashboard.secret"))
        .expect("dev mode writes the seeded client's secret")
        .trim()
        .to_owned();
    let token = |scope: &'static str| {
        let (http, base, secret) = (http.clone(), base.clone(), dev_secret.clone());
        async move {
            let resp = http
                .post(format!("{base}/identity/connect/token"))
                .basic_auth("tansu-dashboard", Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "token with {scope}");
            let body: Value = resp.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    // Credentials that the internal endpoints would accept: the probe is about the route, not
    // about the service refusing an anonymous caller.
    let admin = token("admin.full").await;
    let reporter = token("events.write").await;
    let resp = http
        .post(format!("{base}/identity/admin/tenants"))
        .bearer_auth(&admin)
        .json(&json!({"slug": "surface-shop", "name": "Surface Shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "create tenant");

    let mut probes = Vec::new();
    for (_, prefix) in SERVICES {
        for path in [
            "/metrics",
            "/metrics/",
            "//metrics",
            "/%6Detrics",
            "/METRICS",
            "/health/ready",
            "/health/Ready/",
        ] {
            probes.push(get(format!("{prefix}{path}")));
        }
        probes.push(get(format!("/t/surface-shop{prefix}/metrics")));
        probes.push(get(format!("{}/metrics", prefix.to_ascii_uppercase())));
    }
    for path in [
        "/identity/admin/tenant-directory/surface-shop",
        "/identity/admin/tenant-directory/%73urface-shop",
        "/t/surface-shop/identity/admin/tenant-directory/surface-shop",
    ] {
        probes.push(Probe {
            token: Some(admin.clone()),
            ..get(path)
        });
    }
    probes.push(Probe {
        method: reqwest::Method::POST,
        path: "/identity/admin/security-events/ingest".into(),
        token: Some(reporter.clone()),
        body: Some(json!({"events": []})),
    });

    let mut table = Vec::new();
    let mut exposed = Vec::new();
    for p in &probes {
        let mut req = http.request(p.method.clone(), format!("{base}{}", p.path));
        if let Some(t) = &p.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = &p.body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp.text().await.unwrap();
        table.push(format!("{:<6} {:<64} {status}", p.method, p.path));
        if status != 404
            || content_type != "application/problem+json"
            || body.contains("http_requests_total")
        {
            exposed.push(format!("{} {} -> {status}: {body:.200}", p.method, p.path));
        }
    }
    println!(
        "internal paths probed through the gateway:\n{}",
        table.join("\n")
    );
    assert!(exposed.is_empty(), "reachable:\n{}", exposed.join("\n"));

    // Each service still serves them on its own listener (Prometheus, the gateway's probes).
    let plain = reqwest::Client::new();
    for (name, addr) in &stack.services {
        let resp = plain
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{name} /metrics on its own listener");
        assert!(resp.text().await.unwrap().contains("http_requests_total"));
        let resp = plain
            .get(format!("http://{addr}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "{name} /health/ready on its own listener"
        );
    }
    if let Some(internal) = stack.gateway_internal {
        let resp = plain
            .get(format!("http://{internal}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the gateway's internal listener");
    }

    // The public entry points still answer.
    let mut public = vec![
        "/health".to_owned(),
        "/identity/.well-known/openid-configuration".to_owned(),
        "/identity/.well-known/jwks".to_owned(),
        // RFC 8414 §3 and the OIDC alias, at the host root.
        "/.well-known/oauth-authorization-server/identity".to_owned(),
        "/.well-known/openid-configuration/identity".to_owned(),
        "/t/surface-shop/identity/health/live".to_owned(),
    ];
    public.extend(SERVICES.iter().map(|(_, p)| format!("{p}/health/live")));
    for path in public {
        let resp = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    stack.shutdown().await.unwrap();
}
