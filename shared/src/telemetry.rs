//! Telemetry set-up: `tracing` to stderr (JSON with `TANSU_LOG_FORMAT=json`), OTLP/HTTP trace
//! export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`), and
//! a process-wide Prometheus recorder served at `/metrics` by every service; the same metrics
//! over OTLP/HTTP too when `OTEL_METRICS_EXPORTER=otlp` (to
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, else `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/metrics`).
//!
//! **One trace per request.** The gateway starts a trace (or continues the client's W3C
//! `traceparent`) with a server span of its own and forwards its context; each service's
//! request span ([`request_span`]) continues the `traceparent` it receives, so its spans are
//! children of the gateway's, and its outbound calls carry the context on, each in a client
//! span of its own ([`client_call`]). Spans carry `tenant.id`, `http.route` and, where known,
//! `client_id`: never a token, a secret, a query string or a header value. Every log line
//! inside a request carries its `trace_id`.

mod export;
mod otlp_metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes and stops the OTLP exporter when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
        // The last metrics are exported on shutdown.
        if let Some(m) = self.meters.take() {
            let _ = m.shutdown();
        }
    }
}

/// Whether this process exports spans over OTLP (set by [`init`]). Without export, no code
/// path builds OpenTelemetry contexts: the gateway forwards `traceparent` as it came (or a new
/// one) and services only log the trace id.
static EXPORTING: AtomicBool = AtomicBool::new(false);

pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Installs the global subscriber once per process (later calls only return a guard).
/// `RUST_LOG` sets the filter (default `info`); OTLP export follows the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (and `OTEL_SDK_DISABLED`).
pub fn init(service_name: &'static str) -> TelemetryGuard {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty() && !disabled)
        .map(|v| v.trim_end_matches('/').to_owned());
    let traces = endpoint.as_ref().map(|v| format!("{v}/v1/traces"));
    let metrics_on = std::env::var("OTEL_METRICS_EXPORTER").is_ok_and(|v| v == "otlp") && !disabled;
    let metrics = std::env::var("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| endpoint.map(|v| format!("{v}/v1/metrics")))
        .filter(|_| metrics_on);
    init_with_metrics(service_name, traces.as_deref(), metrics.as_deref())
}

/// [`init`] with the OTLP/HTTP traces URL given (`http://host:4318/v1/traces`; `None`: no
/// export): what a test with its own receiver uses.
pub fn init_with(service_name: &'static str, otlp_traces_url: Option<&str>) -> TelemetryGuard {
    init_with_metrics(service_name, otlp_traces_url, None)
}

/// [`init_with`], and the metrics exported over OTLP/HTTP to `otlp_metrics_url`
/// (`http://host:4318/v1/metrics`; `None`: the Prometheus scrape only). Export needs this call
/// to come before the first metric is recorded (the recorder is installed once).
pub fn init_with_metrics(
    service_name: &'static str,
    otlp_traces_url: Option<&str>,
    otlp_metrics_url: Option<&str>,
) -> TelemetryGuard {
    let meters = otlp_metrics_url.and_then(|url| {
        if HANDLE.get().is_some() {
            eprintln!("OTLP metrics disabled: the metrics recorder was installed before");
            return None;
        }
        match otlp_metrics::provider(service_name, url) {
            Ok(p) => {
                *PENDING_METERS
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(p.clone());
                Some(p)
            }
            Err(e) => {
                eprintln!("OTLP metrics disabled: {e}");
                None
            }
        }
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TANSU_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };

    let provider = otlp_traces_url.and_then(|url| match otlp_provider(service_name, url) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("OTLP export disabled: {e}");
            None
        }
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service_name)));

    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
    }
    let _ = metrics_handle();
    TelemetryGuard { provider, meters }
}

fn otlp_provider(service_name: &'static str, url: &str) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "telemetry must start inside the service's runtime".to_owned())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_http_client(export::OnRuntime::new(runtime))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build())
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The meter provider [`init_with_metrics`] made, for the recorder installed next.
static PENDING_METERS: Mutex<Option<SdkMeterProvider>> = Mutex::new(None);

/// The process-wide Prometheus recorder (installed on first use; with OTLP metrics when
/// [`init_with_metrics`] asked for them first).
pub fn metrics_handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let meters = PENDING_METERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // Another recorder may already be installed (tests); ours then only renders its own.
        let _ = match meters {
            Some(m) => metrics::set_global_recorder(otlp_metrics::Both::new(recorder, &m)).is_ok(),
            None => metrics::set_global_recorder(recorder).is_ok(),
        };
        // Histogram samples wait in buckets until drained: without upkeep they would pile up
        // (memory growing with every request) whenever nobody scrapes `/metrics`.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        handle
    })
}

/// Counts and times one request: `http_requests_total` and `http_request_duration_seconds`,
/// labelled by service, method, route template (never the raw path) and status.
pub async fn record_request(
    service: &'static str,
    req: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let start = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let labels = [
        ("service", service.to_owned()),
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` in the Prometheus text format.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(render_metrics))
}

async fn render_metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_handle().render(),
    )
}

/// The W3C trace context of `headers` (empty when there is none or it is malformed).
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator;
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&export::Headers(headers))
}

/// Writes `span`'s trace context into `headers`.
pub fn inject_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&span.context(), &mut export::HeadersMut(headers));
}

/// A client span for an outbound call (`otel.kind = client`, named `otel_name`, e.g.
/// `GET jwks`), child of the current span, and the trace headers that make the callee
/// continue it (empty unless exporting). Instrument the call's future with the span.
pub fn client_call(otel_name: &str) -> (tracing::Span, http::HeaderMap) {
    let span = tracing::info_span!("http.client", otel.name = otel_name, otel.kind = "client");
    let mut headers = http::HeaderMap::new();
    if exporting() {
        inject_context(&span, &mut headers);
    }
    (span, headers)
}

/// Makes `span` a child of the trace context in `headers` (the root of a new trace when there
/// is none) and records its `trace_id` field. Only with export on ([`exporting`]).
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let _ = span.set_parent(extract(headers));
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

/// A service's server span for one request: `http.route` (the route template, never the raw
/// path with its ids), `tenant.id` (the gateway's `X-Tansu-Tenant`), `client_id` (recorded by
/// whoever learns it), `trace_id` (so every log line inside names the trace). A child of the
/// request's `traceparent` when spans are exported.
pub fn request_span<B>(service: &'static str, req: &axum::http::Request<B>) -> tracing::Span {
    use tracing::field::Empty;
    let headers = req.headers();
    let request_id = headers
        .get(crate::server::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let tenant = headers
        .get(crate::TENANT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        service,
        method = %req.method(),
        path = %req.uri().path(),
        http.route = route,
        request_id = %request_id,
        tenant.id = tenant,
        client_id = Empty,
        trace_id = Empty,
    );
    if exporting() {
        continue_trace(&span, headers);
    } else if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok())
        && tp.len() >= 35
        && tp.is_char_boundary(35)
    {
        span.record("trace_id", &tp[3..35]);
    }
    span
}
