#!/usr/bin/env bash
# The rate limiter under two-thread contention on real clocks (issue 14, item 9): bulwark's
# `limiter_check_2threads/bulwark_stdclock_admit` against governor's
# `limiter_check_2threads/governor_monotonicclock_admit`, both in each of three consecutive
# runs, and the range of the ratio (bulwark / governor; the goal is at most 0.8).
#
#   bash benches/contention.sh            # three runs, 3 s of measurement per row
#   RUNS=5 MEASURE=5 bash benches/contention.sh
#
# Two threads on two cores measure the cores as much as the code: run it on a quiet machine
# (nothing else building), and read the range, not one number.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
runs="${RUNS:-3}"
measure="${MEASURE:-3}"
filter='limiter_check_2threads/(bulwark_stdclock_admit|governor_monotonicclock_admit)$'
cd "$root"
cargo bench -q -p bulwark-benches --bench admission --no-run
ratios=()
for i in $(seq 1 "$runs"); do
    log="$target/contention-run-$i.log"
    if ! cargo bench -q -p bulwark-benches --bench admission -- \
        --warm-up-time 1 --measurement-time "$measure" "$filter" > "$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    line="$(python3 - "$target/criterion/limiter_check_2threads" <<'PY'
import json, os, sys
d = sys.argv[1]
def mean(name):
    with open(os.path.join(d, name, "new", "estimates.json")) as f:
        return json.load(f)["mean"]["point_estimate"]
b, g = mean("bulwark_stdclock_admit"), mean("governor_monotonicclock_admit")
print(f"{b:.1f} {g:.1f} {b / g:.2f}")
PY
)"
    read -r b g r <<< "$line"
    echo "run $i: bulwark ${b} ns, governor ${g} ns per iteration (one check on each thread): ratio ${r}"
    ratios+=("$r")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk 'NR==1{lo=$1} {hi=$1} END{printf "ratio range over %d runs: %s .. %s (goal: at most 0.80)\n", NR, lo, hi}'
