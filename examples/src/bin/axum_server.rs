//! An axum server one can poke ([`bulwark_examples::server`]): `GET /price` is an ordinary
//! `async fn` handler behind bulwark's tower layers, calling a scripted flaky downstream
//! through a client stack of more layers; `GET /stats` shows the breaker, limiter and
//! bulkhead, `GET /metrics` every policy in Prometheus text format; `POST /downstream/..`
//! breaks or heals the downstream. It runs until Ctrl-C (or `--for`).
//!
//! ```text
//! --port N         port on 127.0.0.1 (default 3000; 0: pick a free one)
//! --faults SCRIPT  downstream behaviour by time since start, e.g. "5s:fail,15s:stall,22s:slow,28s:ok"
//!                  (ok until the first step): ok = answers in 50 ms; fail = fails after 5 ms;
//!                  stall = hangs until the attempt timeout cuts it; slow = answers in 150 ms
//!                  (above normal, under the 200 ms attempt timeout). A call keeps the
//!                  behaviour of the instant it started.
//! --for SECONDS    exit after this long (default: run until Ctrl-C)
//! --waits W        what the retry waits out: breaker (default), all, nothing
//! ```
//!
//! The first line on stdout is `listening on 127.0.0.1:PORT`.
//!
//! `cargo run -p bulwark-examples --bin axum_server`, then
//! `curl -i localhost:3000/price`, `curl -X POST localhost:3000/downstream/fail`,
//! `curl localhost:3000/stats`, `curl localhost:3000/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use bulwark::pipeline::Waits;
use bulwark_examples::parse_duration;
use bulwark_examples::server::{Script, Settings, prometheus, router};
use bulwark_observe::MetricsHooks;

struct Options {
    port: u16,
    script: Script,
    run_for: Option<Duration>,
    waits: Waits,
}

const USAGE: &str =
    "usage: axum_server [--port N] [--faults SCRIPT] [--for SECONDS] [--waits breaker|all|nothing]
       serves on 127.0.0.1 (port 3000 by default) until Ctrl-C or until --for has passed";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        port: 3000,
        script: Script::default(),
        run_for: None,
        waits: Waits::Breaker,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                opts.port = v.parse().map_err(|_| format!("--port {v:?}: not a port"))?;
            }
            "--faults" => opts.script = Script::parse(value()?)?,
            "--for" => {
                let d = parse_duration(value()?)?;
                if d > Duration::from_secs(3600) || d.is_zero() {
                    return Err("--for: between 1 ms and 3600 s".into());
                }
                opts.run_for = Some(d);
            }
            "--waits" => {
                opts.waits = match value()?.as_str() {
                    "breaker" => Waits::Breaker,
                    "all" => Waits::All,
                    "nothing" => Waits::Nothing,
                    other => return Err(format!("--waits {other:?}: breaker, all or nothing")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

/// Ctrl-C, or `--for` passing, whichever comes first.
async fn shutdown(run_for: Option<Duration>) {
    let limit = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("axum_server: Ctrl-C, exiting"),
        () = limit => eprintln!("axum_server: --for has passed, exiting"),
    }
}

async fn serve(opts: Options) -> std::io::Result<()> {
    let settings = Settings {
        waits: opts.waits,
        ..Settings::DEFAULT
    };
    // The process's recorder: every `MetricsHooks` series lands in it, `/metrics` renders it
    // (no listener of the exporter's own: axum serves the text).
    let metrics = prometheus()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    MetricsHooks::describe();
    // The exporter's upkeep (it drains its histograms' pending samples), as its docs ask of a
    // caller that serves the handle itself.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let faults = opts.script.render();
    let app = router(settings, opts.script, metrics);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    // The first line on stdout, for whoever started us (stdout is line-buffered).
    println!("listening on {}", listener.local_addr()?);
    eprintln!(
        "axum_server: faults {:?}, {}; {settings:?}",
        faults,
        match opts.run_for {
            Some(d) => format!("exiting after {d:?}"),
            None => "Ctrl-C to stop".into(),
        }
    );
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown(opts.run_for))
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_args(&args) {
        Ok(opts) => serve(opts).await,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("axum_server: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let o = parse_args(&args("--port 0 --faults 1s:fail --for 2 --waits nothing")).unwrap();
        assert_eq!(
            (o.port, o.run_for, o.waits),
            (0, Some(Duration::from_secs(2)), Waits::Nothing)
        );
        let o = parse_args(&[]).unwrap();
        assert_eq!((o.port, o.run_for), (3000, None));
        assert!(parse_args(&args("--for 3601")).is_err());
        assert!(parse_args(&args("--port x")).is_err());
    }
}
