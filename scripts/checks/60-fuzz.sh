#!/usr/bin/env bash
# The cargo-fuzz targets in fuzz/ (fuzz/README.md): build them once with nightly, then run each for
# FUZZ_SECONDS (default 30) from its committed corpus, on a scratch copy so the run never changes the repo.
# A crash, a panic, a timeout (-timeout=5: a hang) or an out-of-memory fails the check; the input is left in
# fuzz/artifacts/<target>/. Prints `fuzz: N targets, M runs, K crashes`.
#
# Build flags: `--dev --sanitizer none`. The code under test is safe Rust (`unsafe_code = "forbid"` in the
# workspace), where AddressSanitizer adds little to the bounds checks that already panic, at the cost of a slower
# build and slower execs. A cold build is the check's whole cost: it is dominated by compiling the dependency tree
# (the AWS SDK crates im-functions links) with coverage instrumentation; the `--dev` profile skips LLVM
# optimisation (the release build also forces one codegen unit per crate) and keeps debug assertions, so integer
# overflow still panics. Execs are ~7-15x slower than a release build, which is fine for a 30 s regression run from
# the committed corpus; the long runs in fuzz/README.md use a release build. Measured cold on the shared 2-core
# machine (load ~6): 24m46s build + 2m20s runs = 27m07s; warm (only project crates changed): ~1.5 min build.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

flags=(--dev --sanitizer none)
[ -z "${FUZZ_TARGET_DIR:-}" ] || flags+=(--target-dir "$FUZZ_TARGET_DIR")
cd fuzz
echo "fuzz: building the targets"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if ! nice -n 5 cargo +nightly fuzz build "${flags[@]}" >"$scratch/build.log" 2>&1; then
  grep -v '^ *Compiling ' "$scratch/build.log" | tail -60
  echo "fuzz: 0 targets, 0 runs, build failed"
  exit 1
fi
grep -E '^ *Finished' "$scratch/build.log" || true
targets=0 runs=0 crashes=0
for target in $(cargo +nightly fuzz list); do
  targets=$((targets + 1))
  mkdir -p "$scratch/$target"
  cp -r "corpus/$target/." "$scratch/$target/" 2>/dev/null || true
  dict=()
  case $target in
    realtime_frame | realtime_sessions) ;;  # protobuf bytes, operation bytes: no dictionary
    *) dict=(-dict=dicts/json.dict) ;;
  esac
  log="$scratch/$target.log"
  status=0
  cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" -- \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || status=$?
  n=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$log" | tail -1)
  rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$log" | tail -1)
  runs=$((runs + ${n:-0}))
  if [ "$status" -ne 0 ]; then
    crashes=$((crashes + 1))
    echo "fuzz: $target FAILED (exit $status):"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written|timeout after|out-of-memory' "$log" | head -20 || tail -40 "$log"
  else
    echo "fuzz: $target ${n:-0} runs (${rate:-?}/s), no crash"
  fi
done
echo "fuzz: $targets targets, $runs runs, $crashes crashes"
[ "$crashes" -eq 0 ]
