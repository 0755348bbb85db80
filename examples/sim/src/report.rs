//! What a run writes: the terminal summary, `series.csv` and `series.json`, one SVG plot per
//! metric and `report.html` tying them together.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::metrics::{RunResult, Series};
use crate::policy::Policy;
use crate::scenario::{Clients, Scenario};
use crate::units::human;

/// One line describing the scenario's load and downstream.
///
/// ```
/// use bulwark_sim::{report::describe_scenario, scenario::Scenario};
/// let s = Scenario::builtin("steady").unwrap();
/// assert!(describe_scenario(&s).contains("1500 req/s"));
/// ```
pub fn describe_scenario(s: &Scenario) -> String {
    let d = &s.downstream;
    let clients = match &s.clients {
        Clients::Open { rate } => format!("open loop at {rate:.0} req/s"),
        Clients::Closed {
            clients,
            think,
            requests_per_client,
            ..
        } => format!(
            "closed loop: {clients} clients, think {}{}",
            human(*think),
            requests_per_client.map_or(String::new(), |n| format!(
                ", {n} request{} each",
                if n == 1 { "" } else { "s" }
            ))
        ),
    };
    let ds = if d.occ {
        format!(
            "an optimistic-concurrency resource (median {})",
            human(d.latency)
        )
    } else {
        format!(
            "{} replica{} × {} slots (queue {}), median {}",
            d.replicas,
            if d.replicas == 1 { "" } else { "s" },
            d.concurrency,
            d.queue,
            human(d.latency)
        )
    };
    format!(
        "{} of {clients}; downstream: {ds}; seed {}",
        human(s.duration),
        s.seed
    )
}

/// The summary table, one row per policy, as printed and written to `summary.txt`.
///
/// ```
/// use bulwark_sim::{engine::run, policy::Policy, report::summary_text, scenario::Scenario};
/// use core::time::Duration;
/// let mut s = Scenario::builtin("steady").unwrap();
/// s.duration = Duration::from_secs(2);
/// let p = Policy::no_protection();
/// let r = run(&s, &p, &mut ()).unwrap();
/// let text = summary_text(&s, &[p], &[r]);
/// assert!(text.contains("no protection"));
/// assert!(text.contains("load ×"));
/// ```
pub fn summary_text(scenario: &Scenario, policies: &[Policy], results: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {}: {}", scenario.name, scenario.description);
    let _ = writeln!(out, "{}", describe_scenario(scenario));
    if let Some((a, b)) = scenario.incident() {
        let _ = writeln!(out, "incident: {} to {}", human(a), human(b));
    }
    let _ = writeln!(out);
    let w = policies
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>5}  {:>10}  {:>10}  {:>9}",
        "policy",
        "requests",
        "success",
        "p50",
        "p99",
        "p99.9",
        "load ×",
        "peak",
        "detect",
        "recover",
        "open"
    );
    for r in results {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>7.2} %  {:>9}  {:>9}  {:>9}  {:>6.3}  {:>5}  {:>10}  {:>10}  {:>9}",
            s.policy,
            s.requests,
            s.success_rate * 100.0,
            human(s.p50),
            human(s.p99),
            human(s.p999),
            s.amplification,
            s.peak_concurrency,
            s.detect.to_string(),
            s.recover.to_string(),
            s.time_open.map_or("–".to_string(), human),
        );
    }
    let _ = writeln!(out);
    for (p, r) in policies.iter().zip(results) {
        if r.summary.truncated {
            let _ = writeln!(
                out,
                "WARNING: {}: stopped sending after {} requests (max_requests, or time stopped \
                 advancing: instant answers and no think time)",
                p.name, r.summary.requests
            );
        }
        let e = &r.summary.ends;
        let _ = writeln!(out, "{}: {}", p.name, p.describe());
        let _ = writeln!(
            out,
            "  ended: {} ok, {} failed, {} circuit open, {} rate limited, {} bulkhead full, \
             {} attempt timeout, {} total timeout, {} unfinished; {} downstream calls",
            e.success,
            e.failed,
            e.circuit_open,
            e.rate_limited,
            e.bulkhead_full,
            e.attempt_timeout,
            e.timeout,
            e.unfinished,
            r.summary.downstream_calls
        );
    }
    let _ = writeln!(
        out,
        "\nload × = downstream calls / client requests; peak = most requests served or queued \
         at the downstream at once;\ndetect = incident start → first breaker opening; \
         recover = incident end → success rate back to 95 % of before, for 1 s;\n\
         latencies are arrival → answer of every request, successful or not (±3 %)."
    );
    out
}

