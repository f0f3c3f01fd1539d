#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium (installed when missing) driven by playwright-core from
# npm (tests/console), against the release leancloud-server and the send-message function binary run through the
# Lambda Runtime API; and the pages of mailed links (password reset, e-mail verification) against the server with a
# stand-in SMTP server (mail-links.test.mjs). Screenshots of each page go to $CONSOLE_SCREENSHOTS (printed by the tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if ! [ -x /usr/bin/chromium ]; then
  echo "console: installing Debian's chromium"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null; then
  echo "console: installing Node.js and npm"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq nodejs npm >/dev/null
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "console: building the release server and the send-message function"
cargo build --quiet --release -p leancloud-server --bin leancloud-server
cargo build --quiet -p im-functions --bin send-message

(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)

export CARGO_TARGET_DIR="$target_dir"
export CONSOLE_SERVER_BIN="$target_dir/release/leancloud-server"
export CONSOLE_FUNCTION_BIN="$target_dir/debug/send-message"
export CONSOLE_SCREENSHOTS=${CONSOLE_SCREENSHOTS:-$root/target/console-screenshots}
mkdir -p "$CONSOLE_SCREENSHOTS"
log=$(mktemp "${TMPDIR:-/tmp}/console-tests.XXXXXX")
status=0
(cd tests/console && node --test --test-concurrency=1 --test-reporter=spec console.test.mjs mail-links.test.mjs) 2>&1 | tee "$log" || status=$?
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -n 1)
rm -f "$log"
echo "console: screenshots in $CONSOLE_SCREENSHOTS"
echo "console: ${passed:-0} passed, ${failed:-0} failed"
[ "$status" -eq 0 ] && [ "${failed:-1}" -eq 0 ] && [ "${passed:-0}" -gt 0 ]
