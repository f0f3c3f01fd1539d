# shellcheck shell=bash
# Shared by scripts/run-local.sh and scripts/checks/30-lambda-runtime.sh: start the local LeanCloud-compatible
# server and `cargo lambda watch` (the Lambda runtime API emulator) with the function binaries, create the two
# conversations the sample events name, and invoke functions with events/*.json.
#
# Source it from the repository root, then call `local_start`; `local_stop` runs on exit.
# Optional, set before `local_start`: LOCAL_SERVER_BIN (a server binary to run instead of the debug build, e.g. the
# release one), LOCAL_SERVER_ARGS (extra server flags, split on spaces) and SERVER_PORT (default: a free port).

LOCAL_ROOT=$(pwd)
LOCAL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/im-lambda.XXXXXX")   # db, logs, substituted events: outside the watched tree
LOCAL_PIDS=()
export LEANCLOUD_APP_ID=${LEANCLOUD_APP_ID:-dev-app-id-gzGzoHsz}
export LEANCLOUD_APP_KEY=${LEANCLOUD_APP_KEY:-dev-app-key}
export LEANCLOUD_APP_MASTER_KEY=${LEANCLOUD_APP_MASTER_KEY:-dev-master-key}
# recall-message after send-message (it recalls and edits messages local_send_messages sends), the moderation
# functions before remove-member; remove-member last: it removes the members the send-message events write as
FUNCTIONS=(create-conversation add-member send-message broadcast recall-message mute-members block-members remove-member)
PASSED=0 FAILED=0

