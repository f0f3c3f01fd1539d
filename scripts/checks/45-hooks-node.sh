#!/usr/bin/env bash
# The realtime hooks end to end with real components (tests/hooks-node/): the release server, the official
# JS SDK leancloud-realtime@4 as the clients, and as the hook endpoint either a recording HTTP server in the
# test or a real app on the official `leanengine` Node SDK (tests/hooks-node/engine.js). Installs the
# pinned packages (npm ci), builds the release server when it is missing or older than its sources, runs
# the tests with Node's test runner; every process they start listens on a free loopback port and is
# stopped. Prints one closing line `hooks-node: N passed, M failed`; exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="$root/tests/hooks-node"
bin="${CARGO_TARGET_DIR:-$root/target}/release/leancloud-server"

work=$(mktemp -d)
passed=0
failed=0
summary() {
  local status=$?
  # A step that failed before the tests ran counts as one failure.
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  rm -rf "$work"
  echo "hooks-node: $passed passed, $failed failed"
  if [ "$failed" -ne 0 ]; then exit 1; fi
  exit "$status"
}
trap summary EXIT

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "hooks-node: node and npm are required (Node 20 or later)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "hooks-node: Node $(node --version) is too old; node:test with --test-force-exit needs Node 20" >&2
  exit 1
fi

echo "-- npm ci (tests/hooks-node)"
(cd "$dir" && npm ci --no-audit --no-fund)

# Rebuild when the binary is missing or any of its sources is newer than it.
if [ ! -x "$bin" ] || [ -n "$(find "$root/server/src" "$root/server/migrations" "$root/server/Cargo.toml" \
  "$root/Cargo.toml" "$root/Cargo.lock" -newer "$bin" -type f -print -quit)" ]; then
  echo "-- cargo build --release -p leancloud-server"
  (cd "$root" && cargo build --release --locked -p leancloud-server --bin leancloud-server)
fi

echo "-- node --test (tests/hooks-node)"
# The spec reporter's closing summary (`ℹ pass N`, …) is read back from a copy of its output; a TAP file
# reporter would lose its summary to --test-force-exit.
status=0
(cd "$dir" && LEANCLOUD_SERVER_BIN="$bin" node --test --test-force-exit --test-reporter=spec 2>&1) |
  tee "$work/out.txt" || status=$?

count() { sed 's/\x1b\[[0-9;]*m//g' "$work/out.txt" | sed -n "s/^ℹ $1 \([0-9][0-9]*\)\$/\1/p" | tail -n 1; }
if [ -n "$(count pass)" ]; then
  passed=$(count pass)
  failed=$(($(count fail) + $(count cancelled)))
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
