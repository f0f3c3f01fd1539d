#!/usr/bin/env bash
# The project's whole test suite: what CI runs (through .ci/run) and what the README's quick start names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Each stage's header says when it starts (seconds since the start), so a slow stage shows in CI's log.
stage() { echo "== $* (at ${SECONDS} s)"; }

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
stage "cargo test"
scripts/setup.sh aws  # moto: DynamoDB/SQS/SSM/Scheduler (tests/tests/it/bulk.rs, schedules.rs) and S3 (file store)
# PostgreSQL for the server's second backend: the two-instance tests, the black-box suite's second run, the
# SDK conformance check on PostgreSQL, the realtime checks across instances.
# shellcheck source=lib/postgres.sh
source scripts/lib/postgres.sh
# moto's S3 for the server's S3 file store (the black-box suite's PostgreSQL run keeps its files there).
# shellcheck source=lib/s3.sh
source scripts/lib/s3.sh
pg_start
trap 'pg_stop; s3_stop' EXIT
s3_start
cargo test --workspace --locked 2>&1 | tee /tmp/cargo-test.log
stage "cargo test: the server's black-box suite on PostgreSQL (the workspace build: its features, no rebuild)"
LEANCLOUD_TEST_BACKEND=postgres cargo test --workspace --locked --test api -- --skip instances:: --skip postgres_tls:: 2>&1 | tee -a /tmp/cargo-test.log
pg_drop_test_databases
# One summary line for CI, counted over every test binary.
awk '/^test result:/ {p+=$4; f+=$6; s+=$8} END {printf "cargo: %d passed, %d failed, %d skipped\n", p, f, s}' /tmp/cargo-test.log

# The fuzz targets build in the background at the lowest CPU priority while the checks before them run: several
# of those mostly wait (Node suites, a browser, servers' timeouts), and any that computes keeps the CPU. The fuzz
# check then waits for that build and finds its targets built.
fuzz_build=""
if [ -e scripts/checks/60-fuzz.sh ]; then
  nice -n 19 bash scripts/checks/60-fuzz.sh --build-only >/tmp/fuzz-prebuild.log 2>&1 &
  fuzz_build=$!
  trap 'kill "$fuzz_build" 2>/dev/null || true; pg_stop; s3_stop' EXIT
fi
for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  stage "$check"
  if [ "$check" = scripts/checks/60-fuzz.sh ] && [ -n "$fuzz_build" ]; then
    wait "$fuzz_build" || echo "(the background fuzz build failed: the check builds again and shows why)"
    echo "fuzz: the background build ended at ${SECONDS} s"
  fi
  bash "$check"
done
stage "all tests passed"
