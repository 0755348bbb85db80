#!/usr/bin/env bash
# Code size of a #![no_std] binary using a circuit breaker, a retry policy and a rate limiter
# (tests/no-std-check/src/bin/size.rs), built with opt-level "z", fat LTO, one codegen unit
# and panic = "abort" (the `size` profile of tests/no-std-check/Cargo.toml), stripped.
# Host (x86_64 linux, static entry, libc only for memcpy/memset) and, when the target is
# installed, thumbv7em-none-eabihf (portable-atomic + critical-section for the u64 atomics).
#
#   bash benches/footprint.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="$root/target/no-std-check"
cd "$root/tests/no-std-check"

report() { # $1 = label, $2 = binary
  local bytes text
  bytes=$(stat -c %s "$2")
  text=$(size -A "$2" | awk '$1 == ".text" { print $2 }')
  printf '| %s | %s B | %s B |\n' "$1" "$bytes" "${text:-?}"
}

echo "| target | stripped binary | .text |"
echo "|---|---:|---:|"
CARGO_TARGET_DIR="$target_dir" cargo build -q --profile size --bin size
"$target_dir/size/size" || { echo "the size probe failed when run"; exit 1; }
report "x86_64-unknown-linux-gnu" "$target_dir/size/size"
if rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf; then
  CARGO_TARGET_DIR="$target_dir" cargo build -q --profile size --bin size \
    --target thumbv7em-none-eabihf --features portable-atomic
  report "thumbv7em-none-eabihf (portable-atomic + critical-section)" \
    "$target_dir/thumbv7em-none-eabihf/size/size"
else
  echo "(thumbv7em-none-eabihf not installed: \`rustup target add thumbv7em-none-eabihf\`)"
fi
