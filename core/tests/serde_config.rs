//! Policies from files (feature `serde`, issue 17): every configuration type read from the
//! TOML a person writes, equal to the builder's; written back and read again unchanged (TOML
//! and JSON); and every mistake refused with an error naming the setting and, from TOML, the
//! line.
#![cfg(feature = "serde")]

use core::time::Duration;

use bulwark::circuit_breaker::{self, HalfOpenVerdict};
use bulwark::retry::{self, Backoff, Jitter};
use bulwark::{bulkhead, pool, rate_limiter};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// A policy file as the simulator (issue 17) reads one: a table per pattern, all optional.
#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(skip_serializing_if = "Option::is_none")]
    breaker: Option<circuit_breaker::Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<retry::Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limiter: Option<rate_limiter::Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bulkhead: Option<bulkhead::Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<pool::Config>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Written to TOML and to JSON and read back from each: the same value.
#[track_caller]
fn round_trip<T>(value: T)
where
    T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug,
{
    #[derive(Serialize, Deserialize)]
    struct Doc<T> {
        config: T,
    }
    // TOML wants a table at the top: the value sits under a key, as in a policy file.
    let toml_text = toml::to_string(&Doc { config: &value }).unwrap();
    let back: Doc<T> = toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{toml_text}\n{e}"));
    assert_eq!(back.config, value, "through TOML:\n{toml_text}");
    let json = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}\n{e}"));
    assert_eq!(back, value, "through JSON: {json}");
}

#[test]
fn every_config_type_round_trips() {
    let cb = circuit_breaker::Config::new;
    for c in [
        cb().consecutive_failures(5),
        cb().failure_rate(50)
            .minimum_calls(20)
            .time_window(secs(10)),
        cb().slow_calls(ms(1500), 80).minimum_calls(3),
        cb().slow_calls(Duration::MAX, 1),
        cb().consecutive_failures(3)
            .open_for(secs(10))
            .open_growth(2, secs(300))
            .open_jitter(10)
            .half_open(3, 2)
            .half_open_verdict(HalfOpenVerdict::Rate)
            .max_half_open(secs(30))
            .seed(42),
        // A multiplier of 1 with a cap of its own: written as open_growth.
        cb().consecutive_failures(1)
            .open_for(secs(5))
            .open_growth(1, secs(60)),
        // gobreaker's MaxRequests.
        cb().consecutive_failures(2)
            .half_open(3, 3)
            .half_open_limit(bulwark::circuit_breaker::HalfOpenLimit::PerEpisode),
        // resilience4j's ×1.5 as the ratio 3/2: written with its divisor.
        cb().consecutive_failures(2)
            .open_for(secs(10))
            .open_growth_ratio(3, 2, secs(300)),
        // open_for after open_growth keeps the cap.
        cb().consecutive_failures(1)
            .open_growth(3, secs(600))
            .open_for(secs(1)),
    ] {
        round_trip(c);
    }

    let rc = retry::Config::new;
    for c in [
        rc(),
        rc().max_attempts(1),
        rc().max_attempts(6)
            .max_elapsed(ms(30_250))
            .backoff(Backoff::constant(Duration::ZERO))
            .jitter(Jitter::None)
            .max_retry_after(secs(5))
            .seed(u64::MAX >> 1),
        rc().backoff(Backoff::linear(ms(100), ms(50)).max(secs(2)))
            .jitter(Jitter::Proportional(20)),
        rc().backoff(Backoff::exponential(Duration::from_micros(500)).multiplier(3))
            .jitter(Jitter::Decorrelated),
        rc().jitter(Jitter::Equal),
    ] {
        round_trip(c);
    }

    use rate_limiter::Config as L;
    for c in [
        L::per_second(100),
        L::per_minute(90).burst(3),
        L::per(3, ms(30)).max_wait(ms(50)).jitter(ms(2)).seed(7),
        L::with_period(Duration::from_nanos(333_334)),
    ] {
        round_trip(c);
    }

    use bulkhead::{Config as B, Overflow};
    for c in [
        B::new(1),
        B::new(64).max_wait(ms(250)),
        B::new(10).max_wait(secs(1)).overflow(Overflow::DropOldest),
    ] {
        round_trip(c);
    }

    use pool::Config as P;
    for c in [
        P::new(),
        P::new().timeout(Duration::ZERO),
        P::new()
            .timeout(secs(2))
            .max_lifetime(secs(1800))
            .max_idle(secs(600)),
    ] {
        round_trip(c);
    }

    for b in [
        Backoff::constant(secs(1)),
        Backoff::linear(ms(10), ms(10)),
        Backoff::exponential(ms(100)).max(secs(10)),
    ] {
        round_trip(b);
    }
    for j in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::Proportional(0),
        Jitter::Proportional(100),
    ] {
        round_trip(j);
    }
    round_trip(HalfOpenVerdict::FirstFailure);
    round_trip(Overflow::RejectNewest);
}

