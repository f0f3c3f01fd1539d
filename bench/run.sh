#!/usr/bin/env bash
# The benchmark: ours (Rust functions and client) vs the official Python SDK (leancloud 3.0.2), side by side.
# Builds the release binaries, creates .venv-sdk, starts the release leancloud-server on a free loopback port with
# a fresh temporary database, runs every measurement (bench/src), prints one table and writes bench/RESULTS.md.
# Exits non-zero only if something failed to run; figures are reported against their targets, never asserted.
#
# Usage: bench/run.sh [--quick] [bench run options, see `target/release/bench run --help`]
# With `--only PARTS` (e.g. `--only sizes,cold-start,fanout`) only those parts of `bench run` are measured, the
# realtime, hardening and migration sections are skipped, and the table goes to bench/out/partial.md, so
# RESULTS.md keeps the last complete run.
# MIGRATE_BENCH_MESSAGES sets the size of the migration benchmark (default 200000, 20000 with --quick).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target
out=bench/out
mkdir -p "$out"
results=bench/RESULTS.md
partial=false
for a in "$@"; do case "$a" in --only | --only=*) partial=true ;; esac; done
if $partial; then results=$out/partial.md; fi

started=$(date +%s)
echo "== build (release): leancloud-server, the functions, the harness" >&2
cargo build --release --locked -p leancloud-server -p im-functions -p bench
# the server's own load generator (server/examples/loadgen.rs), reused for a second persisted-sends figure
cargo build --release --locked -p leancloud-server --example loadgen || echo "bench: server load generator not built" >&2
built=$(date +%s)

echo "== Python SDK venv (.venv-sdk)" >&2
bash scripts/setup.sh sdk

export LEANCLOUD_APP_ID=${LEANCLOUD_APP_ID:-dev-app-id-gzGzoHsz}
export LEANCLOUD_APP_KEY=${LEANCLOUD_APP_KEY:-dev-app-key}
export LEANCLOUD_APP_MASTER_KEY=${LEANCLOUD_APP_MASTER_KEY:-dev-master-key}

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
echo "== leancloud-server on $url (database $tmp/bench.sqlite3, log $out/server.log)" >&2
RUST_LOG=${BENCH_SERVER_LOG:-warn} "$target/release/leancloud-server" --listen "127.0.0.1:$port" --db "$tmp/bench.sqlite3" \
  >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "bench: leancloud-server exited at start:" >&2
    cat "$out/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "== measuring (release build took $((built - started)) s)" >&2
status=0
"$target/release/bench" run \
  --server-url "$url" \
  --bin-dir "$target/release" \
  --python .venv-sdk/bin/python \
  --python-dir bench/python \
  --out "$results" \
  --log-dir "$out" \
  --server-info "(RUST_LOG=${BENCH_SERVER_LOG:-warn}: no per-request log lines)" \
  "$@" || status=$?
# the realtime gateway under WebSocket load (bench/src/realtime): its own server; 10,000 sockets on each side
if $partial; then
  echo "bench: total $(($(date +%s) - started)) s; results in $results, logs in $out/" >&2
  exit "$status"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
realtime_args=(); for a in "$@"; do [ "$a" = --quick ] && realtime_args+=(--quick); done
"$target/release/bench" realtime --server-bin "$target/release/leancloud-server" --log-dir "$out" \
  --append-to bench/RESULTS.md ${realtime_args[@]+"${realtime_args[@]}"} || status=$?

# H2/M6 under load (bench/src/hardening.rs): message senders alone, then while app-key clients send the review's
# array and query payloads; its own server with 120,000 seeded rows; appended to RESULTS.md as its own section.
"$target/release/bench" hardening --server-bin "$target/release/leancloud-server" --log-dir "$out" \
  --append-to bench/RESULTS.md ${realtime_args[@]+"${realtime_args[@]}"} || status=$?

# Storage backends and instances (bench/src/instances.rs): SQLite, PostgreSQL with one and two instances, in one
# run on a throwaway PostgreSQL cluster (scripts/lib/postgres.sh); appended to RESULTS.md as its own section.
# shellcheck source=../scripts/lib/postgres.sh
source scripts/lib/postgres.sh
if pg_start; then
  "$target/release/bench" instances --server-bin "$target/release/leancloud-server" --log-dir "$out" \
    --append-to bench/RESULTS.md ${realtime_args[@]+"${realtime_args[@]}"} || status=$?
  pg_stop
else
  echo "bench: PostgreSQL did not start; the instances section is missing" >&2
  status=1
fi

# leancloud-migrate: export rows/s against an in-process server, import messages/s into a fresh database
# (bench/src/bin/migrate-bench.rs); appended to RESULTS.md as its own section, so the table above is unchanged.
migrate_messages=${MIGRATE_BENCH_MESSAGES:-200000}
case " $* " in *" --quick "*) migrate_messages=${MIGRATE_BENCH_MESSAGES:-20000} ;; esac
echo "== migration: export and import of $migrate_messages messages" >&2
"$target/release/migrate-bench" --messages "$migrate_messages" --append-to bench/RESULTS.md || {
  echo "bench: migrate-bench failed" >&2
  status=1
}
# The file API: upload and download of a 10 MiB file beside curl, and the export's download rate of file bodies
# (bench/src/bin/files-bench.rs); appended to RESULTS.md as its own section.
echo "== files: upload, download, export of file bodies" >&2
"$target/release/files-bench" --append-to bench/RESULTS.md || {
  echo "bench: files-bench failed" >&2
  status=1
}
# Users and sessions: login latency beside the argon2id hash alone, a query as the app key and as a user
# (bench/src/bin/users-bench.rs).
echo "== users: logins and ACL checks" >&2
"$target/release/users-bench" --append-to bench/RESULTS.md || {
  echo "bench: users-bench failed" >&2
  status=1
}
echo "bench: total $(($(date +%s) - started)) s; results in bench/RESULTS.md, logs in $out/" >&2
exit "$status"
