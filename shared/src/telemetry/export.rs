//! The plumbing of trace export: header maps as W3C trace-context carriers, and the OTLP
//! exporter's HTTP client.

use std::pin::Pin;

use bytes::Bytes;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// Reads `traceparent`/`tracestate` from a header map.
pub struct Headers<'a>(pub &'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes `traceparent`/`tracestate` into a header map (replacing what was there).
pub struct HeadersMut<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The exporter's HTTP client: reqwest, run on the service's Tokio runtime. The SDK's batch
/// processor exports from a thread of its own, outside any runtime, where reqwest's connector
/// has no reactor; each export is spawned onto the runtime and awaited from there.
#[derive(Debug)]
pub struct OnRuntime {
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
}

impl OnRuntime {
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self { runtime, client }
    }
}

type Sent<'a> = Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'a>>;

// `#[async_trait]`'s expansion, written out (the trait is declared with it).
impl HttpClient for OnRuntime {
    fn send_bytes<'life0, 'async_trait>(&'life0 self, request: Request<Bytes>) -> Sent<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let client = self.client.clone();
        let task = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let resp = client.execute(request).await?;
            let mut out = Response::builder().status(resp.status());
            if let Some(h) = out.headers_mut() {
                *h = resp.headers().clone();
            }
            let body = resp.bytes().await?;
            Ok::<_, HttpError>(out.body(body)?)
        });
        Box::pin(async move { task.await.map_err(|e| -> HttpError { Box::new(e) })? })
    }
}
