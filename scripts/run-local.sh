#!/usr/bin/env bash
# Run the whole system locally: the LeanCloud-compatible server (fresh database in a temp dir) and the four
# Lambda functions under `cargo lambda watch` (installed into .venv-lambda if missing), driven with the sample
# events in events/. Prints what each function answered and what the server stored, then stops everything.
#   KEEP_LOGS=1 scripts/run-local.sh   keeps the server and emulator logs
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/lambda-local.sh

local_start
echo "== server: $LEANCLOUD_API_SERVER   Lambda runtime API emulator: http://127.0.0.1:$LAMBDA_PORT"
echo "== create-conversation (HTTP API event, then a function URL call)"
local_create_conversations
echo "  ok    create-conversation.http.json: conversation $NORMAL_CONVERSATION_ID"
echo "  ok    POST /lambda-url/create-conversation/conversations: system conversation $SYSTEM_CONVERSATION_ID"
echo "== every function with its sample events (each SQS batch holds one invalid record)"
local_run_events

echo "== what the server stored (read back over its REST API)"
rest_get "/classes/_Conversation/$NORMAL_CONVERSATION_ID" | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(f"  conversation {c.get(\"objectId\")} \"{c.get(\"name\")}\": members {\", \".join(c.get(\"m\", []))}")'
rest_get "/rtm/messages/history?convid=$NORMAL_CONVERSATION_ID&limit=20" | python3 -c '
import json, sys
messages = json.load(sys.stdin)
print(f"  {len(messages)} messages stored in it:")
for m in reversed(messages):
    print(f"    {m.get(\"from\")}: {m.get(\"data\")}")'
rest_get "/rtm/broadcast?conv_id=$SYSTEM_CONVERSATION_ID" | python3 -c '
import json, sys
body = json.load(sys.stdin)
items = body if isinstance(body, list) else body.get("results", body)
if isinstance(items, list):
    print(f"  {len(items)} broadcasts recorded in system conversation '"$SYSTEM_CONVERSATION_ID"':")
    for b in items:
        print(f"    {b.get(\"from\") or b.get(\"from_peer\")}: {b.get(\"data\") or b.get(\"message\")}")
else:
    print(f"  broadcasts: {json.dumps(body)[:200]}")' || true

echo "== $PASSED invocations as expected, $FAILED unexpected"
[ "$FAILED" -eq 0 ]
