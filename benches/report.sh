#!/usr/bin/env bash
# Prints the README's "Performance" table from the last criterion run: the mean point estimate
# of each benchmark (target/criterion/**/new/estimates.json) and the goal ratios of issue #7.
#
#   cargo bench -p bulwark-benches            # all suites, one run
#   bash benches/report.sh [target/criterion] # then this
#
# A ratio is bulwark's mean divided by the other's mean, both from the same run: below 1.00
# bulwark is faster. A benchmark missing from the run shows as "–".
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/criterion}"
python3 - "$dir" <<'PY'
import glob, json, os, sys

root = sys.argv[1]
means = {}
for est in glob.glob(os.path.join(root, "**", "new", "estimates.json"), recursive=True):
    meta = os.path.join(os.path.dirname(est), "benchmark.json")
    try:
        with open(meta) as f:
            full_id = json.load(f)["full_id"]
        with open(est) as f:
            means[full_id] = json.load(f)["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        continue
if not means:
    sys.exit(f"no criterion results under {root}: run `cargo bench -p bulwark-benches` first")

def fmt_ns(ns):
    return "–" if ns is None else (f"{ns:.2f} ns" if ns < 100 else f"{ns:.0f} ns")

# (what, bulwark's benchmark, the other benchmark, goal: ratio at most)
B = "breaker/closed_success/"
C = "breaker/closed_success_2_threads/"
O = "breaker/open_rejection/"
L1, L2 = "limiter_check_1thread/", "limiter_check_2threads/"
K1, K2 = "bulkhead_try_acquire_release_1thread/", "bulkhead_try_acquire_release_2threads/"
goals = [
    ("breaker closed path vs recloser", B + "bulwark consecutive", B + "recloser ring 100", 0.5),
    ("breaker closed path vs failsafe", B + "bulwark consecutive", B + "failsafe consecutive", None),
    ("breaker closed path, count window 100 vs recloser ring 100", B + "bulwark count window 100", B + "recloser ring 100", None),
    ("breaker closed path vs relaxed fetch_add floor", B + "bulwark consecutive", B + "floor: relaxed fetch_add", 2.0),
    ("breaker closed path, 2 threads, vs recloser", C + "bulwark consecutive", C + "recloser ring 100", 0.5),
    ("breaker closed path, 2 threads, vs floor", C + "bulwark consecutive", C + "floor: relaxed fetch_add", 2.0),
    ("breaker open rejection vs recloser (std clock)", O + "bulwark", O + "recloser", 0.5),
    ("breaker open rejection, coarse read of the same clock, vs recloser", O + "bulwark, AsyncIoClock (coarse open check)", O + "recloser", 0.5),
    ("breaker open rejection vs failsafe (std clock)", O + "bulwark", O + "failsafe", None),
    ("limiter check vs governor (fake clocks)", L1 + "bulwark_mockclock_admit", L1 + "governor_fakeclock_admit", 1.0),
    ("limiter check vs governor (real clocks)", L1 + "bulwark_stdclock_admit", L1 + "governor_monotonicclock_admit", 1.0),
    ("sharded limiter (2 shards) check vs governor (real clocks)", L1 + "bulwark_sharded_stdclock_admit", L1 + "governor_monotonicclock_admit", None),
    ("limiter check vs floor", L1 + "bulwark_mockclock_admit", L1 + "floor: relaxed fetch_add", None),
    ("limiter check, 2 threads, vs governor (fake clocks)", L2 + "bulwark_mockclock_admit", L2 + "governor_fakeclock_admit", 0.8),
    ("sharded limiter (2 shards, ThreadHint) check, 2 threads, vs governor (real clocks)", L2 + "bulwark_sharded_stdclock_admit", L2 + "governor_monotonicclock_admit", 0.8),
    ("one-word limiter check, 2 threads, vs governor (real clocks)", L2 + "bulwark_stdclock_admit", L2 + "governor_monotonicclock_admit", None),
    ("one-word limiter check, 2 threads, vs its floor on the std clock (clock read + one shared write)", L2 + "bulwark_stdclock_admit", L2 + "floor: std clock read + relaxed fetch_add", None),
    ("governor check, 2 threads, vs the same floor", L2 + "governor_monotonicclock_admit", L2 + "floor: std clock read + relaxed fetch_add", None),
    ("bulkhead try_acquire+release vs tokio Semaphore", K1 + "bulwark_atomic", K1 + "tokio_semaphore", 0.8),
    ("bulkhead try_acquire+release vs async-lock", K1 + "bulwark_atomic", K1 + "async_lock_semaphore", None),
    ("bulkhead vs floor", K1 + "bulwark_atomic", K1 + "floor: relaxed fetch_add", None),
    ("bulkhead, 2 threads, vs tokio Semaphore", K2 + "bulwark_atomic", K2 + "tokio_semaphore", 0.5),
    ("keyed limiter check, one key of 64, vs governor's keyed (dashmap; fake clocks)",
     "keyed_limiter_check_1thread/bulwark_keyed_spin", "keyed_limiter_check_1thread/governor_keyed_dashmap", None),
    ("keyed limiter check, 2 threads on one key, vs governor's keyed (fake clocks)",
     "keyed_limiter_check_2threads/bulwark_keyed_spin", "keyed_limiter_check_2threads/governor_keyed_dashmap", None),
    ("retry, success at once, vs tokio-retry", "retry_success/bulwark", "retry_success/tokio-retry", 1.0),
    ("retry, success at once, vs backon", "retry_success/bulwark", "retry_success/backon", None),
    ("retry, success at once, 2 threads, vs tokio-retry", "retry_success_2threads/bulwark", "retry_success_2threads/tokio-retry", None),
    ("retry, success at once, 2 threads, vs backon", "retry_success_2threads/bulwark", "retry_success_2threads/backon", None),
    ("timeout on a ready future vs tokio::time::timeout", "timeout_ready/bulwark", "timeout_ready/tokio", 0.5),
    ("tower: bulwark PipelineLayer vs ServiceBuilder timeout+retry+concurrency_limit",
     "pipeline/tower, ready call (block_on each)/bulwark PipelineLayer (timeouts+retry+breaker+bulkhead)",
     "pipeline/tower, ready call (block_on each)/tower timeout+retry+concurrency_limit", None),
    ("tower, 2 threads: bulwark PipelineLayer vs ServiceBuilder timeout+retry+concurrency_limit",
     "pipeline/tower, ready call (block_on each), 2 threads/bulwark PipelineLayer (timeouts+retry+breaker+bulkhead)",
     "pipeline/tower, ready call (block_on each), 2 threads/tower timeout+retry+concurrency_limit", None),
    ("core: full pipeline vs bare call", "pipeline/core, ready call/bulwark full pipeline",
     "pipeline/core, ready call/bare call", None),
]

print("| comparison | bulwark | other | ratio | goal | |")
print("|---|---:|---:|---:|---:|---|")
for what, ours, other, goal in goals:
    a, b = means.get(ours), means.get(other)
    if a is None and b is None:
        continue
    ratio = a / b if a is not None and b else None
    r = "–" if ratio is None else f"{ratio:.2f}×"
    g = "–" if goal is None else f"≤ {goal:.1f}×"
    ok = "" if goal is None or ratio is None else ("met" if ratio <= goal else "**missed**")
    print(f"| {what} | {fmt_ns(a)} | {fmt_ns(b)} | {r} | {g} | {ok} |")

def layer_table(heading, columns, rows, goal, driver):
    """Tower layers as the cost each adds to a call: its mean minus the bare service's in the
    same group (`tower/{pattern}, {driver}`), so what drives the calls (the same for every
    row) does not dilute the ratio. `rows`: (label, pattern, bench a, bench b), each on one
    thread, then on two; `goal`: the ratio a / b must not exceed it, or None."""
    print()
    print(f"| {heading} | {columns[0]} | {columns[1]} | ratio |" + (" goal | |" if goal else ""))
    print("|---|---:|---:|---:|" + ("---:|---|" if goal else ""))
    for label, pattern, a_name, b_name in rows:
        for threads in ["", ", 2 threads"]:
            grp = f"tower/{pattern}, {driver}{threads}/"
            bare, a, b = (means.get(grp + k) for k in ("bare service", a_name, b_name))
            if None in (bare, a, b):
                continue
            a, b = max(a - bare, 0.0), max(b - bare, 0.0)
            ratio = a / b if b else None
            line = f"| {label}{' (2 threads)' if threads else ''} | {fmt_ns(a)} | {fmt_ns(b)} | "
            line += ("–" if ratio is None else f"{ratio:.2f}×") + " |"
            if goal:
                ok = "" if ratio is None else ("met" if ratio <= goal else "**missed**")
                line += f" ≤ {goal:.1f}× | {ok} |"
            print(line)

# Each tower layer beside tower-resilience's (benches/benches/tower.rs), the keyed layers and
# the sharded limiter layer beside the plain ones; first with the calls driven as a server's
# connection task drives them (one after another in one task), then each in its own block_on.
# Goals (issue 14): at most 0.5x tower-resilience; the keyed limiter layer within 2x of the plain
# one (the keyed breaker is held to the same bar).
for driver, how in [("ready calls in one task", "calls in one task"),
                    ("ready call (block_on each)", "block_on each")]:
    layer_table(f"tower layer, cost above the bare service ({how})", ("bulwark", "tower-resilience"),
                [(p, p, "bulwark", "tower-resilience") for p in
                 ["circuit breaker", "bulkhead", "rate limiter", "retry", "timeout",
                  "fault injection (off)", "hedge (not needed)", "adaptive limit (AIMD)"]], 0.5, driver)
    layer_table(f"tower keyed layers, cost above the bare service ({how})", ("keyed", "plain"),
                [("keyed vs plain rate limiter", "keyed rate limiter", "bulwark keyed", "bulwark"),
                 ("keyed vs plain circuit breaker", "keyed circuit breaker", "bulwark keyed", "bulwark")],
                2.0, driver)
    layer_table(f"tower sharded limiter layer (2 shards), cost above the bare service ({how})",
                ("sharded", "plain"),
                [("sharded vs plain rate limiter", "sharded rate limiter", "bulwark sharded", "bulwark")],
                None, driver)

# The policy simulator (benches/benches/sim.rs): simulated requests per second of wall time,
# from criterion's throughput (requests per iteration). Goal (issue 17): at least 1 M/s.
sim = []
for est in glob.glob(os.path.join(root, "sim*", "*", "new", "benchmark.json")):
    try:
        with open(est) as f:
            meta = json.load(f)
        n = meta["throughput"]["Elements"]
        mean = means[meta["full_id"]]
    except (OSError, KeyError, ValueError, TypeError):
        continue
    sim.append((meta["full_id"], n / (mean / 1e9)))
if sim:
    print()
    print("| policy simulator | simulated requests per second | goal | |")
    print("|---|---:|---:|---|")
    for name, rate in sorted(sim):
        print(f"| {name} | {rate / 1e6:.2f} M/s | ≥ 1 M/s | {'met' if rate >= 1e6 else '**missed**'} |")

if os.environ.get("ALL"):
    print()
    print("| benchmark | mean |")
    print("|---|---:|")
    for k in sorted(means):
        print(f"| {k} | {fmt_ns(means[k])} |")
PY
