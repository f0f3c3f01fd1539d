#!/usr/bin/env bash
# Run the whole system locally: the LeanCloud-compatible server (fresh database in a temp dir) and the four
# Lambda functions under `cargo lambda watch` (installed into .venv-lambda if missing), driven with the sample
# events in events/. Prints what each function answered and what the server stored, and what a JS SDK client
# (scripts/lib/rt-listen.js, leancloud-realtime from tests/realtime) logged in as the events' clients received
# over WebSocket, then stops everything.
#   KEEP_LOGS=1 scripts/run-local.sh   keeps the server and emulator logs
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
