//! One trace per request: the stack exports its spans over OTLP/HTTP to an in-process receiver
//! (the real exporter, protobuf over HTTP), and a registration through the gateway (gateway →
//! identity → database-svc, which provisions the new tenant's database) is one trace: the
//! client's trace id, the gateway's span a child of the client's `traceparent`, identity's
//! server span a child of the gateway's, database-svc's a child of identity's outbound call
//! (and identity's token endpoint a child of the provisioning client's token call),
//! `tenant.id` on the spans that know the tenant, and no attribute holding a token or secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;
use tansu_dev::{Stack, StackOptions};

/// One received span: ids in hex, attributes as strings.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

type Received = Arc<Mutex<Vec<Span>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP traces receiver (`POST /v1/traces`, protobuf) on a loopback port.
async fn receiver() -> (String, Received, tansu_shared::testing::TestServer) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let spans = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans);
                let mut sink = sink.lock().unwrap();
                for s in spans {
                    let attributes = s
                        .attributes
                        .into_iter()
                        .map(|kv| {
                            let value = match kv.value.and_then(|v| v.value) {
                                Some(AnyValue::StringValue(v)) => v,
                                Some(AnyValue::IntValue(v)) => v.to_string(),
                                Some(AnyValue::BoolValue(v)) => v.to_string(),
                                Some(AnyValue::DoubleValue(v)) => v.to_string(),
                                other => format!("{other:?}"),
                            };
                            (kv.key, value)
                        })
                        .collect();
                    sink.push(Span {
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent: hex(&s.parent_span_id),
                        name: s.name,
                        attributes,
                    });
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let server = tansu_shared::testing::TestServer::start(router).await;
    (server.url("/v1/traces"), received, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_gateway_identity_and_database_is_one_trace() {
    let (url, received, _receiver) = receiver().await;
    let telemetry = tansu_shared::telemetry::init_with("tansu", Some(&url));
    assert!(
        tansu_shared::telemetry::exporting(),
        "this test's process exports spans"
    );
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

    // The client starts the trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_parent = "00f067aa0ba902b7";
    let password = "a long unique phrase 42";
    let resp = http
        .post(format!("https://{}/identity/registrations", stack.gateway))
        .header("traceparent", format!("00-{trace_id}-{client_parent}-01"))
        .json(&json!({
            "email": "owner@traced.example",
            "password": password,
            "shop_name": "Traced Shop",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: serde_json::Value = resp.json().await.unwrap();
    let tenant = body["tenant_id"].as_str().unwrap().to_owned();
    stack.shutdown().await.unwrap();
    // Dropping the guard flushes the batch exporter (from a thread outside the runtime: the
    // export itself runs on it).
    tokio::task::spawn_blocking(move || drop(telemetry))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans: Vec<Span> = received.lock().unwrap().clone();
        if spans.iter().any(|s| s.name.starts_with("PUT /provision")) {
            break spans;
        }
        assert!(
            Instant::now() < deadline,
            "database-svc's provisioning span never arrived: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let find = |what: &str, pred: &dyn Fn(&Span) -> bool| -> Span {
        spans
            .iter()
            .find(|s| s.trace_id == trace_id && pred(s))
            .unwrap_or_else(|| panic!("no {what} span in the trace: {spans:#?}"))
            .clone()
    };

    // The gateway continues the client's trace; identity's server span is its child.
    let gateway = find("gateway", &|s| s.attr("service") == Some("gateway"));
    assert_eq!(gateway.parent, client_parent);
    assert_eq!(gateway.attr("http.route"), Some("/identity"));
    let identity = find("identity /registrations", &|s| {
        s.attr("service") == Some("identity") && s.attr("http.route") == Some("/registrations")
    });
    assert_eq!(
        identity.parent, gateway.span_id,
        "identity under the gateway"
    );
    // Identity's store calls are client spans under its request, named by their operation
    // (never a statement's values).
    let query = find("identity store call", &|s| {
        s.name.starts_with("db ")
            && s.attr("db.operation.name").is_some()
            && s.parent == identity.span_id
    });
    assert!(query.attr("db.system").is_some(), "{query:?}");
    // Identity's call to database-svc is a client span under its request; database-svc's
    // server span continues it, with the new tenant, and its statements are a child span.
    let call = find("provision call", &|s| {
        s.attr("otel.kind").is_none() && s.name.contains("database-svc /provision")
    });
    assert_eq!(
        call.parent, identity.span_id,
        "the outbound call under identity's span"
    );
    assert_eq!(call.attr("tenant.id"), Some(tenant.as_str()));
    let database = find("database-svc provision", &|s| {
        s.attr("service") == Some("database") && s.name.starts_with("PUT /provision")
    });
    assert_eq!(
        database.parent, call.span_id,
        "database-svc under identity's call"
    );
    assert_eq!(database.attr("tenant.id"), Some(tenant.as_str()));
    let statements = find("provisioning statements", &|s| s.name == "db provision");
    assert_eq!(statements.parent, database.span_id);
    // The token identity's provisioning client asked of identity is in the trace too, with
    // its client id.
    let token = find("identity token", &|s| {
        s.attr("http.route") == Some("/connect/token")
    });
    assert_eq!(token.attr("client_id"), Some("tansu-provisioner"));
    // It was asked through a client span of its own under identity's request, which the token
    // endpoint's server span continues.
    let token_call = find("token call", &|s| s.name == "POST token");
    assert_eq!(token_call.parent, identity.span_id);
    assert_eq!(
        token.parent, token_call.span_id,
        "the token endpoint under the call"
    );

    // No attribute of any span holds a token, a secret or the password.
    let provisioner =
        std::fs::read_to_string(dir.path().join("identity/tansu-provisioner.secret")).unwrap();
    let dev = std::fs::read_to_string(dir.path().join("identity/tansu-dashboard.secret")).unwrap();
    for s in &spans {
        for (key, value) in &s.attributes {
            for (what, secret) in [
                ("password", password),
                ("provisioner secret", provisioner.trim()),
                ("dev client secret", dev.trim()),
                ("a JWT", "eyJ"),
                ("a bearer token", "Bearer "),
            ] {
                assert!(
                    !value.contains(secret),
                    "{what} in attribute {key} of span {}",
                    s.name
                );
            }
        }
    }
}
