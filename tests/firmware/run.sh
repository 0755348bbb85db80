#!/usr/bin/env bash
# Builds the firmware for each board, runs it under QEMU (semihosting), and fails on a
# wrong exit status, a missing expected line (expected.txt), a failed check, or a footprint
# over budget (budget.txt); first, a negative control (feature `deliberate-leak`) must fail.
# Prints the footprint table.
#
#   bash tests/firmware/run.sh                 # both boards
#   bash tests/firmware/run.sh mps2-an386      # one board (or microbit)
#
# Needs qemu-system-arm and the thumbv7em-none-eabihf / thumbv6m-none-eabi targets.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/firmware}"
cd "$here"
# Panic locations put source paths into .rodata: strip the checkout's and cargo's own prefix,
# so the footprint does not depend on where the repository or the registry lives. (RUSTFLAGS
# replaces .cargo/config.toml's rustflags, hence cortex-m-rt's linker script again.)
export RUSTFLAGS="-C link-arg=-Tlink.x --remap-path-prefix=$root=bulwark --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=cargo"

# QEMU's virtual time follows the instruction count (128 ns an instruction, about 7.8
# million a second), so a run is the same every time, whatever the host's load.
qemu_common=(-icount shift=7,align=off,sleep=off -semihosting-config enable=on,target=native -nographic)

boards=("$@")
[ "${#boards[@]}" -gt 0 ] || boards=(mps2-an386 microbit)

cargo fmt --check
rows=()
for board in "${boards[@]}"; do
  case "$board" in
    mps2-an386) target=thumbv7em-none-eabihf; machine=(-machine mps2-an386 -cpu cortex-m4) ;;
    microbit) target=thumbv6m-none-eabi; machine=(-machine microbit) ;;
    *) echo "unknown board $board (mps2-an386, microbit)"; exit 2 ;;
  esac
  echo "== $board ($target)"
  elf="$CARGO_TARGET_DIR/$target/release/bulwark-firmware"
  log="$CARGO_TARGET_DIR/$board.log"

  # Negative control first: a build whose interrupt handler leaks a bulkhead permit and drops
  # a breaker outcome must fail its checks and exit non-zero.
  cargo build -q --release --target "$target" --features deliberate-leak
  status=0
  timeout 60 qemu-system-arm "${machine[@]}" "${qemu_common[@]}" -kernel "$elf" > "$log" 2>&1 || status=$?
  if [ "$status" -ne 1 ] \
    || ! grep -qF "CHECK FAILED: storm breaker totals" "$log" \
    || ! grep -qF "CHECK FAILED: storm bulkhead:" "$log"; then
    cat "$log"
    echo "FAILED: $board: the deliberate leak was not caught (exit status $status)"; exit 1
  fi
  echo "negative control: a leaked permit and a dropped outcome fail the run (exit 1), as they must"

  cargo clippy -q --release --target "$target" -- -D warnings
  cargo build -q --release --target "$target"
  status=0
  timeout 60 qemu-system-arm "${machine[@]}" "${qemu_common[@]}" -kernel "$elf" > "$log" 2>&1 || status=$?
  cat "$log"
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $board exited with status $status (124: the 60 s time limit)"; exit 1
  fi
  if grep -q -e "CHECK FAILED" -e "FIRMWARE FAILED" "$log"; then
    echo "FAILED: $board printed a failure"; exit 1
  fi
  grep -qF -- "bulwark firmware on $board" "$log" || { echo "FAILED: $board: no banner"; exit 1; }
  missing=0
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    if ! grep -qF -- "$line" "$log"; then
      echo "MISSING on $board: $line"; missing=1
    fi
  done < expected.txt
  [ "$missing" -eq 0 ] || { echo "FAILED: $board: expected lines missing"; exit 1; }

  # Footprint from the ELF's section headers.
  read -r flash ram < <(size -A "$elf" | awk '
    $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
    $1 == ".data" { flash += $2; ram += $2 }
    $1 == ".bss" || $1 == ".uninit" { ram += $2 }
    END { print flash + 0, ram + 0 }')
  stack=$(sed -n 's/^stack high-water mark: \([0-9]*\) bytes.*/\1/p' "$log")
  read -r bflash bram bstack < <(awk -v b="$board" '$1 == b { print $2, $3, $4 }' budget.txt)
  echo "footprint of $board: flash $flash B (budget $bflash), static RAM $ram B (budget $bram), stack $stack B (budget $bstack)"
  over=0
  [ "$flash" -le "$bflash" ] || { echo "OVER BUDGET: $board flash $flash > $bflash"; over=1; }
  [ "$ram" -le "$bram" ] || { echo "OVER BUDGET: $board static RAM $ram > $bram"; over=1; }
  [ "${stack:-999999}" -le "$bstack" ] || { echo "OVER BUDGET: $board stack ${stack:-?} > $bstack"; over=1; }
  [ "$over" -eq 0 ] || exit 1
  rows+=("| $board ($target) | $flash B | $ram B | $stack B |")
  echo "$board: exit 0, every expected line present, within budget"
done

echo
echo "| board | flash (.vector_table + .text + .rodata + .data) | static RAM (.data + .bss) | stack high-water |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