#[test]
fn json_keeps_seeds_toml_cannot_hold() {
    // TOML integers are signed 64-bit; JSON (serde_json) carries any u64.
    round_trip_json(retry::Config::new().seed(u64::MAX));
    round_trip_json(
        circuit_breaker::Config::new()
            .consecutive_failures(1)
            .seed(u64::MAX),
    );
    fn round_trip_json<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(v: T) {
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
    }
}

#[test]
fn the_written_form_is_what_a_person_writes() {
    let policy = Policy {
        breaker: Some(
            circuit_breaker::Config::new()
                .consecutive_failures(5)
                .slow_calls(ms(1500), 80)
                .open_for(secs(10))
                .open_growth(2, secs(300)),
        ),
        retry: Some(
            retry::Config::new()
                .max_attempts(4)
                .backoff(Backoff::exponential(ms(100)).max(secs(10))),
        ),
        limiter: Some(rate_limiter::Config::per_second(100).burst(20)),
        bulkhead: Some(bulkhead::Config::new(8).max_wait(ms(50))),
        pool: Some(pool::Config::new().max_idle(secs(600))),
    };
    let text = toml::to_string(&policy).unwrap();
    // toml writes the two-argument settings as sub-tables; inline tables read the same.
    let expected = r#"[breaker]
consecutive_failures = 5
minimum_calls = 1
time_window = "1m"
open_for = "10s"
open_jitter = 0
half_open_verdict = "first_failure"
half_open_limit = "in_flight"

[breaker.slow_calls]
threshold = "1.5s"
percent = 80

[breaker.open_growth]
multiplier = 2
max = "5m"

[breaker.half_open]
probes = 1
successes_to_close = 1

[retry]
max_attempts = 4
jitter = "full"
max_retry_after = "1m"

[retry.backoff]
exponential = "100ms"
multiplier = 2
max = "10s"

[limiter]
rate = 100
per = "1s"
burst = 20
max_wait = "0s"
jitter = "0s"
waiting = "retry"

[bulkhead]
max_concurrent = 8
max_wait = "50ms"
overflow = "reject_newest"

[pool]
timeout = "30s"
max_idle = "10m"
"#;
    assert_eq!(text, expected);
    assert_eq!(toml::from_str::<Policy>(&text).unwrap(), policy);
}