/// The series of every policy as CSV: one row per policy and time bucket.
///
/// ```
/// use bulwark_sim::{engine::run, policy::Policy, report::series_csv, scenario::Scenario};
/// use core::time::Duration;
/// let mut s = Scenario::builtin("steady").unwrap();
/// s.duration = Duration::from_secs(1);
/// let p = Policy::no_protection();
/// let r = run(&s, &p, &mut ()).unwrap();
/// let csv = series_csv(&[p], &[r]);
/// assert!(csv.starts_with("policy,t_s,requests"));
/// assert_eq!(csv.lines().count(), 1 + 4); // 1 s in 250 ms buckets
/// ```
pub fn series_csv(policies: &[Policy], results: &[RunResult]) -> String {
    let mut out = String::from(
        "policy,t_s,requests,completed,successes,success_rate,downstream_calls,downstream_rps,\
         peak_concurrency,p50_ms,p99_ms,p999_ms,breaker_open_fraction\n",
    );
    let num = |v: f64| {
        if v.is_finite() {
            format!("{v:.4}")
        } else {
            String::new()
        }
    };
    for (p, r) in policies.iter().zip(results) {
        let s = &r.series;
        let name = p.name.replace(['"', ','], " ");
        for i in 0..s.t.len() {
            let _ = writeln!(
                out,
                "{name},{:.3},{},{},{},{},{},{},{},{},{},{},{}",
                s.t[i],
                s.requests[i],
                s.completed[i],
                s.successes[i],
                num(s.success_rate[i]),
                s.downstream_calls[i],
                num(s.downstream_rps[i]),
                s.peak_concurrency[i],
                num(s.p50_ms[i]),
                num(s.p99_ms[i]),
                num(s.p999_ms[i]),
                num(s.open_fraction[i]),
            );
        }
    }
    out
}

/// The series of every policy as JSON, the columns of [`series_csv`] as arrays:
/// `{"scenario", "resolution_s", "policies": [{"name", "series": {"t_s": [..], ..}}]}`, with
/// `null` where the CSV has an empty cell.
///
/// ```
/// use bulwark_sim::{engine::run, policy::Policy, report::series_json, scenario::Scenario};
/// use core::time::Duration;
/// let mut s = Scenario::builtin("steady").unwrap();
/// s.duration = Duration::from_secs(1);
/// let p = Policy::no_protection();
/// let mut r = run(&s, &p, &mut ()).unwrap();
/// r.series.p99_ms[1] = f64::NAN; // as when no request ends in a bucket
/// let json: serde_json::Value = serde_json::from_str(&series_json(&s, &[p], &[r])).unwrap();
/// assert_eq!(json["resolution_s"], 0.25);
/// let run = &json["policies"][0];
/// assert_eq!(run["name"], "no protection");
/// assert_eq!(run["series"]["t_s"], serde_json::json!([0.0, 0.25, 0.5, 0.75]));
/// assert!(run["series"]["p99_ms"][0].as_f64().unwrap() > 0.0);
/// assert!(run["series"]["p99_ms"][1].is_null());
/// ```
pub fn series_json(scenario: &Scenario, policies: &[Policy], results: &[RunResult]) -> String {
    #[derive(serde::Serialize)]
    struct Run<'a> {
        name: &'a str,
        series: &'a Series,
    }
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        scenario: &'a str,
        resolution_s: f64,
        policies: Vec<Run<'a>>,
    }
    let doc = Doc {
        scenario: &scenario.name,
        resolution_s: scenario.resolution.as_secs_f64(),
        policies: policies
            .iter()
            .zip(results)
            .map(|(p, r)| Run {
                name: &p.name,
                series: &r.series,
            })
            .collect(),
    };
    // Only strings, numbers and arrays: serializing cannot fail.
    serde_json::to_string(&doc).unwrap_or_default()
}

/// One plot: a metric over time, one line per policy.
#[derive(Copy, Clone, Debug)]
pub struct Plot {
    /// File name (`downstream_load.svg`).
    pub file: &'static str,
    /// Title.
    pub title: &'static str,
    /// Y axis label.
    pub y: &'static str,
    /// The values of one policy's series.
    pub values: fn(&Series) -> Vec<f64>,
}

/// The plots a run writes.
pub const PLOTS: &[Plot] = &[
    Plot {
        file: "downstream_load.svg",
        title: "Downstream load (calls per second)",
        y: "calls/s",
        values: |s| s.downstream_rps.clone(),
    },
    Plot {
        file: "success_rate.svg",
        title: "Client success rate",
        y: "success %",
        values: |s| s.success_rate.iter().map(|v| v * 100.0).collect(),
    },
    Plot {
        file: "latency_p99.svg",
        title: "Client latency, p99 (ms)",
        y: "p99 ms",
        values: |s| s.p99_ms.clone(),
    },
    Plot {
        file: "latency_p999.svg",
        title: "Client latency, p99.9 (ms)",
        y: "p99.9 ms",
        values: |s| s.p999_ms.clone(),
    },
    Plot {
        file: "latency_p50.svg",
        title: "Client latency, p50 (ms)",
        y: "p50 ms",
        values: |s| s.p50_ms.clone(),
    },
    Plot {
        file: "downstream_concurrency.svg",
        title: "Requests served or queued at the downstream (peak per bucket)",
        y: "in flight",
        values: |s| s.peak_concurrency.iter().map(|&v| f64::from(v)).collect(),
    },
    Plot {
        file: "breaker_open.svg",
        title: "Circuit breaker open (fraction of each bucket)",
        y: "open",
        values: |s| s.open_fraction.clone(),
    },
];

