#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, from a copy of its committed seed corpus.
#
#   bash fuzz/run.sh 20       # CI: a short run per target
#   bash fuzz/run.sh 3600     # a long run (an hour per target)
#
# Needs cargo-fuzz and a nightly toolchain: installs them when missing, or prints one loud
# SKIP line and exits 3 when that is impossible here (so CI can report what it skipped). Exits non-zero when a target crashes (a
# panic, a failed invariant, a leak or timeout), leaving the minimized input under
# fuzz/artifacts/<target>/ and printing it with `cargo fuzz fmt`.
set -uo pipefail

SECONDS_PER_TARGET="${1:-20}"
TARGETS=(breaker limiter semaphore retry time pool)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE" || exit 2

skip() {
    echo "!!!!! WARNING: fuzz SKIPPED: $* !!!!!" >&2
    exit 3
}

command -v cargo >/dev/null || skip "no cargo on PATH"
if ! cargo +nightly --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || skip "no nightly toolchain and no rustup to install one"
    rustup toolchain install nightly --profile minimal >/dev/null 2>&1 \
        || skip "rustup could not install the nightly toolchain"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> fuzz: installing cargo-fuzz (about 1.5 min)"
    cargo install --locked cargo-fuzz >/dev/null 2>&1 || skip "cargo install cargo-fuzz failed"
fi

echo "==> fuzz: building ${#TARGETS[@]} targets (cargo +nightly fuzz build -O)"
cargo +nightly fuzz build -O || { echo "==> fuzz: BUILD FAILED" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bulwark-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
    # A copy: what a run discovers never grows the committed corpus.
    mkdir -p "$WORK/$t" "artifacts/$t"
    cp -r "corpus/$t/." "$WORK/$t/" 2>/dev/null || true
    log="$WORK/$t.log"
    start=$(date +%s)
    cargo +nightly fuzz run -O "$t" "$WORK/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "==> fuzz: $t: ok, ${execs:-?} executions in ${took}s"
        continue
    fi
    failed+=("$t")
    echo "==> fuzz: $t: FAILED (exit $rc) after ${execs:-?} executions in ${took}s" >&2
    grep -E "panicked at|^[[:space:]]*(assertion|left|right)|ERROR: libFuzzer|SUMMARY" "$log" | head -20 >&2
    crash="$(ls -t "artifacts/$t"/crash-* "artifacts/$t"/leak-* "artifacts/$t"/timeout-* \
        "artifacts/$t"/oom-* 2>/dev/null | head -1)"
    if [ -n "$crash" ]; then
        echo "==> fuzz: $t: minimizing $crash" >&2
        cargo +nightly fuzz tmin -O "$t" "$crash" -- -runs=2000 >"$WORK/$t.tmin.log" 2>&1
        min="$(ls -t "artifacts/$t"/minimized-from-* 2>/dev/null | head -1)"
        [ -n "$min" ] && crash="$min"
        echo "==> fuzz: $t: crashing input: fuzz/artifacts/$t/$(basename "$crash")" >&2
        cargo +nightly fuzz fmt -O "$t" "$crash" 2>&1 | tail -n 60 >&2
        echo "==> fuzz: reproduce: (cd fuzz && cargo +nightly fuzz run -O $t artifacts/$t/$(basename "$crash"))" >&2
    else
        tail -n 40 "$log" >&2
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "==> fuzz: all ${#TARGETS[@]} targets ok (${SECONDS_PER_TARGET}s each)"
