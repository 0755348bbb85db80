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
    // A value the core's retry config refuses as it is read: at its key, in the core's words.
    let e = policy_err("[[policy]]\nname = \"a\"\n[policy.retry]\nmax_attempts = 0\n");
    assert_eq!(at(&e), (Some(4), "policy[0].retry.max_attempts"));
    assert_eq!(
        e.to_string(),
        "p.toml:4: policy[0].retry.max_attempts: max_attempts must be at least 1"
    );
    // Inside an inline table: the key of the inline table.
    let e = policy_err(
        "[[policy]]\n[policy.retry]\nmax_attempts = 2\nbackoff = { exponential = \"1s\", multiplier = \"1/2\" }\n",
    );
    assert_eq!(at(&e), (Some(4), "policy[0].retry.backoff.multiplier"));
    assert_eq!(e.message, "backoff.multiplier must be at least 1");
    // A cap below the first delay simply caps (Polly's MaxDelay): no error.
    assert!(
        Policy::from_toml(
            "p.toml",
            "[[policy]]\n[policy.retry]\nmax_attempts = 2\nbackoff = { exponential = \"1s\", max = \"1ms\" }\n"
        )
        .is_ok()
    );

    // The core's circuit breaker errors, each at the key its `Field` names.
    let e =
        policy_err("[[policy]]\n[policy.breaker]\nconsecutive_failures = 5\nfailure_rate = 150\n");
    assert_eq!(at(&e), (Some(4), "policy[0].breaker.failure_rate"));
    assert!(e.message.contains("not a valid percentage"), "{e}");
    let e = policy_err("[[policy]]\n[policy.breaker]\nconsecutive_failures = 0\n");
    assert_eq!(at(&e), (Some(3), "policy[0].breaker.consecutive_failures"));
    assert!(e.message.contains("must not be zero"), "{e}");
    let e = policy_err(
        "[[policy]]\n[policy.breaker]\nconsecutive_failures = 3\nopen_for = \"10s\"\n\
         open_growth = { multiplier = 2, max = \"1s\" }\n",
    );
    assert_eq!(at(&e), (Some(5), "policy[0].breaker.open_growth.max"));
    assert!(
        e.message.contains("open_growth.max is below open_for"),
        "{e}"
    );
    // An error about no key in particular: at the table.
    let e = policy_err("[[policy]]\n[policy.breaker]\nminimum_calls = 5\n");
    assert_eq!(at(&e), (Some(2), "policy[0].breaker"));
    assert!(e.message.contains("no policy would ever open"), "{e}");

    // The breaker's window, the simulator's own key: its sizes, and what only the window sees.
    let e = policy_err(
        "[[policy]]\nbreaker_window = 10\n[policy.breaker]\nfailure_rate = 50\nminimum_calls = 40\n",
    );
    assert_eq!(at(&e), (Some(5), "policy[0].breaker.minimum_calls"));
    assert!(
        e.message.contains("exceeds what the window can hold"),
        "{e}"
    );
    let e = policy_err("[[policy]]\nbreaker_window = 30\n[policy.breaker]\nfailure_rate = 50\n");
    assert_eq!(at(&e), (Some(2), "policy[0].breaker_window"));
    assert!(
        e.message.contains("10, 20, 50, 100, 200, 500 or 1000"),
        "{e}"
    );
    let e = policy_err("[[policy]]\nbreaker_window = \"time\"\n");
    assert_eq!(at(&e), (Some(2), "policy[0].breaker_window"));
    assert!(e.message.contains("without a breaker"), "{e}");

    // The limiter, bulkhead, budget.
    let e = policy_err("[[policy]]\n\n[policy.limiter]\nrate = 0\n");
    assert_eq!(at(&e), (Some(4), "policy[0].limiter.rate"));
    let e = policy_err("[[policy]]\n[policy.bulkhead]\nmax_concurrent = 0\n");
    assert_eq!(at(&e), (Some(3), "policy[0].bulkhead.max_concurrent"));
    let e = policy_err("[[policy]]\n[policy.budget]\nretry_percent = 5000\n");
    assert_eq!(at(&e), (Some(3), "policy[0].budget.retry_percent"));
    assert!(e.message.contains("0 ..= 1000"), "{e}");

    // The second policy of a file; the simulator's durations are the core's text form.
    let e = policy_err(
        "[[policy]]\nname = \"ok\"\n\n[[policy]]\nname = \"bad\"\nattempt_timeout = \"fast\"\n",
    );
    assert_eq!(at(&e), (Some(6), "policy[1].attempt_timeout"));
    assert!(e.message.contains("invalid duration \"fast\""), "{e}");
    let e = policy_err("[[policy]]\nwaits = \"sometimes\"\n");
    assert_eq!(at(&e), (Some(2), "policy[0].waits"));
    assert!(e.message.contains("unknown variant `sometimes`"), "{e}");
}