const COLORS: [RGBColor; 8] = [
    RGBColor(220, 50, 47),
    RGBColor(38, 139, 210),
    RGBColor(133, 153, 0),
    RGBColor(108, 113, 196),
    RGBColor(203, 75, 22),
    RGBColor(42, 161, 152),
    RGBColor(211, 54, 130),
    RGBColor(88, 110, 117),
];

fn plot_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("plot: {e}"))
}

/// Draws `plot` for every policy into `path` (SVG), the scenario's phases shaded.
///
/// # Errors
///
/// The file could not be written.
pub fn write_plot(
    path: &Path,
    plot: &Plot,
    scenario: &Scenario,
    policies: &[Policy],
    results: &[RunResult],
) -> io::Result<()> {
    let series: Vec<Vec<f64>> = results.iter().map(|r| (plot.values)(&r.series)).collect();
    let t_end = scenario.duration.as_secs_f64();
    let y_max = series
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let y_top = if y_max <= 0.0 { 1.0 } else { y_max * 1.08 };
    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} · scenario {}", plot.title, scenario.name),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..t_end, 0.0..y_top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc(plot.y)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_err)?;
    for ph in &scenario.phases {
        let (a, b) = (ph.from.as_secs_f64(), ph.until.as_secs_f64().min(t_end));
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, 0.0), (b, y_top)],
                RGBColor(253, 234, 200).filled(),
            )))
            .map_err(plot_err)?;
    }
    for (k, (p, (vals, r))) in policies.iter().zip(series.iter().zip(results)).enumerate() {
        let color = COLORS[k % COLORS.len()];
        let t = &r.series.t;
        let half = if t.len() > 1 {
            (t[1] - t[0]) / 2.0
        } else {
            0.0
        };
        // Gaps (no data in a bucket) break the line.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, &v) in t.iter().zip(vals) {
            if v.is_finite() {
                if let Some(s) = segments.last_mut() {
                    s.push((x + half, v));
                }
            } else if segments.last().is_some_and(|s| !s.is_empty()) {
                segments.push(Vec::new());
            }
        }
        let mut first = true;
        for seg in segments.into_iter().filter(|s| !s.is_empty()) {
            let drawn = chart
                .draw_series(LineSeries::new(seg, color.stroke_width(2)))
                .map_err(plot_err)?;
            if first {
                drawn.label(p.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
                first = false;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The HTML page: the summary, the policies, every plot.
pub fn html(scenario: &Scenario, policies: &[Policy], summary: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>bulwark-sim: {name}</title>\
         <style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}}\
         img{{width:100%;border:1px solid #ddd;margin:.5em 0}}</style></head><body>\n\
         <h1>bulwark-sim: scenario {name}</h1>\n<p>{desc}</p>\n<p>{line}</p>\n",
        name = escape(&scenario.name),
        desc = escape(&scenario.description),
        line = escape(&describe_scenario(scenario)),
    );
    let _ = write!(out, "<h2>Policies</h2>\n<ul>\n");
    for p in policies {
        let _ = writeln!(
            out,
            "<li><b>{}</b>: {}</li>",
            escape(&p.name),
            escape(&p.describe())
        );
    }
    let _ = write!(
        out,
        "</ul>\n<h2>Summary</h2>\n<pre>{}</pre>\n<h2>Over time</h2>\n\
         <p>Shaded: the scenario's phases. Data: <a href=\"series.csv\">series.csv</a>, \
         <a href=\"series.json\">series.json</a>.</p>\n",
        escape(summary)
    );
    for plot in PLOTS {
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<img src=\"{}\" alt=\"{}\">",
            escape(plot.title),
            plot.file,
            escape(plot.title)
        );
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes everything into `dir` (created if needed): `summary.txt`, `series.csv`,
/// `series.json`, the SVG
/// plots and `report.html`. Returns the paths written.
///
/// # Errors
///
/// A file could not be written.
pub fn write_all(
    dir: &Path,
    scenario: &Scenario,
    policies: &[Policy],
    results: &[RunResult],
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let summary = summary_text(scenario, policies, results);
    let p = dir.join("summary.txt");
    std::fs::write(&p, &summary)?;
    written.push(p);
    let p = dir.join("series.csv");
    std::fs::write(&p, series_csv(policies, results))?;
    written.push(p);
    let p = dir.join("series.json");
    std::fs::write(&p, series_json(scenario, policies, results))?;
    written.push(p);
    for plot in PLOTS {
        let p = dir.join(plot.file);
        write_plot(&p, plot, scenario, policies, results)?;
        written.push(p);
    }
    let p = dir.join("report.html");
    std::fs::write(&p, html(scenario, policies, &summary))?;
    written.push(p);
    Ok(written)
}