#[test]
fn a_policy_file_as_a_person_writes_it() {
    let text = r#"
# Payments: trip fast, retry little, never flood the downstream.

[breaker]
consecutive_failures = 5
failure_rate = 50
minimum_calls = 20
time_window = "30s"
open_for = "10s"
open_growth = { multiplier = 2, max = "5m" }
open_jitter = 10
half_open = { probes = 3 }          # successes_to_close stays 1
max_half_open = "1m"

[retry]
max_attempts = 4
max_elapsed = "10s"
backoff = { exponential = "250ms", max = "2s" }
jitter = { proportional = 20 }
seed = 17

[limiter]
rate = 600
per = "1m"
burst = 50
max_wait = "100ms"

[bulkhead]
max_concurrent = 32
max_wait = "25ms"
overflow = "drop_oldest"

[pool]
timeout = "1.5s"
max_lifetime = "30m"
"#;
    let policy: Policy = toml::from_str(text).unwrap();
    assert_eq!(
        policy,
        Policy {
            breaker: Some(
                circuit_breaker::Config::new()
                    .consecutive_failures(5)
                    .failure_rate(50)
                    .minimum_calls(20)
                    .time_window(secs(30))
                    .open_for(secs(10))
                    .open_growth(2, secs(300))
                    .open_jitter(10)
                    .half_open(3, 1)
                    .max_half_open(secs(60))
            ),
            retry: Some(
                retry::Config::new()
                    .max_attempts(4)
                    .max_elapsed(secs(10))
                    .backoff(Backoff::exponential(ms(250)).max(secs(2)))
                    .jitter(Jitter::Proportional(20))
                    .seed(17)
            ),
            limiter: Some(
                rate_limiter::Config::per_minute(600)
                    .burst(50)
                    .max_wait(ms(100))
            ),
            bulkhead: Some(
                bulkhead::Config::new(32)
                    .max_wait(ms(25))
                    .overflow(bulkhead::Overflow::DropOldest)
            ),
            pool: Some(
                pool::Config::new()
                    .timeout(ms(1500))
                    .max_lifetime(secs(1800))
            ),
        }
    );
}

#[test]
fn omitted_settings_are_the_builders_defaults() {
    let p: Policy = toml::from_str(
        "[breaker]\nconsecutive_failures = 3\n[retry]\n[limiter]\nrate = 10\n\
         [bulkhead]\nmax_concurrent = 4\n[pool]\n",
    )
    .unwrap();
    assert_eq!(
        p.breaker,
        Some(circuit_breaker::Config::new().consecutive_failures(3))
    );
    assert_eq!(p.retry, Some(retry::Config::new()));
    assert_eq!(p.limiter, Some(rate_limiter::Config::per_second(10)));
    assert_eq!(p.bulkhead, Some(bulkhead::Config::new(4)));
    assert_eq!(p.pool, Some(pool::Config::new()));
    // Without a seed the config asks for a fresh one per breaker or call, as the builder's.
    assert_eq!(p.retry.unwrap().explicit_seed(), None);
    // Only what has no default is required.
    let e = toml::from_str::<Policy>("[limiter]\nburst = 3\n").unwrap_err();
    assert!(e.message().contains("missing field `rate`"), "{e}");
    let e = toml::from_str::<Policy>("[bulkhead]\nmax_wait = \"1s\"\n").unwrap_err();
    assert!(
        e.message().contains("missing field `max_concurrent`"),
        "{e}"
    );
}

/// The error of reading `text` as a [`Policy`]: its message, and its full display (line,
/// column and the offending lines).
#[track_caller]
fn error(text: &str) -> (String, String) {
    match toml::from_str::<Policy>(text) {
        Ok(p) => panic!("accepted:\n{text}\nas {p:?}"),
        Err(e) => (e.message().to_owned(), e.to_string()),
    }
}

#[test]
fn an_unknown_setting_is_named_with_its_line() {
    let (message, shown) = error("[retry]\nmax_attempts = 3\nbackof = { constant = \"1s\" }\n");
    assert!(
        message.starts_with("unknown field `backof`, expected one of"),
        "{message}"
    );
    assert!(shown.contains("line 3, column 1"), "{shown}");
    for (text, key) in [
        (
            "[breaker]\nconsecutive_failure = 3\n",
            "consecutive_failure",
        ),
        (
            "[breaker]\nconsecutive_failures = 3\nslow_calls = { threshold = \"1s\", rate = 50 }\n",
            "rate",
        ),
        (
            "[breaker]\nconsecutive_failures = 3\nhalf_open = { successes = 2 }\n",
            "successes",
        ),
        ("[limiter]\nrate = 3\ninterval = \"1s\"\n", "interval"),
        ("[bulkhead]\nmax_concurrent = 3\nqueue = 4\n", "queue"),
        ("[pool]\nmax_size = 3\n", "max_size"),
        (
            "[retry]\nbackoff = { exponential = \"1s\", cap = \"2s\" }\n",
            "cap",
        ),
        ("[retries]\n", "retries"),
    ] {
        let (message, _) = error(text);
        assert!(
            message.contains(&format!("unknown field `{key}`")),
            "{message}"
        );
    }
    let (message, _) = error("[retry]\njitter = \"fuller\"\n");
    assert!(message.contains("unknown variant `fuller`"), "{message}");
    let (message, _) = error("[bulkhead]\nmax_concurrent = 1\noverflow = \"drop_newest\"\n");
    assert!(
        message.contains("unknown variant `drop_newest`"),
        "{message}"
    );
}

