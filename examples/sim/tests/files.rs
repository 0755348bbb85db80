//! Policy and scenario files: the examples in the repository load, and mistakes are reported
//! with the file, the line and the field.

use bulwark_sim::files::FileError;
use bulwark_sim::policy::{Policy, Window};
use bulwark_sim::scenario::{Clients, Scenario};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{rel}")).unwrap()
}

#[test]
fn the_example_policy_files_load_and_match_the_built_in_defaults() {
    let p = Policy::from_toml("example.toml", &read("policies/example.toml")).unwrap();
    let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "no protection",
            "retry only",
            "retry + budget",
            "full pipeline"
        ]
    );
    // The file's "full pipeline" is the built-in one, field for field (names aside).
    let builtin = Policy::full_pipeline();
    assert_eq!(format!("{:?}", p[3]), format!("{builtin:?}"));
    assert_eq!(format!("{:?}", p[1]), format!("{:?}", Policy::retry_only()));
    assert_eq!(p[3].breaker.unwrap().window, Window::Count100);
    let j = Policy::from_toml("jitter.toml", &read("policies/jitter.toml")).unwrap();
    assert_eq!(j.len(), 4);
}

#[test]
fn the_example_scenario_files_load() {
    let file = Scenario::from_toml("outage.toml", &read("scenarios/outage.toml")).unwrap();
    let builtin = Scenario::builtin("outage").unwrap();
    // The file writes out the built-in scenario.
    assert_eq!(file.downstream, builtin.downstream);
    assert_eq!(file.clients, builtin.clients);
    assert_eq!(file.phases, builtin.phases);
    let occ = Scenario::from_toml("b.toml", &read("scenarios/batch-contention.toml")).unwrap();
    assert!(occ.downstream.occ);
    assert!(matches!(occ.clients, Clients::Closed { clients: 100, .. }));
}

/// Every example file in the repository loads (and a scenario file runs, briefly).
#[test]
fn every_example_file_loads() {
    for dir in ["scenarios", "policies"] {
        let mut n = 0;
        for entry in std::fs::read_dir(format!("{DIR}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            if dir == "scenarios" {
                let mut s = Scenario::from_toml(&name, &text).unwrap_or_else(|e| panic!("{e}"));
                s.duration = s.duration.min(core::time::Duration::from_secs(2));
                bulwark_sim::engine::run(&s, &Policy::full_pipeline(), &mut ()).unwrap();
            } else {
                Policy::from_toml(&name, &text).unwrap_or_else(|e| panic!("{e}"));
            }
            n += 1;
        }
        assert!(n >= 2, "{dir}: {n} files");
    }
}

fn policy_err(text: &str) -> FileError {
    Policy::from_toml("p.toml", text).unwrap_err()
}

fn at(e: &FileError) -> (Option<usize>, &str) {
    (e.line, e.field.as_str())
}

