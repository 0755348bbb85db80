//! Test support: a `metrics` recorder read back as `name{label=value,...} -> value`, and a
//! `tracing` subscriber that keeps every event with its level, fields and span.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// What a run recorded: `name{k=v,...}` (labels in the order given) to its value.
pub type Series = BTreeMap<String, DebugValue>;

/// Runs `f` with a fresh local recorder and returns its output and every series recorded.
pub fn with_metrics<R>(f: impl FnOnce() -> R) -> (R, Series) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let out = metrics::with_local_recorder(&recorder, f);
    let series = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (
                format!("{}{{{}}}", key.key().name(), labels.join(",")),
                value,
            )
        })
        .collect();
    (out, series)
}

/// Runs `fut` on a current-thread tokio runtime with paused time.
pub fn paused<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(fut)
}

pub fn counter(n: u64) -> DebugValue {
    DebugValue::Counter(n)
}

pub fn gauge(x: f64) -> DebugValue {
    DebugValue::Gauge(x.into())
}

pub fn histogram(xs: &[f64]) -> DebugValue {
    DebugValue::Histogram(xs.iter().map(|&x| x.into()).collect())
}

/// A span: its name and fields.
pub type SpanSeen = (String, BTreeMap<String, String>);

/// One event as the subscriber saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub level: Level,
    pub target: String,
    /// The fields, `message` included, each as `Display`/`Debug` text.
    pub fields: BTreeMap<String, String>,
    /// The innermost span it happened in: its name and fields.
    pub span: Option<SpanSeen>,
}

impl Seen {
    pub fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Keeps every event; every span and event is enabled.
#[derive(Clone, Default)]
pub struct Capture {
    events: Arc<Mutex<Vec<Seen>>>,
    spans: Arc<Mutex<Vec<SpanSeen>>>,
    stack: Arc<Mutex<Vec<u64>>>,
}

impl Capture {
    pub fn events(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let mut spans = self.spans.lock().unwrap();
        spans.push((span.metadata().name().to_owned(), fields.0));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = self
            .stack
            .lock()
            .unwrap()
            .last()
            .map(|&id| self.spans.lock().unwrap()[id as usize - 1].clone());
        self.events.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields: fields.0,
            span,
        });
    }
    fn enter(&self, span: &Id) {
        self.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.stack.lock().unwrap().pop();
    }
}

/// Runs `f` with a fresh capturing subscriber and returns its output and every event.
pub fn with_tracing<R>(f: impl FnOnce() -> R) -> (R, Vec<Seen>) {
    let capture = Capture::default();
    let out = tracing::subscriber::with_default(capture.clone(), f);
    (out, capture.events())
}

/// `[(k, v), ...]` as a field map.
pub fn fields(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