#[test]
fn toml_errors_name_the_field_and_the_line_too() {
    // A type error.
    let e = policy_err("[[policy]]\nname = \"a\"\n[policy.retry]\nmax_attempts = \"three\"\n");
    assert_eq!(at(&e), (Some(4), "policy[0].retry.max_attempts"));
    assert_eq!(e.message, "invalid type: string \"three\", expected u32");
    // An unknown field (a typo), in the second policy.
    let e = policy_err("[[policy]]\n[[policy]]\n[policy.retry]\nmax_atempts = 3\n");
    assert_eq!(at(&e), (Some(4), "policy[1].retry.max_atempts"));
    assert!(e.message.contains("unknown field `max_atempts`"), "{e}");
    // A key of the simulator's old schema: the core's Config has no such key.
    let e = policy_err("[[policy]]\n[policy.retry]\ninitial = \"50ms\"\n");
    assert_eq!(at(&e), (Some(3), "policy[0].retry.initial"));
    assert!(e.message.contains("unknown field `initial`"), "{e}");
    // A duration without its unit.
    let e =
        policy_err("[[policy]]\n[policy.breaker]\nconsecutive_failures = 3\nopen_for = \"10\"\n");
    assert_eq!(at(&e), (Some(4), "policy[0].breaker.open_for"));
    assert!(e.message.contains("a unit is needed"), "{e}");
    // Not TOML at all: the line only.
    let e = policy_err("[[policy]]\nname = \n");
    assert_eq!(at(&e), (Some(2), ""));
    // No policies.
    let e = policy_err("# nothing\n");
    assert_eq!(at(&e), (None, "policy"));
}

#[test]
fn scenario_errors_name_the_field_and_the_line() {
    let err = |t: &str| Scenario::from_toml("s.toml", t).unwrap_err();
    let e = err("duration = \"10\"\n");
    assert_eq!(at(&e), (Some(1), "duration"));
    assert!(e.message.contains("a unit is needed"), "{e}");
    let e = err("duration = \"10s\"\n[[phase]]\nfrom = \"5s\"\nuntil = \"2s\"\nrefuse = true\n");
    assert_eq!(at(&e), (Some(4), "phase[0].until"));
    let e =
        err("[downstream]\nreplicas = 2\n[[phase]]\nfrom = \"1s\"\nuntil = \"2s\"\nreplica = 2\n");
    assert_eq!(at(&e), (Some(6), "phase[0].replica"));
    let e = err("[downstream]\nerrors = 1.5\n");
    assert_eq!(at(&e), (Some(2), "downstream.errors"));
    let e = err("[clients]\nmode = \"sometimes\"\n");
    assert_eq!(at(&e), (Some(2), "clients.mode"));
    assert!(e.message.contains("unknown variant `sometimes`"), "{e}");
    let e = err("[clients]\nrate = -5.0\n");
    assert_eq!(at(&e), (Some(2), "clients.rate"));
    let e = err("[downstream]\nlatency = 20\n");
    assert_eq!(at(&e), (Some(2), "downstream.latency"));
    assert!(e.message.contains("expected a duration with a unit"), "{e}");
    let e = err("[downstream]\nreplicas = 2\nqueu = 5\n");
    assert_eq!(at(&e), (Some(3), "downstream.queu"));
}