#[test]
fn policy_errors_name_the_field_and_the_line() {
    // A value the core's retry config refuses.
    let e = policy_err("[[policy]]\nname = \"a\"\n[policy.retry]\nmax_attempts = 0\n");
    assert_eq!(at(&e), (Some(4), "policy[0].retry.max_attempts"));
    assert_eq!(
        e.to_string(),
        "p.toml:4: policy[0].retry.max_attempts: max_attempts must be at least 1"
    );

    // The core's circuit breaker errors, field by field (its `Field` mapped to the key).
    let e = policy_err(
        "[[policy]]\n[policy.breaker]\nconsecutive_failures = 5\nfailure_rate = 150\nwindow = \"count\"\n",
    );
    assert_eq!(at(&e), (Some(4), "policy[0].breaker.failure_rate"));
    assert!(e.message.contains("not a valid percentage"), "{e}");
    let e = policy_err("[[policy]]\n[policy.breaker]\nconsecutive_failures = 0\n");
    assert_eq!(at(&e), (Some(3), "policy[0].breaker.consecutive_failures"));
    assert!(e.message.contains("must not be zero"), "{e}");
    let e = policy_err(
        "[[policy]]\n[policy.breaker]\nfailure_rate = 50\nwindow_size = 10\nminimum_calls = 40\n",
    );
    assert_eq!(at(&e), (Some(5), "policy[0].breaker.minimum_calls"));
    let e = policy_err("[[policy]]\n[policy.breaker]\nfailure_rate = 50\nwindow_size = 30\n");
    assert_eq!(at(&e), (Some(4), "policy[0].breaker.window_size"));
    let e = policy_err(
        "[[policy]]\n[policy.breaker]\nconsecutive_failures = 3\nopen_for = \"10s\"\nopen_growth = 2\nopen_max = \"1s\"\n",
    );
    assert_eq!(at(&e), (Some(6), "policy[0].breaker.open_max"));

    // The limiter, bulkhead, budget.
    let e = policy_err("[[policy]]\n\n[policy.limiter]\nrate = 0\n");
    assert_eq!(at(&e), (Some(4), "policy[0].limiter.rate"));
    let e = policy_err("[[policy]]\n[policy.bulkhead]\nmax_concurrent = 0\n");
    assert_eq!(at(&e), (Some(3), "policy[0].bulkhead.max_concurrent"));
    let e = policy_err("[[policy]]\n[policy.budget]\nretry_percent = 5000\n");
    assert_eq!(at(&e), (Some(3), "policy[0].budget.retry_percent"));

    // The second policy of a file.
    let e = policy_err(
        "[[policy]]\nname = \"ok\"\n\n[[policy]]\nname = \"bad\"\nattempt_timeout = \"fast\"\n",
    );
    assert_eq!(at(&e), (Some(6), "policy[1].attempt_timeout"));
    assert!(e.message.contains("not a duration"), "{e}");
}

#[test]
fn toml_errors_name_the_field_and_the_line_too() {
    // A type error: the key on the line the parser points at.
    let e = policy_err("[[policy]]\nname = \"a\"\n[policy.retry]\nmax_attempts = \"three\"\n");
    assert_eq!(at(&e), (Some(4), "policy.retry.max_attempts"));
    // An unknown field (a typo).
    let e = policy_err("[[policy]]\n[policy.retry]\nmax_atempts = 3\n");
    assert_eq!(at(&e), (Some(3), "policy.retry.max_atempts"));
    assert!(e.message.contains("unknown field"), "{e}");
    // Not TOML at all.
    let e = policy_err("[[policy]]\nname = \n");
    assert_eq!(e.line, Some(2));
    // No policies.
    let e = policy_err("# nothing\n");
    assert_eq!(at(&e), (None, "policy"));
}

#[test]
fn scenario_errors_name_the_field_and_the_line() {
    let err = |t: &str| Scenario::from_toml("s.toml", t).unwrap_err();
    let e = err("duration = \"10\"\n");
    assert_eq!(at(&e), (Some(1), "duration"));
    assert!(e.message.contains("no unit"), "{e}");
    let e = err("duration = \"10s\"\n[[phase]]\nfrom = \"5s\"\nuntil = \"2s\"\nrefuse = true\n");
    assert_eq!(at(&e), (Some(4), "phase[0].until"));
    let e =
        err("[downstream]\nreplicas = 2\n[[phase]]\nfrom = \"1s\"\nuntil = \"2s\"\nreplica = 2\n");
    assert_eq!(at(&e), (Some(6), "phase[0].replica"));
    let e = err("[downstream]\nerrors = 1.5\n");
    assert_eq!(at(&e), (Some(2), "downstream.errors"));
    let e = err("[clients]\nmode = \"sometimes\"\n");
    assert_eq!(at(&e), (Some(2), "clients.mode"));
    let e = err("[clients]\nrate = -5.0\n");
    assert_eq!(at(&e), (Some(2), "clients.rate"));
    let e = err("[downstream]\nlatency = 20\n");
    assert_eq!(at(&e), (Some(2), "downstream.latency"));
}
