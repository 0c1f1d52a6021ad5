//! Optional trace export: the broker's own spans (each request, and each Instagram call
//! it makes, as a child) sent to an OpenTelemetry collector as OTLP/HTTP JSON
//! (`[telemetry] otlp_traces_url`, e.g. `http://collector:4318/v1/traces`).
//!
//! Written by hand over the OTLP JSON encoding rather than with the OpenTelemetry SDK: the
//! broker needs one exporter of one signal, and a bounded queue that never slows a request
//! down (a full queue drops spans; a collector that is down loses them, with a warning).
//! Span fields are the ones the logs carry (request id, method, route path, the Instagram
//! operation and its scrubbed path): never a token.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, warn};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Spans waiting for the exporter; more are dropped rather than queued without bound.
const QUEUE: usize = 4096;
/// Spans per export request.
const BATCH: usize = 256;
/// How long finished spans wait before they are sent.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One finished span, as OTLP encodes it.
pub struct FinishedSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &'static str,
    start_ns: u128,
    end_ns: u128,
    attributes: Vec<(String, String)>,
}

struct Open {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    start_ns: u128,
    attributes: Vec<(String, String)>,
}

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The layer: records the broker's and the Instagram client's spans, queues them when
/// they close.
pub struct OtlpLayer {
    queue: SyncSender<FinishedSpan>,
}

fn exported(target: &str) -> bool {
    target.starts_with("igbroker") || target.starts_with("instagram_api")
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !exported(attrs.metadata().target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // The nearest exported ancestor gives the trace; a span without one starts a trace.
        let parent = span.scope().skip(1).find_map(|p| {
            p.extensions()
                .get::<Open>()
                .map(|o| (o.trace_id, o.span_id))
        });
        let mut rng = rand::rng();
        let trace_id = parent.map_or_else(|| rng.random::<[u8; 16]>(), |(t, _)| t);
        let mut attributes = Vec::new();
        attrs.record(&mut Fields(&mut attributes));
        span.extensions_mut().insert(Open {
            trace_id,
            span_id: rng.random::<[u8; 8]>(),
            parent: parent.map(|(_, s)| s),
            start_ns: now_ns(),
            attributes,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions_mut().get_mut::<Open>()
        {
            values.record(&mut Fields(&mut open.attributes));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(open) = span.extensions_mut().remove::<Open>() else {
            return;
        };
        let finished = FinishedSpan {
            trace_id: open.trace_id,
            span_id: open.span_id,
            parent: open.parent,
            name: span.metadata().name(),
            start_ns: open.start_ns,
            end_ns: now_ns(),
            attributes: open.attributes,
        };
        if let Err(TrySendError::Full(_)) = self.queue.try_send(finished) {
            metrics::counter!("igbroker_otlp_spans_dropped_total").increment(1);
        }
    }
}

static PENDING: OnceLock<Mutex<Option<Receiver<FinishedSpan>>>> = OnceLock::new();

/// The layer to install, when traces are exported; its queue's other end waits for
/// [`start`].
pub fn layer() -> OtlpLayer {
    let (queue, rx) = sync_channel(QUEUE);
    let _ = PENDING.set(Mutex::new(Some(rx)));
    OtlpLayer { queue }
}

/// Starts sending queued spans to `url` (once per process; later calls do nothing).
pub fn start(url: String, service_name: String, http: reqwest::Client) {
    let Some(rx) = PENDING
        .get()
        .and_then(|m| m.lock().ok().and_then(|mut r| r.take()))
    else {
        return;
    };
    let rx = std::sync::Arc::new(Mutex::new(rx));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let batch: Vec<FinishedSpan> = match rx.lock() {
                Ok(r) => r.try_iter().take(BATCH).collect(),
                Err(_) => return,
            };
            if batch.is_empty() {
                continue;
            }
            let body = encode(&service_name, &batch);
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => warn!(
                    status = r.status().as_u16(),
                    spans = batch.len(),
                    "the trace collector refused spans"
                ),
                Err(e) => {
                    warn!(error = %e, spans = batch.len(), "could not send spans to the trace collector")
                }
            }
        }
    });
}

/// The OTLP/HTTP JSON body for these spans (ids in hex, times as decimal strings).
pub fn encode(service_name: &str, spans: &[FinishedSpan]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let attributes: Vec<Value> = dedup(&s.attributes)
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "parentSpanId": s.parent.map(hex::encode).unwrap_or_default(),
                "name": s.name,
                // SERVER for a request, CLIENT for a call to Instagram.
                "kind": if s.parent.is_none() { 2 } else { 3 },
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": attributes,
            })
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": service_name}},
            ]},
            "scopeSpans": [{"scope": {"name": "igbroker"}, "spans": spans}],
        }]
    })
}

/// The last value of each field (a field recorded again replaces the first).
fn dedup(fields: &[(String, String)]) -> Vec<(String, String)> {
    let mut last: HashMap<&str, &str> = HashMap::new();
    let mut order = Vec::new();
    for (k, v) in fields {
        if last.insert(k, v).is_none() {
            order.push(k.as_str());
        }
    }
    order
        .into_iter()
        .map(|k| (k.to_string(), last[k].to_string()))
        .collect()
}
