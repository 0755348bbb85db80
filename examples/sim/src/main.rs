//! `bulwark-sim`: compare resilience policies against a simulated downstream, before an
//! incident does it for you. Run with `--help`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant as WallClock;

use bulwark_sim::engine::run;
use bulwark_sim::policy::Policy;
use bulwark_sim::report::{summary_text, write_all};
use bulwark_sim::scenario::{BUILTIN, DEFAULT_SCENARIO, Scenario};

const HELP_HEAD: &str = "\
bulwark-sim: run bulwark's real circuit breaker, retry, budget, rate limiter, bulkhead and
timeouts (composed by bulwark::pipeline::Pipeline) for many simulated clients against a
simulated downstream with capacity and queueing, on the mock clock, and compare policies.
Deterministic: the same seed gives the same numbers.

USAGE:
    cargo run -p bulwark-sim --bin bulwark-sim -- [OPTIONS]

With no options: scenario `outage`, three policies (no protection, retry only, full pipeline).

OPTIONS:
    -s, --scenario NAME|FILE   a built-in scenario (below) or a TOML scenario file
    -p, --policies FILE        a TOML file of [[policy]] tables (default: the three above)
    -o, --out DIR              where the report goes (default: target/bulwark-sim)
        --seed N               override the scenario's seed
        --duration D           override the scenario's duration (e.g. 30s, 2m)
        --list                 list the built-in scenarios and exit
    -q, --quiet                no progress bar
    -h, --help                 this text
";

const HELP_FILES: &str = "
SCENARIO FILES (TOML; examples in examples/sim/scenarios/):
    name = \"my outage\"            description = \"...\"
    duration = \"60s\"              resolution = \"250ms\"   # time bucket of plots and CSV
    seed = 1                      max_requests = 1000000000  # stop sending after this many
    [clients]   mode = \"open\", rate = 1500                 # requests/s, Poisson arrivals
            or  mode = \"closed\", clients = 100, think = \"50ms\", requests_per_client = 10,
                start_together = false
    [downstream]  replicas = 1, concurrency = 64, queue = 512, latency = \"20ms\" (median,
                  log-normal), latency_sigma = 0.5, errors = 0.001, overload_errors = 0.0,
                  slowdown = 0.5, reject_latency = \"1ms\", occ = false
    [[phase]]   from = \"20s\", until = \"35s\", label = \"outage\", replica = 0 (optional),
                refuse = true | capacity = 0.5 | latency_factor = 8 | errors = 0.2 |
                rate_factor = 2

