# shellcheck shell=bash
# S3-compatible storage for the tests of the server's S3 file store: moto's server (from .venv-aws, made by
# `scripts/setup.sh aws`) on a free loopback port. Source it, call `s3_start`; it exports LEANCLOUD_TEST_S3 (the
# endpoint; each test creates its own bucket there) and the AWS credentials moto accepts (the server reads its
# credentials from the environment, as in production); `s3_stop` stops it.

s3_start() {
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  S3_LOG=$(mktemp "${TMPDIR:-/tmp}/lc-moto.XXXXXX")
  "$root/.venv-aws/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_LOG" 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      export LEANCLOUD_TEST_S3="http://127.0.0.1:$port"
      export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
      return 0
    fi
    sleep 0.1
  done
  echo "s3: moto_server did not answer on port $port" >&2
  cat "$S3_LOG" >&2
  return 1
}

s3_stop() {
  [ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null && wait "$S3_PID" 2>/dev/null
  S3_PID=
  return 0
}
