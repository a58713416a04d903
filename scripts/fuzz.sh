#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a bounded time and fails on the
# first crash, hang or panic. Stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its unstable
# flags. Seeds are read from fuzz/corpus/<target> (committed); what libFuzzer finds goes to a
# scratch copy, so a run never changes the repository. A crashing input is kept in
# fuzz/artifacts/<target>/ and printed.
#   FUZZ_SECONDS   seconds per target (default 20: 5 targets, 100 s of fuzzing after the build)
#   FUZZ_TARGETS   space-separated subset (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
# Plain release builds with libFuzzer's coverage instrumentation but no AddressSanitizer: the
# code under test is safe Rust (unsafe_code is forbidden in every crate), so what there is to
# find is panics, overflows (overflow checks are on) and hangs, and an uninstrumented build is
# faster to build and to run.
SANITIZER="${FUZZ_SANITIZER:-none}"
SECONDS_EACH="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}"

# One build of every target (a single cargo invocation shares the dependencies' build).
cargo fuzz build --fuzz-dir fuzz --sanitizer "$SANITIZER"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=""
for t in $TARGETS; do
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  echo "[fuzz] $t for ${SECONDS_EACH}s"
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: an input making us allocate
  # gigabytes is a finding too; -max_len: config files are bounded (4 MiB) but useful inputs
  # are small.
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer "$SANITIZER" "$t" \
      "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
      -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
    tail -n 40 "$scratch/$t.log"
    echo "[fuzz] $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    failed="$failed $t"
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$scratch/$t.log" | tr '\n' ' '
    echo
  fi
done
if [ -n "$failed" ]; then
  echo "[fuzz] crashes in:$failed" >&2
  exit 1
fi
echo "[fuzz] no crash in:" $TARGETS
