//! Reading TOML files: errors that name the file, the line and the field, and the scenario
//! schema. (The policy schema lives in [`policy`](crate::policy), next to the core configs it
//! reads.)
//!
//! Every file is read in one pass of `serde` (the core's own `Config` types included, with
//! the core's `serde` feature); an error is then placed with the file's parsed key and value
//! spans: the line and the dotted path (`policy[1].breaker.open_for`) of the key
//! it is about.

use core::ops::Range;
use core::time::Duration;

use bulwark::duration::Text;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::scenario::{Clients, Downstream, Phase, Scenario};

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
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A TOML file being read: its text, and the span of each of its keys and values (when it
/// parses), to say where an error is.
pub(crate) struct Doc<'a> {
    path: &'a str,
    text: &'a str,
    root: Option<DeTable<'a>>,
}

/// What [`Doc::walk`] visits: a key's dotted path, the key's span and its value.
type Visit<'v, 'a> = (String, Range<usize>, &'v toml::Spanned<DeValue<'a>>);

impl<'a> Doc<'a> {
    pub(crate) fn new(path: &'a str, text: &'a str) -> Doc<'a> {
        let root = DeTable::parse(text).ok().map(toml::Spanned::into_inner);
        Doc { path, text, root }
    }

    /// The whole file as a `T`: a TOML syntax, type or value error (the core configs check
    /// their values as they are read) becomes a [`FileError`] at its key.
    pub(crate) fn read<T: DeserializeOwned>(&self) -> Result<T, FileError> {
        toml::from_str(self.text).map_err(|e| {
            let message = e.message().trim().to_string();
            let Some(span) = e.span() else {
                return self.error("", message);
            };
            match self.path_at(span.start) {
                Some(field) => self.error(&field, message),
                // Not TOML: no keys to name, only the line.
                None => FileError {
                    path: self.path.to_string(),
                    line: Some(line_of(self.text, span.start)),
                    field: String::new(),
                    message,
                },
            }
        })
    }

    /// An error about `field` (a dotted path: `policy[1].breaker`), at the line of that key
    /// or of its nearest parent written in the file. When `field` is a table and `message`
    /// names one of the keys written in it, the error is about the first such key: the core's
    /// configuration errors name their setting (`max_attempts must be at least 1`, `circuit
    /// breaker config: open_growth.max is below open_for`), and serde reports them at the
    /// table being read.
    pub(crate) fn error(&self, field: &str, message: impl ToString) -> FileError {
        let message = message.to_string();
        let mut field = field.to_string();
        if let Some(v) = self.find(&field)
            && matches!(v.get_ref(), DeValue::Table(_))
        {
            let inside = format!("{field}.");
            let key = message
                .split(|c: char| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                })
                .filter_map(|word| self.key_in(&field, word.trim_end_matches('.')))
                .find(|path| path.starts_with(&inside));
            if let Some(k) = key {
                field = k;
            }
        }
        FileError {
            path: self.path.to_string(),
            line: self.span_near(&field).map(|s| line_of(self.text, s.start)),
            field,
            message,
        }
    }

    /// The path of `key` (`max_attempts`, `backoff.max`) looked up in `table` and then in its
    /// parents (an inline table's error names it with its own key).
    fn key_in(&self, table: &str, key: &str) -> Option<String> {
        if key.is_empty() {
            return None;
        }
        let mut t = table;
        loop {
            let path = if t.is_empty() {
                key.to_string()
            } else {
                format!("{t}.{key}")
            };
            if self.find(&path).is_some() {
                return Some(path);
            }
            if t.is_empty() {
                return None;
            }
            t = t.rfind(['.', '[']).map_or("", |i| &t[..i]);
        }
    }

    /// Every key and array element of the file, parents before children.
    fn walk(&self) -> Vec<Visit<'_, 'a>> {
        fn go<'v, 'a>(path: &str, v: &'v toml::Spanned<DeValue<'a>>, out: &mut Vec<Visit<'v, 'a>>) {
            match v.get_ref() {
                DeValue::Table(t) => {
                    for (k, v) in t.iter() {
                        let p = if path.is_empty() {
                            k.get_ref().to_string()
                        } else {
                            format!("{path}.{}", k.get_ref())
                        };
                        out.push((p.clone(), k.span(), v));
                        go(&p, v, out);
                    }
                }
                DeValue::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        let p = format!("{path}[{i}]");
                        out.push((p.clone(), v.span(), v));
                        go(&p, v, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            for (k, v) in root.iter() {
                let p = k.get_ref().to_string();
                out.push((p.clone(), k.span(), v));
                go(&p, v, &mut out);
            }
        }
        out
    }

    /// The path of the smallest key or value that holds byte `at`.
    fn path_at(&self, at: usize) -> Option<String> {
        let holds = |s: &Range<usize>| s.contains(&at) || (s.is_empty() && s.start == at);
        self.walk()
            .into_iter()
            .flat_map(|(p, key, v)| [(p.clone(), key), (p, v.span())])
            .filter(|(_, s)| holds(s))
            .min_by_key(|(_, s)| s.len())
            .map(|(p, _)| p)
    }

    /// The value at `path`.
    fn find(&self, path: &str) -> Option<&toml::Spanned<DeValue<'a>>> {
        self.walk()
            .into_iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, _, v)| v)
    }

    /// The span of the key at `path`, or of its nearest parent in the file.
    fn span_near(&self, path: &str) -> Option<Range<usize>> {
        let all = self.walk();
        let mut p = path;
        loop {
            if let Some((_, key, _)) = all.iter().find(|(q, _, _)| q == p) {
                return Some(key.clone());
            }
            p = &p[..p.rfind(['.', '['])?];
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioToml {
    name: Option<String>,
    description: Option<String>,
    duration: Option<Text>,
    resolution: Option<Text>,
    seed: Option<u64>,
    max_requests: Option<u64>,
    clients: Option<ClientsToml>,
    downstream: Option<Downstream>,
    #[serde(default)]
    phase: Vec<Phase>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Open,
    Closed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsToml {
    #[serde(default)]
    mode: Mode,
    rate: Option<f64>,
    clients: Option<u32>,
    think: Option<Text>,
    requests_per_client: Option<u64>,
    start_together: Option<bool>,
}

/// [`Scenario::from_toml`].
pub(crate) fn scenario_from_toml(path: &str, text: &str) -> Result<Scenario, FileError> {
    let doc = Doc::new(path, text);
    let raw: ScenarioToml = doc.read()?;
    let name = raw.name.unwrap_or_else(|| {
        std::path::Path::new(path)
            .file_stem()
            .map_or("custom".into(), |s| s.to_string_lossy().into_owned())
    });
    let mut s = Scenario::base(
        &name,
        raw.description.as_deref().unwrap_or("custom scenario"),
    );
    if let Some(d) = raw.duration {
        s.duration = d.0;
    }
    if let Some(d) = raw.resolution {
        s.resolution = d.0;
    }
    if let Some(seed) = raw.seed {
        s.seed = seed;
    }
    if let Some(m) = raw.max_requests {
        s.max_requests = m;
    }
    if let Some(c) = raw.clients {
        s.clients = match c.mode {
            Mode::Open => Clients::Open {
                rate: c.rate.unwrap_or(1500.0),
            },
            Mode::Closed => Clients::Closed {
                clients: c.clients.unwrap_or(100),
                think: c.think.map_or(Duration::ZERO, |t| t.0),
                requests_per_client: c.requests_per_client,
                start_together: c.start_together.unwrap_or(false),
            },
        };
    }
    if let Some(d) = raw.downstream {
        s.downstream = d;
    }
    s.phases = raw.phase;
    for (i, p) in s.phases.iter_mut().enumerate() {
        if p.label.is_empty() {
            p.label = format!("phase {i}");
        }
    }
    s.validate()
        .map_err(|(field, message)| doc.error(&field, message))?;
    Ok(s)
}
