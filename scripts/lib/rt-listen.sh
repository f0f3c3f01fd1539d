# shellcheck shell=bash
# Used by scripts/run-local.sh after `local_start` (scripts/lib/lambda-local.sh): a real JS SDK client
# (scripts/lib/rt-listen.js) logged in to the local server over WebSocket as the sample events' clients, so the run
# shows what the functions' messages look like to an app. Informational: a listener that cannot start (no Node.js,
# no npm registry, a server without the realtime gateway) is reported and the run goes on as before.

RT_LISTEN_PID=""
RT_LISTEN_LOG=""

# rt_listen_start <client id>...
rt_listen_start() {
  RT_LISTEN_LOG="$LOCAL_TMP/rt-listen.log"
  if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'; then
    echo "== JS SDK client: skipped (needs Node.js 20 or later)"
    return 0
  fi
  if ! [ -d tests/realtime/node_modules/leancloud-realtime ]; then
    log "installing leancloud-realtime into tests/realtime/node_modules"
    if ! (cd tests/realtime && npm ci --no-audit --no-fund --loglevel=error) >&2; then
      echo "== JS SDK client: skipped (npm ci in tests/realtime failed)"
      return 0
    fi
  fi
  echo "== JS SDK client (leancloud-realtime) logging in as $* over ws://127.0.0.1:$SERVER_PORT/"
  setsid node scripts/lib/rt-listen.js "ws://127.0.0.1:$SERVER_PORT/" "$@" >"$RT_LISTEN_LOG" 2>&1 &
  RT_LISTEN_PID=$!
  LOCAL_PIDS+=("$RT_LISTEN_PID")
  for _ in $(seq 1 150); do
    if grep -q '^rt-listen: listening' "$RT_LISTEN_LOG"; then
      sed 's/^/  /' "$RT_LISTEN_LOG"
      return 0
    fi
    if ! kill -0 "$RT_LISTEN_PID" 2>/dev/null; then
      echo "  the JS SDK client could not log in:"
      sed 's/^/  /' "$RT_LISTEN_LOG"
      RT_LISTEN_PID=""
      return 0
    fi
    sleep 0.1
  done
  echo "  the JS SDK client did not log in within 15 s; going on without it"
}

# Give the last deliveries a moment, stop the client and print everything it received.
rt_listen_stop() {
  [ -n "$RT_LISTEN_PID" ] || return 0
  sleep 1
  kill -TERM -- "-$RT_LISTEN_PID" 2>/dev/null || kill -TERM "$RT_LISTEN_PID" 2>/dev/null || true
  wait "$RT_LISTEN_PID" 2>/dev/null || true
  RT_LISTEN_PID=""
  echo "== what the JS SDK client received over WebSocket"
  grep -v '^rt-listen: listening' "$RT_LISTEN_LOG" | sed 's/^/  /'
}
