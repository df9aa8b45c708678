#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a bounded time with
# libFuzzer via cargo-fuzz, then prints a summary: executions, corpus size
# and crashes per target. Exits non-zero if any target crashed; the crashing
# inputs are in fuzz/artifacts/<target>/ (reproduce with
# `cargo fuzz run -s none <target> <file>` from fuzz/).
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]   (default 60, all)
#
# Works on the stable toolchain: there is no sanitizer to enable (the crate
# forbids unsafe code), and RUSTC_BOOTSTRAP lets cargo-fuzz pass the few
# nightly-only flags it uses. Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(normalize decode sse request policy)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz run --sanitizer none)

echo "==> building ${targets[*]}"
for target in "${targets[@]}"; do
  cargo fuzz build --sanitizer none "$target"
done

mkdir -p logs
summary=()
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  before=$(ls "artifacts/$target" | wc -l)
  log="logs/$target.log"
  echo "==> $target for ${seconds}s (log: fuzz/$log)"
  status=0
  "${fuzz[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  after=$(ls "artifacts/$target" | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(ls "corpus/$target" | wc -l)
  crashes=$((after - before))
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    grep -m1 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" || true
    ls -t "artifacts/$target" | head -3 | sed "s|^|  new artifact: fuzz/artifacts/$target/|"
  fi
  summary+=("$(printf '%-10s %8s %12s %10s %8s %8s %6s' "$target" "${seconds}s" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" "$status")")
done

echo
printf '%-10s %8s %12s %10s %8s %8s %6s\n' target time execs execs/s corpus crashes exit
printf '%s\n' "${summary[@]}"
exit "$failed"