#[test]
fn a_wrong_type_is_reported_with_its_line() {
    let (message, shown) = error("[retry]\nmax_attempts = \"four\"\n");
    assert_eq!(message, "invalid type: string \"four\", expected u32");
    assert!(
        shown.starts_with("TOML parse error at line 2, column 16"),
        "{shown}"
    );
    let (message, shown) = error("[breaker]\nconsecutive_failures = 3\nfailure_rate = 300\n");
    assert!(message.contains("300"), "{message}");
    assert!(shown.contains("line 3"), "{shown}");
    // A duration needs its unit: a bare number is refused, not guessed.
    let (message, shown) = error("[pool]\n\ntimeout = 250\n");
    assert!(
        message.contains("expected a duration with a unit"),
        "{message}"
    );
    assert!(shown.contains("line 3"), "{shown}");
}

#[test]
fn a_bad_duration_is_named_with_its_line() {
    let text = "[breaker]\nconsecutive_failures = 3\nopen_for = \"10 parsecs\"\n";
    let (message, shown) = error(text);
    assert_eq!(
        message,
        "invalid duration \"10 parsecs\": unknown unit (use h, m, s, ms, us or ns)"
    );
    assert_eq!(
        shown,
        "TOML parse error at line 3, column 12\n  |\n3 | open_for = \"10 parsecs\"\n  |            \
         ^^^^^^^^^^^^\ninvalid duration \"10 parsecs\": unknown unit (use h, m, s, ms, us or ns)\n"
    );
    for (bad, why) in [
        ("\"\"", "empty"),
        ("\"250\"", "a unit is needed"),
        ("\"1.0000000001s\"", "finer than a nanosecond"),
        ("\"99999999999999999999h\"", "too large"),
        ("\"-1s\"", "must start with a number"),
    ] {
        let (message, _) = error(&format!("[pool]\ntimeout = {bad}\n"));
        assert!(message.contains(why), "{bad}: {message}");
    }
}

