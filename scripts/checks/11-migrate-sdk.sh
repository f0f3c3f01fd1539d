#!/usr/bin/env bash
# The official Python SDK (leancloud==3.0.2) sees the same conversations and history before and after a
# migration: seed a server through the SDK, export it with leancloud-migrate, import into a fresh database, start
# a second server on it, and compare what the SDK reads on both (tests/conformance/migrate_sdk.py).
# Prints `migrate-sdk: ok` or the difference; exits non-zero on any difference.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

bash scripts/setup.sh sdk
cargo build --quiet --locked -p leancloud-server --bin leancloud-server -p leancloud-migrate --bin leancloud-migrate
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
py="$root/.venv-sdk/bin/python"

work=$(mktemp -d)
cleanup() {
  # start() runs in a command substitution, so the servers' pids are kept in a file
  if [ -f "$work/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
    sleep 0.2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export SDK_APP_ID="TestAppId-gzGzoHsz" SDK_APP_KEY="TestAppKey" SDK_MASTER_KEY="TestMasterKey"
export LEANCLOUD_APP_ID="$SDK_APP_ID" LEANCLOUD_APP_KEY="$SDK_APP_KEY" LEANCLOUD_APP_MASTER_KEY="$SDK_MASTER_KEY"

start() { # db → prints the base URL
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  RUST_LOG=warn "$bin/leancloud-server" --listen "127.0.0.1:$port" --db "$1" >"$1.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 1 200); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/__admin/health" 2>/dev/null; then echo "http://127.0.0.1:$port"; return; fi
    sleep 0.05
  done
  cat "$1.log" >&2
  echo "migrate-sdk: server did not start" >&2
  exit 1
}

first=$(start "$work/first.sqlite3")
LEANCLOUD_API_SERVER="$first" "$py" tests/conformance/migrate_sdk.py seed >"$work/before.json"
LEANCLOUD_API_SERVER="$first" "$bin/leancloud-migrate" export --out "$work/export" --quiet --max-requests-per-second 0
"$bin/leancloud-migrate" import --db "$work/second.sqlite3" --quiet "$work/export"
second=$(start "$work/second.sqlite3")
LEANCLOUD_API_SERVER="$second" "$py" tests/conformance/migrate_sdk.py dump >"$work/after.json"
LEANCLOUD_API_SERVER="$second" "$bin/leancloud-migrate" verify --from "$work/export" --to "$second" --max-requests-per-second 0

if diff -u "$work/before.json" "$work/after.json"; then
  echo "migrate-sdk: ok ($(grep -c '"id"' "$work/before.json") conversations, the same history through the SDK)"
else
  echo "migrate-sdk: the SDK reads something else after the migration" >&2
  exit 1
fi
