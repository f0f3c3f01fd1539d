#!/usr/bin/env bash
# Run the whole system locally: the LeanCloud-compatible server (fresh database in a temp dir) and the Lambda
# functions under `cargo lambda watch` (installed into .venv-lambda if missing), driven with the sample
# events in events/. Prints what each function answered and what the server stored, and what a JS SDK client
# (scripts/lib/rt-listen.js, leancloud-realtime from tests/realtime) logged in as the events' clients received
# over WebSocket. Then the server (with its web console at /console/) and the emulator keep running until Ctrl-C.
#   KEEP_LOGS=1 scripts/run-local.sh   keeps the server and emulator logs
#   scripts/run-local.sh --exit        (or RUN_LOCAL_EXIT=1, or CI=true) stops everything and exits instead (CI, tests)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/lambda-local.sh
source scripts/lib/rt-listen.sh

local_start
echo "== server: $LEANCLOUD_API_SERVER   Lambda runtime API emulator: http://127.0.0.1:$LAMBDA_PORT"
rt_listen_start alice bob carol dave
echo "== create-conversation (HTTP API event, then a function URL call)"
local_create_conversations
echo "  ok    create-conversation.http.json: conversation $NORMAL_CONVERSATION_ID"
echo "  ok    POST /lambda-url/create-conversation/conversations: system conversation $SYSTEM_CONVERSATION_ID"
echo "== every function with its sample events (each SQS batch holds one invalid record)"
local_run_events

echo "== what the server stored (read back over its HTTP API)"
python3 scripts/lib/show_stored.py

rt_listen_stop

echo "== $PASSED invocations as expected, $FAILED unexpected"
[ "$FAILED" -eq 0 ]

# Keep the server, its web console and the functions' emulator running until Ctrl-C, unless told to exit.
if [ "${1:-}" = --exit ] || [ "${RUN_LOCAL_EXIT:-}" = 1 ] || [ "${CI:-}" = true ]; then
  exit 0
fi
echo "== web console: $LEANCLOUD_API_SERVER/console/"
if [ "$LEANCLOUD_APP_MASTER_KEY" = dev-master-key ]; then
  echo "   sign in with the development master key: dev-master-key"
else
  echo "   sign in with the master key in LEANCLOUD_APP_MASTER_KEY"
fi
echo "== server and Lambda emulator (http://127.0.0.1:$LAMBDA_PORT) running; Ctrl-C stops them"
while kill -0 "${LOCAL_PIDS[0]}" 2>/dev/null; do
  sleep 2 &
  wait $! || true
done
echo "error: leancloud-server stopped; its log: $LOCAL_TMP/server.log" >&2
exit 1
