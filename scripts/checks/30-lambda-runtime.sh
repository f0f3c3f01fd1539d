#!/usr/bin/env bash
# Drive every function binary through the Lambda runtime API (cargo lambda watch) with its sample events against
# a fresh local server, and a few malformed events that must come back as clear errors. Then recall-message,
# mute-members and block-members end to end (scripts/lib/moderation_check.py): HTTP and SQS, bad input, and what the
# server holds afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/lambda-local.sh

local_start
local_create_conversations
echo "lambda-runtime: conversations $NORMAL_CONVERSATION_ID (normal) and $SYSTEM_CONVERSATION_ID (system)"
local_run_events
local_expect_error send-message "a payload that is not JSON" 'not json at all' 'failed to deserialize'
local_expect_error add-member "unknown trigger" '{"Records":[{"eventSource":"aws:sns","Sns":{}}]}' 'InvalidEvent'
local_expect_error create-conversation "schedule input" '{"name":"nightly"}' 'UnsupportedTrigger'
local_expect_error broadcast "invalid schedule payload" \
  '{"conversation_id":"SYSTEM_CONVERSATION_ID","message":"no sender"}' 'from_client'
local_expect_error send-message "EventBridge event with an empty detail" \
  '{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","time":"2026-11-25T09:00:00Z","resources":[],"detail":{}}' \
  'InvalidPayload'
local_expect_error recall-message "schedule input" \
  '{"conversation_id":"NORMAL_CONVERSATION_ID","msg_id":"m","from_client":"alice","timestamp":1}' 'UnsupportedTrigger'
local_expect_error mute-members "unknown trigger" '{"Records":[{"eventSource":"aws:sns","Sns":{}}]}' 'InvalidEvent'
if out=$(LAMBDA_PORT=$LAMBDA_PORT python3 scripts/lib/moderation_check.py 2>&1); then rc=0; else rc=$?; fi
printf '%s\n' "$out"
if [[ $(printf '%s\n' "$out" | tail -n 1) =~ ^moderation:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
  PASSED=$((PASSED + BASH_REMATCH[1]))
  FAILED=$((FAILED + BASH_REMATCH[2]))
  [ "$rc" -eq 0 ] || [ "${BASH_REMATCH[2]}" -ne 0 ] || FAILED=$((FAILED + 1))
else
  FAILED=$((FAILED + 1))
fi
echo "lambda-runtime: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
