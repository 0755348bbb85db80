//! The command line: `--help`, a run into a directory, bad arguments.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bulwark-sim"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bulwark-sim-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn help_explains_scenarios_and_policy_files() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in bulwark_sim::scenario::BUILTIN.iter().map(|(n, _)| n) {
        assert!(text.contains(name), "--help does not name scenario {name}");
    }
    for needle in [
        "POLICY FILES",
        "SCENARIO FILES",
        "[policy.breaker]",
        "--out",
        "--seed",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn a_default_run_writes_the_report() {
    let dir = temp_dir("default");
    let out = bin()
        .args(["--duration", "25s", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for policy in ["no protection", "retry only", "full pipeline"] {
        assert!(text.contains(policy), "{text}");
    }
    assert!(text.contains("report.html"), "{text}");
    for f in [
        "summary.txt",
        "series.csv",
        "series.json",
        "downstream_load.svg",
        "success_rate.svg",
        "latency_p99.svg",
        "breaker_open.svg",
        "report.html",
    ] {
        let p = dir.join(f);
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 100, "{} missing or empty", p.display());
    }
    let svg = std::fs::read_to_string(dir.join("downstream_load.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("retry only"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("downstream_load.svg") && html.contains("full pipeline"));
    let csv = std::fs::read_to_string(dir.join("series.csv")).unwrap();
    // 25 s in 250 ms buckets, three policies, one header.
    assert_eq!(csv.lines().count(), 1 + 3 * 100);
    // series.json holds the same numbers, column by column, per policy.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("series.json")).unwrap()).unwrap();
    assert_eq!(json["scenario"], "outage");
    assert_eq!(json["resolution_s"], 0.25);
    let runs = json["policies"].as_array().unwrap();
    let names: Vec<_> = runs.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["no protection", "retry only", "full pipeline"]);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for (i, line) in csv.lines().skip(1).enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let run = &runs[i / 100];
        assert_eq!(cells[0], run["name"].as_str().unwrap());
        for (col, cell) in header.iter().zip(&cells).skip(1) {
            let v = &run["series"][*col][i % 100];
            if cell.is_empty() {
                // NaN (no request ended in the bucket): an empty cell, a null.
                assert!(v.is_null(), "{col}[{i}]: {v}");
            } else {
                let (c, j) = (cell.parse::<f64>().unwrap(), v.as_f64().unwrap());
                assert!(
                    (c - j).abs() <= 5e-4 * j.abs().max(1.0),
                    "{col}[{i}]: {c} vs {j}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_and_bad_arguments() {
    let dir = temp_dir("files");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = bin()
        .args(["--duration", "5s", "-q", "--scenario"])
        .arg(format!("{root}/scenarios/outage.toml"))
        .arg("--policies")
        .arg(format!("{root}/policies/example.toml"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("retry + budget"));
    let _ = std::fs::remove_dir_all(&dir);

    let out = bin()
        .args(["--scenario", "no-such-thing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a built-in scenario"));
    let out = bin().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let bad = temp_dir("bad-policy");
    std::fs::create_dir_all(&bad).unwrap();
    let file = bad.join("p.toml");
    std::fs::write(&file, "[[policy]]\n[policy.retry]\nmax_attempts = 0\n").unwrap();
    let out = bin().arg("--policies").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p.toml:3: policy[0].retry.max_attempts"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&bad);
}
