//! Metrics over OTLP beside the Prometheus scrape: with an OTLP metrics URL, what the services
//! record reaches an in-process receiver (the real exporter, protobuf over HTTP) with its name
//! and labels, and `/metrics` still renders it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use prost::Message;

/// (metric name, labels as `k=v` joined by `,`, value: a sum's or gauge's, a histogram's count).
type Point = (String, String, f64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_metrics_are_exported_over_otlp_and_still_scraped() {
    let received: Arc<Mutex<Vec<Point>>> = Arc::default();
    let sink = received.clone();
    let router = axum::Router::new().route(
        "/v1/metrics",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
                    return axum::http::StatusCode::BAD_REQUEST;
                };
                let metrics = request
                    .resource_metrics
                    .into_iter()
                    .flat_map(|r| r.scope_metrics)
                    .flat_map(|s| s.metrics);
                let mut sink = sink.lock().unwrap();
                for m in metrics {
                    let label = |attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue]| {
                        attrs
                            .iter()
                            .map(
                                |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                    Some(AnyValue::StringValue(v)) => format!("{}={v}", kv.key),
                                    other => format!("{}={other:?}", kv.key),
                                },
                            )
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let number = |v: Option<Number>| match v {
                        Some(Number::AsDouble(d)) => d,
                        Some(Number::AsInt(i)) => i as f64,
                        None => f64::NAN,
                    };
                    match m.data {
                        Some(Data::Sum(s)) => {
                            for p in s.data_points {
                                sink.push((m.name.clone(), label(&p.attributes), number(p.value)));
                            }
                        }
                        Some(Data::Gauge(g)) => {
                            for p in g.data_points {
                                sink.push((m.name.clone(), label(&p.attributes), number(p.value)));
                            }
                        }
                        Some(Data::Histogram(h)) => {
                            for p in h.data_points {
                                sink.push((m.name.clone(), label(&p.attributes), p.count as f64));
                            }
                        }
                        _ => {}
                    }
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let server = tansu_shared::testing::TestServer::start(router).await;
    let guard =
        tansu_shared::telemetry::init_with_metrics("tansu", None, Some(&server.url("/v1/metrics")));

    metrics::counter!("jwks_cache_lookups_total", "result" => "hit").increment(3);
    metrics::counter!("jwks_cache_lookups_total", "result" => "miss").increment(1);
    metrics::gauge!("gateway_upstream_available", "upstream" => "identity").set(1.0);
    metrics::histogram!("http_request_duration_seconds", "service" => "identity").record(0.25);
    metrics::histogram!("http_request_duration_seconds", "service" => "identity").record(0.5);

    // The scrape renders the same values.
    let text = tansu_shared::telemetry::metrics_handle().render();
    assert!(
        text.contains("jwks_cache_lookups_total{result=\"hit\"} 3"),
        "{text}"
    );
    // Shutting the exporter down exports what is left (from a thread outside the runtime: the
    // export itself runs on it).
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let points = loop {
        let points = received.lock().unwrap().clone();
        if points
            .iter()
            .any(|p| p.0 == "http_request_duration_seconds")
        {
            break points;
        }
        assert!(Instant::now() < deadline, "no export arrived: {points:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |name: &str, labels: &str| {
        points
            .iter()
            .find(|p| p.0 == name && p.1 == labels)
            .map(|p| p.2)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {points:?}"))
    };
    assert_eq!(find("jwks_cache_lookups_total", "result=hit"), 3.0);
    assert_eq!(find("jwks_cache_lookups_total", "result=miss"), 1.0);
    assert_eq!(find("gateway_upstream_available", "upstream=identity"), 1.0);
    assert_eq!(
        find("http_request_duration_seconds", "service=identity"),
        2.0
    );
}
