#!/usr/bin/env bash
# Conformance of server/ with the official Python SDK (leancloud==3.0.2): builds and starts the server on a
# free loopback port with a fresh database, runs tests/conformance/sdk_conformance.py against it, and always
# stops the server; once on SQLite, and once on a fresh PostgreSQL database when LEANCLOUD_TEST_POSTGRES names a
# cluster (scripts/test.sh starts one). Prints `sdk-conformance: N passed, M failed` per backend; exits non-zero
# on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

bash scripts/setup.sh sdk
cargo build --quiet --locked -p leancloud-server --bin leancloud-server
bin="${CARGO_TARGET_DIR:-$root/target}/debug/leancloud-server"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export SDK_APP_ID="TestAppId-gzGzoHsz" SDK_APP_KEY="TestAppKey" SDK_MASTER_KEY="TestMasterKey"

# Runs the conformance script against a server on database $1 (a SQLite path or a PostgreSQL URL).
run_on() {
  local db=$1 backend=$2 port status=0
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # The conformance script starts a stand-in SMTP server on this port (the password-reset mail).
  smtp_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  LEANCLOUD_APP_ID="$SDK_APP_ID" LEANCLOUD_APP_KEY="$SDK_APP_KEY" LEANCLOUD_APP_MASTER_KEY="$SDK_MASTER_KEY" \
    LEANCLOUD_DATABASE_URL="$db" LEANCLOUD_SMTP_URL="smtp://127.0.0.1:$smtp_port" RUST_LOG="${RUST_LOG:-warn}" \
    "$bin" --listen "127.0.0.1:$port" >"$work/server-$backend.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/__admin/health" 2>/dev/null; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/server-$backend.log" >&2; echo "sdk-conformance: server did not start" >&2; return 1; fi
    sleep 0.05
  done
  echo "sdk-conformance on $backend:"
  LEANCLOUD_API_SERVER="http://127.0.0.1:$port" SDK_SMTP_PORT="$smtp_port" "$root/.venv-sdk/bin/python" \
    tests/conformance/sdk_conformance.py || status=$?
  if [ "$status" -ne 0 ]; then
    echo "--- server log ($backend)" >&2
    tail -n 50 "$work/server-$backend.log" >&2
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  return "$status"
}

status=0
run_on "$work/conformance.sqlite3" sqlite || status=$?
if [ -n "${LEANCLOUD_TEST_POSTGRES:-}" ]; then
  name="conformance_$$"
  psql -q "$LEANCLOUD_TEST_POSTGRES" -c "CREATE DATABASE $name" >/dev/null
  # shellcheck source=../lib/postgres.sh
  source scripts/lib/postgres.sh
  run_on "$(pg_database_url "$name")" postgres || status=$?
else
  echo "sdk-conformance: LEANCLOUD_TEST_POSTGRES is not set; PostgreSQL not checked" >&2
  [ -z "${CI:-}" ] || status=1
fi
exit "$status"