log() { printf '%s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Poll until `curl` gets any HTTP answer from $1 (bounded: a startup that never answers is an error).
wait_http() {
  local url=$1 what=$2 log_file=$3 pid=$4
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "error: $what exited; its log ($log_file):"
      tail -n 40 "$log_file" >&2
      return 1
    fi
    sleep 0.5
  done
  log "error: $what did not answer at $url; its log ($log_file):"
  tail -n 40 "$log_file" >&2
  return 1
}

local_stop() {
  local pid
  for pid in "${LOCAL_PIDS[@]}"; do
    # Each background job was started in its own process group (setsid): stop the group, i.e. the process and
    # the children it spawned (cargo lambda watch runs `cargo run` and the function binaries).
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${LOCAL_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  LOCAL_PIDS=()
  if [ -n "${KEEP_LOGS:-}" ]; then
    log "logs kept in $LOCAL_TMP"
  else
    rm -rf "$LOCAL_TMP"
  fi
}

# Build everything first so the emulator's lazy `cargo run` per function starts at once.
local_build() {
  log "building leancloud-server and the function binaries"
  [ -n "${LOCAL_SERVER_BIN:-}" ] || cargo build --quiet -p leancloud-server --bin leancloud-server
  cargo build --quiet -p im-functions --bins
}

local_start() {
  trap local_stop EXIT
  trap 'exit 130' INT TERM

  if ! [ -x "$LOCAL_ROOT/.venv-lambda/bin/cargo-lambda" ]; then
    log "installing cargo-lambda into .venv-lambda"
  fi
  scripts/setup.sh lambda
  # zig is found only through PATH (`python3 -m ziglang` inside the venv).
  export PATH="$LOCAL_ROOT/.venv-lambda/bin:$PATH"

  local_build
  local target_dir
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

  SERVER_PORT=${SERVER_PORT:-$(free_port)}
  export LEANCLOUD_API_SERVER="http://127.0.0.1:$SERVER_PORT"
  local server_bin=${LOCAL_SERVER_BIN:-$target_dir/debug/leancloud-server} server_args
  read -r -a server_args <<<"${LOCAL_SERVER_ARGS:-}"
  log "starting $(basename "$(dirname "$server_bin")")/leancloud-server on $LEANCLOUD_API_SERVER (fresh database in $LOCAL_TMP)"
  setsid "$server_bin" --listen "127.0.0.1:$SERVER_PORT" --db "$LOCAL_TMP/leancloud.sqlite3" ${server_args[@]+"${server_args[@]}"} \
    >"$LOCAL_TMP/server.log" 2>&1 &
  LOCAL_PIDS+=($!)
  wait_http "$LEANCLOUD_API_SERVER/" "leancloud-server" "$LOCAL_TMP/server.log" "$!"

  LAMBDA_PORT=$(free_port)
  log "starting cargo lambda watch on 127.0.0.1:$LAMBDA_PORT"
  setsid cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" --ignore-changes -p im-functions \
    --env-var "LEANCLOUD_APP_ID=$LEANCLOUD_APP_ID" \
    --env-var "LEANCLOUD_APP_KEY=$LEANCLOUD_APP_KEY" \
    --env-var "LEANCLOUD_APP_MASTER_KEY=$LEANCLOUD_APP_MASTER_KEY" \
    --env-var "LEANCLOUD_API_SERVER=$LEANCLOUD_API_SERVER" \
    --env-var "RUST_LOG=${RUST_LOG:-info}" \
    >"$LOCAL_TMP/watch.log" 2>&1 &
  LOCAL_PIDS+=($!)
  wait_http "http://127.0.0.1:$LAMBDA_PORT/" "cargo lambda watch" "$LOCAL_TMP/watch.log" "$!"
}

# Invoke a function through the runtime API: local_invoke <function> <event file>. Prints the function's answer
# (or the runtime's error) on stdout; returns cargo lambda's exit status.
local_invoke() {
  local function=$1 event=$2 data
  data="$LOCAL_TMP/$(basename "$event")"
  substitute_ids <"$event" >"$data"
  cargo lambda invoke "$function" --data-file "$data" --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
    --output-format json 2>&1
}

# Invoke a function with inline JSON.
local_invoke_json() {
  local function=$1 json=$2 data
  data=$(mktemp "$LOCAL_TMP/inline.XXXXXX")
  printf '%s' "$json" | substitute_ids >"$data"
  cargo lambda invoke "$function" --data-file "$data" --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
    --output-format json 2>&1
}

# The sample events name NORMAL_CONVERSATION_ID and SYSTEM_CONVERSATION_ID, and the recall-message events two
# messages (see events/README.md). SECOND_MESSAGE_* first: MESSAGE_ID is a part of SECOND_MESSAGE_ID.
substitute_ids() {
  sed -e "s/SECOND_MESSAGE_ID/${SECOND_MESSAGE_ID:-SECOND_MESSAGE_ID}/g" \
    -e "s/SECOND_MESSAGE_TIMESTAMP/${SECOND_MESSAGE_TIMESTAMP:-0}/g" \
    -e "s/MESSAGE_ID/${MESSAGE_ID:-MESSAGE_ID}/g" -e "s/MESSAGE_TIMESTAMP/${MESSAGE_TIMESTAMP:-0}/g" \
    -e "s/NORMAL_CONVERSATION_ID/${NORMAL_CONVERSATION_ID:?}/g" -e "s/SYSTEM_CONVERSATION_ID/${SYSTEM_CONVERSATION_ID:?}/g"
}

# POST through a function URL: function_url <function> <path> <json body> [method]. Prints "<status> <body>".
function_url() {
  local function=$1 path=$2 body=$3 method=${4:-POST}
  curl -s -w '\n%{http_code}' -X "$method" -H 'content-type: application/json' --data "$body" \
    "http://127.0.0.1:$LAMBDA_PORT/lambda-url/$function$path" |
    python3 -c 'import sys; lines = sys.stdin.read().rsplit("\n", 1); print(lines[1], lines[0])'
}

# Send one message as alice into the normal conversation through send-message's function URL; print
# "<msg_id> <timestamp>".
local_send_one() {
  local out
  out=$(function_url send-message "/conversations/$NORMAL_CONVERSATION_ID/messages" "{\"from_client\":\"alice\",\"message\":\"$1\"}")
  printf '%s' "$out" | python3 -c \
    'import json,sys; status, body = sys.stdin.read().split(" ", 1); assert status == "200", (status, body); m = json.loads(body)["messages"][0]; print(m["msg_id"], m["timestamp"])' || {
    log "error: send-message did not send: $out"
    return 1
  }
}

# The two messages the recall-message events name (events/README.md): export MESSAGE_ID, MESSAGE_TIMESTAMP,
# SECOND_MESSAGE_ID and SECOND_MESSAGE_TIMESTAMP.
local_send_messages() {
  local first second
  first=$(local_send_one "Where is my order?") || return 1
  second=$(local_send_one "Thanks, got it!") || return 1
  read -r MESSAGE_ID MESSAGE_TIMESTAMP <<<"$first"
  read -r SECOND_MESSAGE_ID SECOND_MESSAGE_TIMESTAMP <<<"$second"
  export MESSAGE_ID MESSAGE_TIMESTAMP SECOND_MESSAGE_ID SECOND_MESSAGE_TIMESTAMP
}

# Create the normal conversation through the create-conversation sample event (Lambda invoke) and the system
# conversation through create-conversation's function URL; export both ids.
local_create_conversations() {
  NORMAL_CONVERSATION_ID=placeholder SYSTEM_CONVERSATION_ID=placeholder
  local out
  out=$(local_invoke create-conversation events/create-conversation.http.json)
  NORMAL_CONVERSATION_ID=$(printf '%s' "$out" | python3 -c \
    'import json,sys; r = json.load(sys.stdin); assert r["statusCode"] == 201, r; print(json.loads(r["body"])["objectId"])') || {
    log "error: create-conversation did not create the conversation: $out"
    return 1
  }
  out=$(function_url create-conversation /conversations \
    '{"name":"Announcements","system":true,"attributes":{"purpose":"broadcasts"}}')
  SYSTEM_CONVERSATION_ID=$(printf '%s' "$out" | python3 -c \
    'import json,sys; status, body = sys.stdin.read().split(" ", 1); assert status == "201", (status, body); print(json.loads(body)["objectId"])') || {
    log "error: the create-conversation function URL did not create the system conversation: $out"
    return 1
  }
  export NORMAL_CONVERSATION_ID SYSTEM_CONVERSATION_ID
  PASSED=$((PASSED + 2))
}

# Invoke every function with each of its sample events, in an order that makes sense on a fresh server (members
# before messages); check each answer, counting into PASSED and FAILED.
local_run_events() {
  local function event out
  # create-conversation.http.json already ran in local_create_conversations; its check is counted there.
  for function in "${FUNCTIONS[@]}"; do
    if [ "$function" = recall-message ] && [ -z "${MESSAGE_ID:-}" ]; then
      if local_send_messages; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); continue; fi
    fi
    for event in events/"$function".*.json; do
      [ "$event" = events/create-conversation.http.json ] && continue
      out=$(local_invoke "$function" "$event")
      if printf '%s' "$out" | python3 scripts/lib/lambda_expect.py "$(basename "$event")"; then
        PASSED=$((PASSED + 1))
      else
        FAILED=$((FAILED + 1))
      fi
    done
  done
}

# Invoke a function with a bad event and check the runtime reports an error (and no stack trace, no key):
# local_expect_error <function> <description> <json> <text the error must contain>
local_expect_error() {
  local function=$1 what=$2 json=$3 want=$4 out
  out=$(local_invoke_json "$function" "$json") || true
  # Plain string tests on the captured text, no pipe: bash's printf writes a multi-line text to a pipe line by
  # line, `grep -q` exits at its match, and a later line then meets a closed pipe; under pipefail the writer's
  # SIGPIPE failed the test (CI once counted this correct answer as a failure).
  if [[ $out == *"$want"* && $out != *"$LEANCLOUD_APP_MASTER_KEY"* && $out != *'panicked at'* ]]; then
    printf '  ok    %s %s: %s\n' "$function" "$what" "$(printf '%s' "$out" | tr -d '\n' | cut -c1-160)"
    PASSED=$((PASSED + 1))
  else
    printf '  FAIL  %s %s: expected an error containing %q, got: %s\n' "$function" "$what" "$want" "$out"
    FAILED=$((FAILED + 1))
  fi
}
