//! Reading TOML files: errors that name the file, the line and the field, and the scenario
//! schema. (The policy schema lives in [`policy`](crate::policy), next to the core configs it
//! maps onto.)

use core::ops::Range;
use core::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::scenario::{Clients, Downstream, Phase, Scenario};
use crate::units::parse_duration;

/// A problem in a policy or scenario file.
///
/// ```
/// use bulwark_sim::files::FileError;
/// let e = FileError { path: "p.toml".into(), line: Some(4), field: "retry.max_attempts".into(), message: "must be at least 1".into() };
/// assert_eq!(e.to_string(), "p.toml:4: retry.max_attempts: must be at least 1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    /// The file.
    pub path: String,
    /// The line (1-based), when known.
    pub line: Option<usize>,
    /// The field, as a dotted path (`policy[1].breaker.open_for`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl core::fmt::Display for FileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// The 1-based line of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The field a TOML parse error points at: the key on its line, under the nearest table
/// header above it.
fn field_at(text: &str, at: usize) -> String {
    let line = line_of(text, at);
    let lines: Vec<&str> = text.lines().collect();
    let key = lines
        .get(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    let table = lines[..(line - 1).min(lines.len())]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k,
        (Some(t), None) => t,
        (None, None) => String::new(),
    }
}

/// A TOML (syntax or type) error as a [`FileError`].
pub(crate) fn toml_error(path: &str, text: &str, e: &toml::de::Error) -> FileError {
    let span = e.span();
    FileError {
        path: path.to_string(),
        line: span.clone().map(|s| line_of(text, s.start)),
        field: span.map(|s| field_at(text, s.start)).unwrap_or_default(),
        message: e.message().trim().to_string(),
    }
}