#[test]
fn an_invalid_value_fails_with_the_cores_error_naming_the_field_and_the_line() {
    // The core's own messages, checked when the file is read, not when the policy is built.
    let (message, shown) = error("# retry policy\n\n[retry]\nmax_attempts = 0\n");
    assert_eq!(message, "max_attempts must be at least 1");
    assert_eq!(
        shown,
        "TOML parse error at line 3, column 1\n  |\n3 | [retry]\n  | ^^^^^^^\n\
         max_attempts must be at least 1\n"
    );
    let cases = [
        ("[limiter]\nrate = 0\n", "rate must be above zero", 1),
        (
            "[limiter]\nrate = 5\nper = \"0s\"\n",
            "rate must be above zero",
            1,
        ),
        (
            "[limiter]\nrate = 5\nburst = 0\n",
            "burst must be at least 1",
            1,
        ),
        (
            "[limiter]\nrate = 600000000\n",
            "rate = 600000000 per 1s needs a token period",
            1,
        ),
        (
            "[limiter]\nrate = 10\nburst = 1\nmax_wait = \"1s\"\njitter = \"1s\"\n",
            "jitter must be at most burst",
            1,
        ),
        (
            "\n[bulkhead]\nmax_concurrent = 0\n",
            "max_concurrent, or a semaphore's capacity, is 0",
            2,
        ),
        (
            "[breaker]\nconsecutive_failures = 0\n",
            "consecutive_failures must not be zero",
            1,
        ),
        (
            "[breaker]\nfailure_rate = 101\n",
            "failure_rate is not a valid percentage",
            1,
        ),
        (
            "[breaker]\nslow_calls = { threshold = \"0s\", percent = 50 }\n",
            "slow_calls.threshold must not be zero",
            1,
        ),
        (
            "[breaker]\nconsecutive_failures = 2\nhalf_open = { probes = 0 }\n",
            "half_open.probes must not be zero",
            1,
        ),
        (
            "[breaker]\nconsecutive_failures = 2\nopen_for = \"1m\"\nopen_growth = { multiplier = 2, max = \"30s\" }\n",
            "open_growth.max is below open_for",
            1,
        ),
        (
            "[breaker]\nminimum_calls = 5\n",
            "set consecutive_failures, failure_rate or slow_calls",
            1,
        ),
    ];
    for (text, want, line) in cases {
        let (message, shown) = error(text);
        assert!(message.contains(want), "{text}: {message}");
        assert!(
            shown.starts_with(&format!("TOML parse error at line {line}, column 1")),
            "{shown}"
        );
    }
    // Inside an inline table the error points at the table.
    let (message, shown) = error(
        "[retry]\nmax_attempts = 2\nbackoff = { exponential = \"1s\", multiplier = \"0.5\" }\n",
    );
    assert_eq!(message, "backoff.multiplier must be at least 1");
    assert!(
        shown.starts_with("TOML parse error at line 3, column 11"),
        "{shown}"
    );
    let (message, shown) = error("[retry]\njitter = { proportional = 101 }\n");
    assert!(
        message.contains("jitter's proportional: 0 ..= 100"),
        "{message}"
    );
    assert!(
        shown.starts_with("TOML parse error at line 2, column 10"),
        "{shown}"
    );
    let (message, _) = error("[retry]\nbackoff = { exponential = \"0s\" }\n");
    assert!(message.contains("backoff.exponential"), "{message}");
    let (message, _) = error("[retry]\nbackoff = { exponential = \"1s\", multiplier = 0 }\n");
    assert!(message.contains("backoff.multiplier"), "{message}");
    let (message, _) = error("[retry]\nmax_retry_after = \"0s\"\n");
    assert!(message.contains("max_retry_after"), "{message}");
}

#[test]
fn a_backoff_is_one_kind_with_its_own_settings() {
    for (backoff, want) in [
        ("{ }", "exactly one of constant, linear or exponential"),
        (
            "{ constant = \"1s\", exponential = \"1s\" }",
            "exactly one of constant, linear or exponential",
        ),
        ("{ linear = \"1s\" }", "linear needs a step"),
        (
            "{ constant = \"1s\", step = \"1s\" }",
            "step goes with linear",
        ),
        (
            "{ linear = \"1s\", step = \"1s\", multiplier = 2 }",
            "multiplier goes with exponential",
        ),
    ] {
        let (message, shown) = error(&format!("[retry]\nbackoff = {backoff}\n"));
        assert!(message.contains(want), "{backoff}: {message}");
        assert!(shown.contains("line 2"), "{shown}");
    }
}

