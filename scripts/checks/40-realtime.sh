#!/usr/bin/env bash
# The realtime Node suite (tests/realtime/*.test.js): the official leancloud-realtime 4.x SDK against the release
# leancloud-server on loopback, in binary and base64 mode, protocol v3 and v1, with and without required login
# signatures; and the four Lambda functions under `cargo lambda watch` (scripts/lib/lambda-local.sh) delivering to
# SDK clients. Prints `realtime: N passed, M failed`; exits non-zero on any failure.
#   RT_KEEP_LOGS=1 / KEEP_LOGS=1   keep the test servers' and the emulator's logs
#   RT_TEST_ONLY='chat.test.js'    run only these test files (space-separated, relative to tests/realtime)
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'; then
  echo "error: the realtime suite needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
  echo "realtime: 0 passed, 1 failed"
  exit 1
fi
echo "realtime: npm ci in tests/realtime"
(cd tests/realtime && npm ci --no-audit --no-fund --loglevel=error)

echo "realtime: building the release server"
nice -n 5 cargo build --release --locked --quiet -p leancloud-server --bin leancloud-server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export RT_SERVER_BIN="$target_dir/release/leancloud-server"

# The server the functions talk to (the release binary, realtime on) and `cargo lambda watch`, as the Lambda
# runtime check starts them; functions.test.js logs SDK clients in to that same server.
source scripts/lib/lambda-local.sh
trap local_stop EXIT
SERVER_PORT=$(free_port)
LOCAL_SERVER_BIN=$RT_SERVER_BIN
LOCAL_SERVER_ARGS="--realtime-public-url ws://127.0.0.1:$SERVER_PORT/"
local_start
export RT_FUNCTIONS_API=$LEANCLOUD_API_SERVER RT_LAMBDA_URL="http://127.0.0.1:$LAMBDA_PORT"
export RT_FUNCTIONS_SERVER_LOG="$LOCAL_TMP/server.log"
[ -z "${KEEP_LOGS:-}" ] || export RT_KEEP_LOGS=1

tap="$LOCAL_TMP/realtime.tap"
read -r -a files <<<"${RT_TEST_ONLY:-$(cd tests/realtime && echo ./*.test.js)}"
set +e
(
  cd tests/realtime &&
    timeout --kill-after=30 1500 node --test --test-force-exit --test-concurrency=1 --test-timeout=120000 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap" \
      "${files[@]}"
)
status=$?
set -e

# Count the top-level TAP results (one per test; --test-force-exit may cut the TAP summary short).
count() { { grep -E "$1" "$tap" 2>/dev/null || true; } | { grep -Ev "$2" || true; } | wc -l; }
passed=$(count '^ok [0-9]+ ' '# SKIP')
skipped=$(count '^ok [0-9]+ .*# SKIP' '^$')
failed=$(count '^not ok [0-9]+ ' '^$')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "realtime: node --test exited with status $status without reporting a failed test" >&2
  failed=1
fi
if [ "$skipped" -gt 0 ]; then
  echo "realtime: $passed passed, $failed failed, $skipped skipped"
else
  echo "realtime: $passed passed, $failed failed"
fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
