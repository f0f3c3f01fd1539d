# shellcheck shell=bash
# A throwaway PostgreSQL cluster on loopback for the tests: Debian's `postgresql` (installed when missing), a
# fresh data directory owned by the `postgres` user (PostgreSQL refuses to run as root), trust authentication on
# 127.0.0.1 only, a free port, and TLS with a certificate from a CA made for the run (openssl). Source it, call
# `pg_start`; it exports LEANCLOUD_TEST_POSTGRES (the URL of the maintenance database, where the tests create one
# database each) and LEANCLOUD_TEST_POSTGRES_CA (that CA's PEM file), and stops the cluster on `pg_stop`.

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

pg_install() {
  if pg_bin_dir >/dev/null; then return 0; fi
  echo "postgres: installing Debian's postgresql" >&2
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq postgresql >/dev/null
  # The package starts its own cluster; the tests use their own, so stop that one.
  "${sudo_cmd[@]}" service postgresql stop >/dev/null 2>&1 || true
}

# Runs a command as the `postgres` user when we are root, as ourselves otherwise.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

pg_start() {
  pg_install
  local bin port
  bin=$(pg_bin_dir)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  PG_DATA=$(mktemp -d "${TMPDIR:-/tmp}/lc-pg.XXXXXX")
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PG_DATA"; fi
  pg_as_owner "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PG_DATA.initdb.log" 2>&1 \
    || { cat "$PG_DATA.initdb.log" >&2; return 1; }
  # TLS: a CA of this run signs the server's certificate for 127.0.0.1 and localhost.
  PG_TLS=$(mktemp -d "${TMPDIR:-/tmp}/lc-pg-tls.XXXXXX")
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=leancloud test CA" \
    -keyout "$PG_TLS/ca.key" -out "$PG_TLS/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$PG_DATA/server.key" -out "$PG_TLS/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$PG_TLS/san.ext"
  openssl x509 -req -in "$PG_TLS/server.csr" -CA "$PG_TLS/ca.pem" -CAkey "$PG_TLS/ca.key" -CAcreateserial \
    -days 2 -extfile "$PG_TLS/san.ext" -out "$PG_DATA/server.crt" >/dev/null 2>&1
  chmod 600 "$PG_DATA/server.key"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$PG_DATA/server.key" "$PG_DATA/server.crt"; fi
  # Many test databases at once, each with a small pool per server; fsync stays on (the durability tests). Each
  # test database copies template1 (~8 MB) through the WAL, so the WAL is kept small.
  pg_as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_DATA -c max_connections=1000 -c shared_buffers=64MB -c max_wal_size=64MB -c min_wal_size=32MB -c ssl=on" \
    start >/dev/null
  PG_BIN=$bin
  # Plain connections for the tests (the server verifies a TLS certificate, and this one is of a CA the tests
  # name only where they test TLS: server/tests/api/postgres_tls.rs).
  export LEANCLOUD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  export LEANCLOUD_TEST_POSTGRES_CA="$PG_TLS/ca.pem"
  echo "postgres: $("$bin/postgres" --version | head -n 1) on 127.0.0.1:$port" >&2
}

# The URL of database $1 on the cluster of LEANCLOUD_TEST_POSTGRES (same host, user and options).
pg_database_url() {
  local url=${LEANCLOUD_TEST_POSTGRES%%\?*}
  local query=${LEANCLOUD_TEST_POSTGRES#"$url"}
  echo "${url%/*}/$1$query"
}

# Drops the databases the tests created (names t_…, rt_…, mig_…, conformance_…, bench_…): ~8 MB each.
pg_drop_test_databases() {
  local name
  for name in $(psql -Atq "$LEANCLOUD_TEST_POSTGRES" -c \
    "SELECT datname FROM pg_database WHERE datname ~ '^(t|rt|mig|conformance|bench)_'"); do
    psql -q "$LEANCLOUD_TEST_POSTGRES" -c "DROP DATABASE \"$name\" WITH (FORCE)" >/dev/null || true
  done
}

pg_stop() {
  if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DATA" "$PG_DATA.initdb.log" "${PG_TLS:-}"
  fi
}
