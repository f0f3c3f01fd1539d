#!/usr/bin/env bash
# The container image (Containerfile), built without a daemon and checked by its filesystem: Debian's buildah
# (installed when missing) builds it from the release server (`--storage-driver vfs --isolation chroot`; no
# container can be started on these machines), its configuration is checked (non-root user, /data volume, health
# check, entrypoint), then its root filesystem is unpacked and the server binary run from it with `chroot` as the
# image's user, against a fresh /data: it must answer health, store a send, pass its own health check command and
# stop cleanly on SIGTERM. Prints `image: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if ! command -v buildah >/dev/null; then
  echo "image: installing Debian's buildah"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq buildah >/dev/null
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "image: building the release server"
nice -n 5 cargo build --release --locked --quiet -p leancloud-server --bin leancloud-server
CARGO_TARGET_DIR="$target_dir" bash scripts/stage-image.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/lc-image.XXXXXX")
server_pid=""
bah=(buildah --storage-driver vfs --root "$work/storage" --runroot "$work/run")
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  "${bah[@]}" rm --all >/dev/null 2>&1 || true
  "${bah[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() { # check NAME COMMAND...: runs the command, counts and prints the outcome
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

echo "image: buildah bud"
"${bah[@]}" bud --quiet --isolation chroot --format docker --build-context target="$target_dir" \
  -f Containerfile -t leancloud-server:ci . >"$work/build.log" 2>&1 || { cat "$work/build.log"; echo "image: 0 passed, 1 failed"; exit 1; }
"${bah[@]}" inspect --type image leancloud-server:ci >"$work/inspect.json"
config_is() { python3 - "$work/inspect.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["Docker"]["config"]
want = sys.argv[2]
checks = {
    "user": c.get("User") == "10001:10001",
    "volume": list((c.get("Volumes") or {}).keys()) == ["/data"],
    "entrypoint": c.get("Entrypoint") == ["/usr/local/bin/leancloud-server"],
    "healthcheck": (c.get("Healthcheck") or {}).get("Test", [])[1:3] == ["/usr/local/bin/leancloud-server", "healthcheck"],
    "tls": "LEANCLOUD_TLS_ROOTS=bundled" in (c.get("Env") or []),
}
sys.exit(0 if checks[want] else 1)
PY
}
check "the image runs as user 10001, not root" config_is user
check "/data is its one volume" config_is volume
check "the entrypoint is the server" config_is entrypoint
check "its health check is the server's own command" config_is healthcheck
check "its HTTPS clients trust the built-in roots" config_is tls

# The image's root filesystem, as a container would see it.
ctr=$("${bah[@]}" from leancloud-server:ci)
mnt=$("${bah[@]}" mount "$ctr")
mkdir -p "$work/rootfs"
cp -a "$mnt/." "$work/rootfs/"
"${bah[@]}" umount "$ctr" >/dev/null
rootfs="$work/rootfs"
size_mb=$(du -sm "$rootfs" | cut -f1)
echo "image: root filesystem ${size_mb} MB: $(cd "$rootfs" && find . -type f | sort | tr '\n' ' ')"
check "the image holds no shell and no package manager (FROM scratch)" test ! -e "$rootfs/bin/sh"
check "/data belongs to the image's user" test "$(stat -c %u:%g "$rootfs/data")" = 10001:10001

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -i PATH="$PATH" LEANCLOUD_APP_ID=ImageAppId-gzGzoHsz LEANCLOUD_APP_KEY=ImageAppKey LEANCLOUD_APP_MASTER_KEY=ImageMasterKey \
  LEANCLOUD_TLS_ROOTS=bundled RUST_LOG=info \
  chroot --userspec=10001:10001 "$rootfs" /usr/local/bin/leancloud-server --listen "127.0.0.1:$port" \
  --db /data/leancloud.sqlite3 >"$work/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
healthy() {
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/__admin/health")" = 200 ] && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
check "the server from the image answers health" healthy
sends() {
  local conv out
  conv=$(curl -s -X POST "$base/1.1/classes/_Conversation" -H 'X-LC-Id: ImageAppId-gzGzoHsz' \
    -H 'X-LC-Key: ImageMasterKey,master' -H 'Content-Type: application/json' -d '{"name":"image","m":["a","b"]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["objectId"])') || return 1
  out=$(curl -s -X POST "$base/1.1/rtm/messages" -H 'X-LC-Id: ImageAppId-gzGzoHsz' \
    -H 'X-LC-Key: ImageMasterKey,master' -H 'Content-Type: application/json' \
    -d "{\"from_peer\":\"a\",\"conv_id\":\"$conv\",\"message\":\"from the image\",\"transient\":false}")
  echo "$out" | python3 -c 'import json,sys; d = json.load(sys.stdin); sys.exit(0 if d.get("msg-id") else 1)' || { echo "$out"; return 1; }
  [ -s "$rootfs/data/leancloud.sqlite3" ]
}
check "a send through the server from the image is stored in its /data" sends
check "the image's health check command passes" chroot --userspec=10001:10001 "$rootfs" \
  /usr/local/bin/leancloud-server healthcheck --addr "127.0.0.1:$port"
stops() {
  kill -TERM "$server_pid"
  for _ in $(seq 1 200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid"; local rc=$?; server_pid=""; return "$rc"
    fi
    sleep 0.05
  done
  return 1
}
check "SIGTERM stops it cleanly (exit 0, database closed)" stops
compose_flags_exist() { # every flag deploy/compose.yaml passes is one the image's server takes
  local help flag missing=0
  help=$(chroot --userspec=10001:10001 "$rootfs" /usr/local/bin/leancloud-server --help)
  for flag in $(grep -oE -- '- --[a-z0-9-]+' deploy/compose.yaml | sed 's/^- //' | sort -u); do
    grep -q -- "$flag" <<<"$help" || { echo "deploy/compose.yaml: $flag is not a flag of leancloud-server"; missing=1; }
  done
  return "$missing"
}
check "the compose file passes only flags the server takes" compose_flags_exist
check "no -wal left behind after the stop" test ! -e "$rootfs/data/leancloud.sqlite3-wal"
if [ "$failed" -ne 0 ]; then echo "--- server log"; tail -n 30 "$work/server.log"; fi
echo "image: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