/// Builds [`FileError`]s for one file.
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a str,
    pub(crate) text: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err(&self, span: Range<usize>, field: &str, message: impl ToString) -> FileError {
        FileError {
            path: self.path.to_string(),
            line: Some(line_of(self.text, span.start)),
            field: field.to_string(),
            message: message.to_string(),
        }
    }

    /// A duration field (`"250ms"`).
    pub(crate) fn duration(&self, v: &Spanned<String>, field: &str) -> Result<Duration, FileError> {
        parse_duration(v.get_ref()).map_err(|m| self.err(v.span(), field, m))
    }

    pub(crate) fn opt_duration(
        &self,
        v: &Option<Spanned<String>>,
        field: &str,
    ) -> Result<Option<Duration>, FileError> {
        v.as_ref().map(|v| self.duration(v, field)).transpose()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioToml {
    name: Option<String>,
    description: Option<String>,
    duration: Option<Spanned<String>>,
    resolution: Option<Spanned<String>>,
    seed: Option<u64>,
    max_requests: Option<Spanned<u64>>,
    clients: Option<ClientsToml>,
    downstream: Option<DownstreamToml>,
    #[serde(default)]
    phase: Vec<Spanned<PhaseToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsToml {
    mode: Option<Spanned<String>>,
    rate: Option<Spanned<f64>>,
    clients: Option<u32>,
    think: Option<Spanned<String>>,
    requests_per_client: Option<u64>,
    start_together: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownstreamToml {
    replicas: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    queue: Option<u32>,
    latency: Option<Spanned<String>>,
    latency_sigma: Option<Spanned<f64>>,
    errors: Option<Spanned<f64>>,
    overload_errors: Option<Spanned<f64>>,
    slowdown: Option<Spanned<f64>>,
    reject_latency: Option<Spanned<String>>,
    occ: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseToml {
    label: Option<String>,
    from: Spanned<String>,
    until: Spanned<String>,
    replica: Option<Spanned<u32>>,
    capacity: Option<Spanned<f64>>,
    latency_factor: Option<Spanned<f64>>,
    errors: Option<Spanned<f64>>,
    #[serde(default)]
    refuse: bool,
    rate_factor: Option<Spanned<f64>>,
}

/// [`Scenario::from_toml`].
pub(crate) fn scenario_from_toml(path: &str, text: &str) -> Result<Scenario, FileError> {
    let raw: ScenarioToml = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    let cx = Ctx { path, text };
    let name = raw.name.unwrap_or_else(|| {
        std::path::Path::new(path)
            .file_stem()
            .map_or("custom".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut s = Scenario::base(
        &name,
        raw.description.as_deref().unwrap_or("custom scenario"),
    );
    // Where each field is, for the checks after parsing.
    let mut spans: Vec<(String, Range<usize>)> = Vec::new();
    let mut note = |f: &str, sp: Range<usize>| spans.push((f.to_string(), sp));
    if let Some(d) = &raw.duration {
        s.duration = cx.duration(d, "duration")?;
        note("duration", d.span());
    }
    if let Some(d) = &raw.resolution {
        s.resolution = cx.duration(d, "resolution")?;
        note("resolution", d.span());
    }
    if let Some(seed) = raw.seed {
        s.seed = seed;
    }
    if let Some(m) = &raw.max_requests {
        s.max_requests = *m.get_ref();
        note("max_requests", m.span());
    }
    if let Some(c) = &raw.clients {
        let mode = c.mode.as_ref().map_or("open", |m| m.get_ref().as_str());
        s.clients = match mode {
            "open" => {
                let rate = c.rate.as_ref().map_or(1500.0, |r| *r.get_ref());
                if let Some(r) = &c.rate {
                    note("clients.rate", r.span());
                }
                Clients::Open { rate }
            }
            "closed" => Clients::Closed {
                clients: c.clients.unwrap_or(100),
                think: cx
                    .opt_duration(&c.think, "clients.think")?
                    .unwrap_or(Duration::ZERO),
                requests_per_client: c.requests_per_client,
                start_together: c.start_together.unwrap_or(false),
            },
            other => {
                let m = c.mode.as_ref().map(|m| m.span()).unwrap_or(0..0);
                return Err(cx.err(
                    m,
                    "clients.mode",
                    format!("`{other}` is not a client mode: \"open\" or \"closed\""),
                ));
            }
        };
    }
    if let Some(d) = &raw.downstream {
        let b = Downstream::default();
        let num = |v: &Option<Spanned<f64>>, dflt: f64| v.as_ref().map_or(dflt, |v| *v.get_ref());
        s.downstream = Downstream {
            replicas: d.replicas.as_ref().map_or(b.replicas, |v| *v.get_ref()),
            concurrency: d
                .concurrency
                .as_ref()
                .map_or(b.concurrency, |v| *v.get_ref()),
            queue: d.queue.unwrap_or(b.queue),
            latency: cx
                .opt_duration(&d.latency, "downstream.latency")?
                .unwrap_or(b.latency),
            latency_sigma: num(&d.latency_sigma, b.latency_sigma),
            errors: num(&d.errors, b.errors),
            overload_errors: num(&d.overload_errors, b.overload_errors),
            slowdown: num(&d.slowdown, b.slowdown),
            reject_latency: cx
                .opt_duration(&d.reject_latency, "downstream.reject_latency")?
                .unwrap_or(b.reject_latency),
            occ: d.occ.unwrap_or(false),
        };
        for (f, v) in [
            ("downstream.latency_sigma", &d.latency_sigma),
            ("downstream.errors", &d.errors),
            ("downstream.overload_errors", &d.overload_errors),
            ("downstream.slowdown", &d.slowdown),
        ] {
            if let Some(v) = v {
                note(f, v.span());
            }
        }
        if let Some(v) = &d.replicas {
            note("downstream.replicas", v.span());
        }
        if let Some(v) = &d.concurrency {
            note("downstream.concurrency", v.span());
        }
    }
    for (i, p) in raw.phase.iter().enumerate() {
        let f = |n: &str| format!("phase[{i}].{n}");
        let ph = p.get_ref();
        note(&f("until"), ph.until.span());
        for (n, v) in [
            ("capacity", &ph.capacity),
            ("latency_factor", &ph.latency_factor),
            ("errors", &ph.errors),
            ("rate_factor", &ph.rate_factor),
        ] {
            if let Some(v) = v {
                note(&f(n), v.span());
            }
        }
        if let Some(r) = &ph.replica {
            note(&f("replica"), r.span());
        }
        s.phases.push(Phase {
            label: ph.label.clone().unwrap_or_else(|| format!("phase {i}")),
            from: cx.duration(&ph.from, &f("from"))?,
            until: cx.duration(&ph.until, &f("until"))?,
            replica: ph.replica.as_ref().map(|r| *r.get_ref()),
            capacity: ph.capacity.as_ref().map(|v| *v.get_ref()),
            latency_factor: ph.latency_factor.as_ref().map(|v| *v.get_ref()),
            errors: ph.errors.as_ref().map(|v| *v.get_ref()),
            refuse: ph.refuse,
            rate_factor: ph.rate_factor.as_ref().map(|v| *v.get_ref()),
        });
    }
    s.validate().map_err(|(field, message)| {
        let span = spans
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, s)| s.clone());
        FileError {
            path: path.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            field,
            message,
        }
    })?;
    Ok(s)
}
