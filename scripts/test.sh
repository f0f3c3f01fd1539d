#!/usr/bin/env bash
# The project's whole test suite: what CI runs (through .ci/run) and what the README's quick start names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
scripts/setup.sh aws  # moto for the DynamoDB/SQS/SSM/Scheduler tests (tests/tests/it/bulk.rs, schedules.rs)
cargo test --workspace --locked 2>&1 | tee /tmp/cargo-test.log
# One summary line for CI, counted over every test binary.
awk '/^test result:/ {p+=$4; f+=$6; s+=$8} END {printf "cargo: %d passed, %d failed, %d skipped\n", p, f, s}' /tmp/cargo-test.log

for check in scripts/checks/*.sh; do
  [ -e "$check" ] || continue
  echo "== $check"
  bash "$check"
done
echo "== all tests passed"