#[test]
fn json_works_the_same_way() {
    let c: retry::Config = serde_json::from_str(
        r#"{ "max_attempts": 5, "backoff": { "linear": "1s", "step": "500ms" }, "jitter": "none" }"#,
    )
    .unwrap();
    assert_eq!(
        c,
        retry::Config::new()
            .max_attempts(5)
            .backoff(Backoff::linear(secs(1), ms(500)))
            .jitter(Jitter::None)
    );
    let e =
        serde_json::from_str::<rate_limiter::Config>(r#"{ "rate": 5, "burst": 0 }"#).unwrap_err();
    assert!(e.to_string().contains("burst must be at least 1"), "{e}");
}

/// Every configuration error names, in its message, the setting a user wrote (as the key of
/// the file form and the builder method).
#[test]
fn every_config_error_names_its_setting() {
    use circuit_breaker::{ConfigError as C, Field as F};
    let fields = [
        (F::ConsecutiveFailures, "consecutive_failures"),
        (F::FailureRate, "failure_rate"),
        (F::SlowRate, "slow_calls.percent"),
        (F::SlowThreshold, "slow_calls.threshold"),
        (F::MinimumCalls, "minimum_calls"),
        (F::OpenMultiplier, "open_growth.multiplier"),
        (F::OpenJitter, "open_jitter"),
        (F::Probes, "half_open.probes"),
        (F::SuccessesToClose, "half_open.successes_to_close"),
        (F::MaxHalfOpen, "max_half_open"),
        (F::WindowSize, "window size N"),
    ];
    for (f, name) in fields {
        for e in [C::Zero(f), C::PercentOutOfRange(f), C::TooLarge(f)] {
            assert!(e.to_string().contains(name), "{e}");
        }
    }
    for (e, name) in [
        (C::NoWindow, "failure_rate and slow_calls"),
        (C::MinimumCallsAboveWindow, "minimum_calls"),
        (C::ZeroWindow, "time_window"),
        (
            C::NoTripPolicy,
            "consecutive_failures, failure_rate or slow_calls",
        ),
        (C::OpenMaxBelowBase, "open_growth.max is below open_for"),
        (
            C::SuccessesAboveProbes,
            "half_open.successes_to_close exceeds half_open.probes",
        ),
    ] {
        assert!(e.to_string().contains(name), "{e}");
    }

    use retry::ConfigError as R;
    for (e, name) in [
        (R::ZeroAttempts, "max_attempts"),
        (R::ZeroMultiplier, "backoff.multiplier"),
        (R::MultiplierBelowOne, "backoff.multiplier"),
        (R::PercentOutOfRange, "proportional"),
        (R::PercentOutOfRange, "retry_percent"),
        (R::ZeroInitialDelay, "backoff.exponential"),
        (R::ZeroMaxRetryAfter, "max_retry_after"),
    ] {
        assert!(e.to_string().contains(name), "{e}");
    }

    use rate_limiter::ConfigError as L;
    for (e, name) in [
        (L::ZeroRate, "rate"),
        (L::ZeroBurst, "burst"),
        (L::TooLong, "burst"),
        (L::JitterTooLong, "jitter"),
        (
            L::InexactRate {
                rate: 3_000_000,
                interval: secs(1),
            },
            "rate = 3000000 per 1s",
        ),
        (L::ZeroCapacity, "slot"), // a keyed table's N: not a setting of the file
    ] {
        assert!(e.to_string().contains(name), "{e}");
    }

    use bulkhead::ConfigError as B;
    for e in [B::ZeroCapacity, B::TooLarge] {
        assert!(e.to_string().contains("max_concurrent"), "{e}");
    }
}

mod random {
    //! Round trips of random valid configurations: every duration (to the nanosecond) and
    //! every setting survive TOML and JSON.
    use super::*;
    use proptest::prelude::*;

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..=u64::MAX).prop_map(Duration::from_nanos),
            (0u64..100_000).prop_map(Duration::from_millis),
            (0u64..=u64::MAX, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
    }

    /// A seed TOML can hold (its integers are signed 64-bit).
    fn seed() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(0..=i64::MAX as u64)
    }

    fn breaker() -> impl Strategy<Value = circuit_breaker::Config> {
        (
            (
                proptest::option::of(1u32..=65_535),
                proptest::option::of(1u8..=100),
                proptest::option::of((1u64..=u64::MAX, 1u8..=100)),
                1u32..1_000,
                duration(),
            ),
            (
                duration(),
                proptest::option::of((1u32..=65_535, duration())),
            ),
            (0u8..=100, 1u32..=63, 1u32..=63, any::<bool>()),
            (proptest::option::of(1u64..=u64::MAX), seed()),
        )
            .prop_map(
                |((cf, fr, slow, min, window), (base, growth), (j, p, s, rate), (mho, seed))| {
                    let mut c = circuit_breaker::Config::new()
                        .minimum_calls(min)
                        .time_window(window)
                        .open_for(base)
                        .open_jitter(j)
                        .half_open(p, if rate { s.min(p) } else { s })
                        .half_open_verdict(if rate {
                            HalfOpenVerdict::Rate
                        } else {
                            HalfOpenVerdict::FirstFailure
                        });
                    c = match (cf, fr, slow) {
                        (None, None, None) => c.consecutive_failures(1),
                        _ => c,
                    };
                    if let Some(n) = cf {
                        c = c.consecutive_failures(n);
                    }
                    if let Some(p) = fr {
                        c = c.failure_rate(p);
                    }
                    if let Some((t, p)) = slow {
                        c = c.slow_calls(Duration::from_nanos(t), p);
                    }
                    if let Some((m, extra)) = growth {
                        c = c.open_growth(m, base.saturating_add(extra));
                    }
                    if let Some(d) = mho {
                        c = c.max_half_open(Duration::from_nanos(d));
                    }
                    if let Some(s) = seed {
                        c = c.seed(s);
                    }
                    c
                },
            )
    }

    fn backoff() -> impl Strategy<Value = Backoff> {
        let capped = |b: Backoff, first: Duration, extra: Option<Duration>| match extra {
            Some(e) => b.max(first.saturating_add(e)),
            None => b,
        };
        prop_oneof![
            (duration(), proptest::option::of(duration())).prop_map(move |(d, e)| capped(
                Backoff::constant(d),
                d,
                e
            )),
            (duration(), duration(), proptest::option::of(duration()))
                .prop_map(move |(i, s, e)| capped(Backoff::linear(i, s), i, e)),
            (
                1u64..=u64::MAX,
                1u32..=u32::MAX,
                proptest::option::of(duration())
            )
                .prop_map(move |(i, m, e)| {
                    let i = Duration::from_nanos(i);
                    capped(Backoff::exponential(i).multiplier(m), i, e)
                }),
        ]
    }

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated),
            (0u8..=100).prop_map(Jitter::Proportional),
        ]
    }

    fn retry() -> impl Strategy<Value = retry::Config> {
        (
            1u32..=u32::MAX,
            proptest::option::of(duration()),
            backoff(),
            jitter(),
            1u64..=u64::MAX,
            seed(),
        )
            .prop_map(|(n, elapsed, b, j, hint, seed)| {
                let mut c = retry::Config::new()
                    .max_attempts(n)
                    .backoff(b)
                    .jitter(j)
                    .max_retry_after(Duration::from_nanos(hint));
                if let Some(d) = elapsed {
                    c = c.max_elapsed(d);
                }
                if let Some(s) = seed {
                    c = c.seed(s);
                }
                c
            })
    }

    fn limiter() -> impl Strategy<Value = rate_limiter::Config> {
        (
            1u32..=1_000_000,
            1u64..=3_600,
            1u32..=10_000,
            0u64..=10_000,
            0u64..=10_000,
            seed(),
            any::<bool>(),
        )
            .prop_map(|(rate, per, burst, wait, jitter, seed, reserve)| {
                let waiting = if reserve {
                    rate_limiter::Waiting::Reserve
                } else {
                    rate_limiter::Waiting::Retry
                };
                let c = rate_limiter::Config::per(rate, Duration::from_secs(per))
                    .burst(burst)
                    .max_wait(Duration::from_micros(wait))
                    .jitter(Duration::from_nanos(jitter))
                    .waiting(waiting);
                match seed {
                    Some(s) => c.seed(s),
                    None => c,
                }
            })
            .prop_filter("a config the limiter accepts", |c| c.gcra().is_ok())
    }

    proptest! {
        #[test]
        fn breaker_configs_round_trip(c in breaker()) {
            round_trip(c);
        }

        #[test]
        fn retry_configs_round_trip(c in retry()) {
            round_trip(c);
        }

        #[test]
        fn limiter_configs_round_trip(c in limiter()) {
            round_trip(c);
        }

        #[test]
        fn bulkhead_and_pool_configs_round_trip(
            n in 1usize..=u32::MAX as usize,
            wait in duration(),
            drop_oldest in any::<bool>(),
            timeout in duration(),
            lifetime in proptest::option::of(duration()),
            idle in proptest::option::of(duration()),
        ) {
            let overflow = if drop_oldest { bulkhead::Overflow::DropOldest } else { bulkhead::Overflow::RejectNewest };
            round_trip(bulkhead::Config::new(n).max_wait(wait).overflow(overflow));
            let mut p = pool::Config::new().timeout(timeout);
            if let Some(d) = lifetime { p = p.max_lifetime(d); }
            if let Some(d) = idle { p = p.max_idle(d); }
            round_trip(p);
        }
    }
}
