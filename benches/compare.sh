#!/usr/bin/env bash
# Before / after: every bulwark row of the README's Performance table, measured with the bench
# binaries of two checkouts on the same machine in the same session. Rows are run one at a
# time, the two binaries alternated, ROUNDS times each (default 3); the table shows the
# fastest mean of each side (the least disturbed by other load) and the change.
#
#   git worktree add /tmp/base <rev>            # the "before" checkout
#   bash benches/compare.sh /tmp/base           # builds both trees' benches, then measures
#   ROUNDS=5 ROWS='breaker/closed' bash benches/compare.sh /tmp/base   # a subset, more rounds
#
# A row the base does not have (added since) shows "–" before. Criterion's own settings:
# 1 s warm-up, 2 s measurement per run.
set -euo pipefail
base="$(cd "$1" && pwd)"
here="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${ROUNDS:-3}"
rows="${ROWS:-}"

# The bench executables of a checkout, one "name path" per line. Each checkout builds into its
# own target directory, whatever CARGO_TARGET_DIR says: cargo names a workspace member's
# artifacts by its path inside the workspace, so two checkouts sharing one target directory
# write the same file names, and the second build replaces the first's binaries (session 9
# measured HEAD against itself that way).
executables() {
  (cd "$1" && CARGO_TARGET_DIR="$1/target" cargo bench -p bulwark-benches --no-run --message-format=json 2>/dev/null) |
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])
'
}

executables "$base" > /tmp/compare-base.$$
executables "$here" > /tmp/compare-head.$$
if [ "$base" = "$here" ] || [ -n "$(comm -12 <(cut -d' ' -f2 /tmp/compare-base.$$ | sort) <(cut -d' ' -f2 /tmp/compare-head.$$ | sort))" ]; then
  echo "compare.sh: the two checkouts share bench binaries; nothing to compare" >&2
  exit 1
fi
python3 - "$rounds" "$rows" /tmp/compare-base.$$ /tmp/compare-head.$$ <<'PY'
import os, re, shutil, subprocess, sys, tempfile

rounds, only = int(sys.argv[1]), sys.argv[2]
def load(path):
    return dict(line.split(" ", 1) for line in open(path).read().split("\n") if line)
base, head = load(sys.argv[3]), load(sys.argv[4])

# (suite, benchmark id): the bulwark side of every README row (benches/report.sh).
rows = [("circuit_breaker", "breaker/closed_success/" + r) for r in
        ["bulwark consecutive", "bulwark count window 100"]]
rows += [("circuit_breaker", "breaker/closed_success_2_threads/bulwark consecutive"),
         ("circuit_breaker", "breaker/open_rejection/bulwark"),
         ("circuit_breaker", "breaker/open_rejection/bulwark, AsyncIoClock (coarse open check)")]
rows += [("admission", g + r) for g in ["limiter_check_1thread/", "limiter_check_2threads/"]
         for r in ["bulwark_mockclock_admit", "bulwark_stdclock_admit"]]
rows += [("admission", g + "bulwark_atomic") for g in
         ["bulkhead_try_acquire_release_1thread/", "bulkhead_try_acquire_release_2threads/"]]
rows += [("retry_timeout", r) for r in
         ["retry_success/bulwark", "retry_success_2threads/bulwark", "timeout_ready/bulwark"]]
rows += [("pipeline", "pipeline/core, ready call/" + r) for r in
         ["bulwark full pipeline", "bulwark retry only"]]
rows += [("pipeline", "pipeline/core, ready call, 2 threads/bulwark full pipeline")]
rows += [("pipeline", f"pipeline/tower, ready call (block_on each){t}/" + r)
         for t in ["", ", 2 threads"]
         for r in ["bulwark PipelineLayer (timeouts+retry+breaker+bulkhead)", "bare service"]]
rows += [("tower", f"tower/{p}, ready call (block_on each)/bulwark")
         for p in ["circuit breaker", "bulkhead", "rate limiter", "retry", "timeout"]]
rows += [("tower", "tower/retry, ready call (block_on each)/bare service")]
rows += [("tower", f"tower/hedge (not needed), {d}{t}/{r}")
         for d in ["ready calls in one task", "ready call (block_on each)"]
         for t in ["", ", 2 threads"] for r in ["bulwark", "bare service"]]
rows += [("admission", g + "bulwark_keyed_spin")
         for g in ["keyed_limiter_check_1thread/", "keyed_limiter_check_2threads/"]]
rows += [("tower", f"tower/{k}, {d}{t}/{r}")
         for k in ["keyed rate limiter", "keyed circuit breaker"]
         for d in ["ready calls in one task", "ready call (block_on each)"]
         for t in ["", ", 2 threads"] for r in ["bulwark keyed", "bulwark"]]
if only:
    rows = [r for r in rows if only in r[1]]

# Criterion writes every run's results under its home (target/criterion by default), where
# benches/report.sh reads the README's table: these runs go to a directory of their own, so a
# comparison never replaces one side of a table's ratio with a figure from another run.
home = tempfile.mkdtemp(prefix="compare-criterion-")

def mean_ns(exe, bench):
    """Criterion's mean for one benchmark (None when the binary has no such benchmark)."""
    out = subprocess.run(
        [exe, "--bench", "--warm-up-time", "1", "--measurement-time", "2", "--noplot",
         "--exact", bench],
        capture_output=True, text=True, env={**os.environ, "CRITERION_HOME": home}).stdout
    m = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", out)
    if not m:
        return None
    unit = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}[m.group(2)]
    return float(m.group(1)) * unit

def fmt(ns):
    return "–" if ns is None else (f"{ns:.2f} ns" if ns < 100 else f"{ns:.0f} ns")

print("| benchmark | before | after | change |")
print("|---|---:|---:|---:|")
for suite, bench in rows:
    b_exe, h_exe = base.get(suite), head.get(suite)
    before, after = [], []
    for _ in range(rounds):
        for exe, acc in ((b_exe, before), (h_exe, after)):
            if exe:
                v = mean_ns(exe, bench)
                if v is not None:
                    acc.append(v)
    b, a = (min(before) if before else None), (min(after) if after else None)
    change = "–" if a is None or b is None else f"{(a / b - 1) * 100:+.0f} %"
    print(f"| {bench} | {fmt(b)} | {fmt(a)} | {change} |", flush=True)
shutil.rmtree(home, ignore_errors=True)
PY
rm -f /tmp/compare-base.$$ /tmp/compare-head.$$