POLICY FILES (TOML; examples in examples/sim/policies/):
    [[policy]]  name = \"...\", attempt_timeout = \"250ms\", total_timeout = \"1s\",
                waits = \"breaker\" | \"all\" | \"nothing\",
                breaker_window = 100 (calls: 10, 20, 50, 100, 200, 500, 1000) | \"time\" | \"none\"
    The next four tables are the core's Config types (feature `serde`), one key per
    builder method, checked by the core as they are read:
    [policy.retry]     max_attempts, max_elapsed, max_retry_after, seed,
                       backoff = { exponential = \"50ms\", multiplier = 2, max = \"1s\" }
                               | { constant = \"100ms\" } | { linear = \"100ms\", step = \"50ms\", max = .. },
                       jitter = \"none\" | \"full\" | \"equal\" | \"decorrelated\" | { proportional = 20 }
    [policy.breaker]   consecutive_failures, failure_rate, minimum_calls, time_window,
                       slow_calls = { threshold = \"500ms\", percent = 80 }, open_for,
                       open_growth = { multiplier = 2, max = \"30s\" }, open_jitter,
                       half_open = { probes = 1, successes_to_close = 1 },
                       half_open_verdict = \"first_failure\" | \"rate\", max_half_open, seed
    [policy.limiter]   rate, per = \"1s\", burst, seed (inside a pipeline it answers at once)
    [policy.bulkhead]  max_concurrent (inside a pipeline it answers at once)
    [policy.budget]    retry_percent, min_per_second = 0, max_tokens = 100 (the simulator's)
    Durations are written \"250ms\", \"1.5s\", \"2m\". An invalid value is reported with the
    file, line and field, in the core's words.

OUTPUT (in --out): summary.txt, series.csv, series.json, downstream_load.svg, success_rate.svg,
    latency_p99.svg, latency_p999.svg, latency_p50.svg, downstream_concurrency.svg,
    breaker_open.svg,
    report.html.
";

/// Prints to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn say(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

fn help() -> String {
    let mut s = String::from(HELP_HEAD);
    s.push_str("\nBUILT-IN SCENARIOS:\n");
    for (name, what) in BUILTIN {
        s.push_str(&format!("    {name:<14} {what}\n"));
    }
    s.push_str(HELP_FILES);
    s
}

struct Args {
    scenario: Option<String>,
    policies: Option<PathBuf>,
    out: PathBuf,
    seed: Option<u64>,
    duration: Option<String>,
    quiet: bool,
}

enum Parsed {
    Run(Args),
    Print(String),
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut a = Args {
        scenario: None,
        policies: None,
        out: PathBuf::from("target/bulwark-sim"),
        seed: None,
        duration: None,
        quiet: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Print(help())),
            "--list" => {
                let mut s = String::new();
                for (name, what) in BUILTIN {
                    s.push_str(&format!("{name:<14} {what}\n"));
                }
                return Ok(Parsed::Print(s));
            }
            "-s" | "--scenario" => a.scenario = Some(value("--scenario")?),
            "-p" | "--policies" => a.policies = Some(PathBuf::from(value("--policies")?)),
            "-o" | "--out" => a.out = PathBuf::from(value("--out")?),
            "--seed" => {
                let v = value("--seed")?;
                a.seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed: `{v}` is not a number"))?,
                );
            }
            "--duration" => a.duration = Some(value("--duration")?),
            "-q" | "--quiet" => a.quiet = true,
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    Ok(Parsed::Run(a))
}

fn load_scenario(a: &Args) -> Result<Scenario, String> {
    let name = a.scenario.as_deref().unwrap_or(DEFAULT_SCENARIO);
    let mut s = match Scenario::builtin(name) {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(name).map_err(|e| {
                format!("`{name}` is neither a built-in scenario (--list) nor a readable file: {e}")
            })?;
            Scenario::from_toml(name, &text).map_err(|e| e.to_string())?
        }
    };
    if let Some(seed) = a.seed {
        s.seed = seed;
    }
    if let Some(d) = &a.duration {
        s.duration = bulwark::duration::parse(d).map_err(|e| format!("--duration: `{d}`: {e}"))?;
        // A long run keeps about 2400 points per series at most (250 ms steps).
        let points = s.duration.as_nanos() / s.resolution.as_nanos().max(1);
        if points > 2_400 {
            let ms = (s.duration.as_millis() / 2_400).max(1) as u64;
            s.resolution = std::time::Duration::from_millis(ms.div_ceil(250) * 250);
        }
        s.validate()
            .map_err(|(f, m)| format!("--duration: {f} {m}"))?;
    }
    Ok(s)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Print(text)) => {
            say(&text);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(a)) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario = match load_scenario(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let policies = match &args.policies {
        None => Policy::defaults(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            match Policy::from_toml(&path.display().to_string(), &text) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let wall = WallClock::now();
    let expected = scenario.expected_requests() * policies.len() as u64;
    let bar = progress_bar(expected, args.quiet);
    let mut results = Vec::new();
    let mut done = 0u64;
    for p in &policies {
        if let Some(b) = &bar {
            b.set_message(p.name.clone());
        }
        let mut progress = |n: u64| {
            if let Some(b) = &bar {
                b.set_position(done + n);
            }
        };
        match run(&scenario, p, &mut progress) {
            Ok(r) => {
                done += r.summary.requests;
                results.push(r);
            }
            Err(e) => {
                eprintln!("error: policy `{}`: {e}", p.name);
                return ExitCode::from(2);
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let elapsed = wall.elapsed();
    say(&summary_text(&scenario, &policies, &results));
    let simulated: u64 = results.iter().map(|r| r.summary.requests).sum();
    say(&format!(
        "\n{simulated} simulated requests in {:.2} s of wall time ({:.2} M/s).\n",
        elapsed.as_secs_f64(),
        simulated as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
    ));
    match write_all(&args.out, &scenario, &policies, &results) {
        Ok(paths) => {
            let mut text = format!("\nWritten to {}:\n", args.out.display());
            for p in paths {
                text.push_str(&format!("  {}\n", p.display()));
            }
            text.push_str(&format!(
                "Open {} in a browser for the plots.\n",
                args.out.join("report.html").display()
            ));
            say(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: writing the report to {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

fn progress_bar(expected: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    // Only long runs get a bar; indicatif hides it when stderr is not a terminal.
    if quiet || expected < 2_000_000 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(expected);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg:<16} [{bar:40}] {pos}/{len} requests ({eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}
