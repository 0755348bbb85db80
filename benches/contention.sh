#!/usr/bin/env bash
# The rate limiter under two-thread contention on real clocks (issue 14, item 9): bulwark's
# `limiter_check_2threads/bulwark_sharded_stdclock_admit` (`ShardedRateLimiter`, 2 shards,
# `ThreadHint`) and `limiter_check_2threads/bulwark_stdclock_admit` (the one-word
# `RateLimiter`) against governor's `limiter_check_2threads/governor_monotonicclock_admit`,
# and against the floor of any one-word limiter on that clock (`floor: std clock read +
# relaxed fetch_add`: the clock read, then one write to one shared word), all in each of
# three consecutive runs, and the range of each ratio (the goal against governor is at most
# 0.8).
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
filter='limiter_check_2threads/(bulwark_sharded_stdclock_admit|bulwark_stdclock_admit|governor_monotonicclock_admit|floor: std clock read \+ relaxed fetch_add)$'
cd "$root"
cargo bench -q -p bulwark-benches --bench admission --no-run
sharded=()
ratios=()
floors=()
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
s, b = mean("bulwark_sharded_stdclock_admit"), mean("bulwark_stdclock_admit")
g = mean("governor_monotonicclock_admit")
f = mean("floor_ std clock read + relaxed fetch_add")
print(f"{s:.1f} {b:.1f} {g:.1f} {f:.1f} {s / g:.2f} {b / g:.2f} {b / f:.2f} {g / f:.2f}")
PY
)"
    read -r s b g f sr r rf gf <<< "$line"
    echo "run $i: sharded ${s} ns, one-word ${b} ns, governor ${g} ns, floor ${f} ns per iteration (one check on each thread): sharded/governor ${sr}, one-word/governor ${r}, one-word/floor ${rf}, governor/floor ${gf}"
    sharded+=("$sr")
    ratios+=("$r")
    floors+=("$rf")
done
range() { printf '%s\n' "$@" | sort -n | awk -v what="$what" 'NR==1{lo=$1} {hi=$1} END{printf "%s over %d runs: %s .. %s\n", what, NR, lo, hi}'; }
what="sharded/governor ratio (goal: at most 0.80)" range "${sharded[@]}"
what="one-word/governor ratio" range "${ratios[@]}"
what="one-word/floor ratio (1.00 is the least a one-word limiter on this clock can cost)" range "${floors[@]}"
