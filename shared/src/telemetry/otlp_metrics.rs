//! OTLP metrics beside the Prometheus scrape: a `metrics` recorder that hands every counter,
//! gauge and histogram to the Prometheus recorder and to an OpenTelemetry meter, exported by
//! a periodic OTLP/HTTP reader (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s). Off unless
//! configured ([`super::init`]: `OTEL_METRICS_EXPORTER=otlp`).
//!
//! Instruments keep the `metrics` names and labels (label values are what the services set:
//! routes, outcomes, statuses; never a token or a secret). Gauges are exported as their current
//! value; a counter set with `absolute` is exported by its increase.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// The meter provider exporting to `url` (`http://host:4318/v1/metrics`).
pub(super) fn provider(service_name: &'static str, url: &str) -> Result<SdkMeterProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "telemetry must start inside the service's runtime".to_owned())?;
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_endpoint(url)
        .with_http_client(super::export::OnRuntime::new(runtime))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name)
                .build(),
        )
        .build())
}

/// The recorder of both: Prometheus first (it renders `/metrics`), then the meter.
pub(super) struct Both<P> {
    pub(super) prometheus: P,
    meter: Meter,
    counters: Mutex<HashMap<Key, Arc<OtelCounter>>>,
    gauges: Mutex<HashMap<Key, Arc<OtelGauge>>>,
    histograms: Mutex<HashMap<Key, Arc<OtelHistogram>>>,
}

impl<P> Both<P> {
    pub(super) fn new(prometheus: P, provider: &SdkMeterProvider) -> Self {
        Self {
            prometheus,
            meter: provider.meter("tansu"),
            counters: Mutex::default(),
            gauges: Mutex::default(),
            histograms: Mutex::default(),
        }
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|l| KeyValue::new(l.key().to_owned(), l.value().to_owned()))
        .collect()
}

/// The instrument of `key` (made on first use: the meter's instruments live for the process).
fn instrument<T>(map: &Mutex<HashMap<Key, Arc<T>>>, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(key.clone())
        .or_insert_with(|| Arc::new(make()))
        .clone()
}

impl<P: Recorder> Recorder for Both<P> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let otel = instrument(&self.counters, key, || OtelCounter {
            counter: self.meter.u64_counter(key.name().to_owned()).build(),
            attributes: attributes(key),
            last_absolute: AtomicU64::new(0),
        });
        let prometheus = self.prometheus.register_counter(key, metadata);
        Counter::from_arc(Arc::new(Pair(prometheus, otel)))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let otel = instrument(&self.gauges, key, || OtelGauge {
            gauge: self.meter.f64_gauge(key.name().to_owned()).build(),
            attributes: attributes(key),
            value: Mutex::new(0.0),
        });
        let prometheus = self.prometheus.register_gauge(key, metadata);
        Gauge::from_arc(Arc::new(Pair(prometheus, otel)))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let otel = instrument(&self.histograms, key, || OtelHistogram {
            histogram: self.meter.f64_histogram(key.name().to_owned()).build(),
            attributes: attributes(key),
        });
        let prometheus = self.prometheus.register_histogram(key, metadata);
        Histogram::from_arc(Arc::new(Pair(prometheus, otel)))
    }
}

/// A Prometheus handle and the meter's instrument of the same key.
struct Pair<H, O>(H, Arc<O>);

struct OtelCounter {
    counter: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    last_absolute: AtomicU64,
}

impl CounterFn for Pair<Counter, OtelCounter> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.counter.add(value, &self.1.attributes);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        let before = self.1.last_absolute.fetch_max(value, Ordering::Relaxed);
        if value > before {
            self.1.counter.add(value - before, &self.1.attributes);
        }
    }
}

struct OtelGauge {
    gauge: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    value: Mutex<f64>,
}

impl OtelGauge {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut v = self
            .value
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *v = f(*v);
        self.gauge.record(*v, &self.attributes);
    }
}

impl GaugeFn for Pair<Gauge, OtelGauge> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.update(|_| value);
    }
}

struct OtelHistogram {
    histogram: opentelemetry::metrics::Histogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for Pair<Histogram, OtelHistogram> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.histogram.record(value, &self.1.attributes);
    }
}
