#!/usr/bin/env bash
# Stages the filesystem of the container image (Containerfile) in $CARGO_TARGET_DIR/image-root from the release
# binaries named as arguments (default: leancloud-server; add leancloud-migrate to import inside the image): each in
# /usr/local/bin with the shared libraries it links (glibc's, as `ldd` lists them, the dynamic loader included),
# an /etc/passwd and /etc/group naming the unprivileged user 10001 (`leancloud`), and /data for the database (in
# $CARGO_TARGET_DIR/image-data). Run
# after `cargo build --release -p leancloud-server`; the Containerfile copies the result FROM scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$(pwd)/target}
root="$target/image-root"
# /data apart, so that the Containerfile copies it as the unprivileged user's (COPY --chown applies to what it copies).
data="$target/image-data"
rm -rf "$root" "$data"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$data/data"
chmod 1777 "$root/tmp"
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(leancloud-server)
for bin in "${bins[@]}"; do
  src="$target/release/$bin"
  [ -x "$src" ] || { echo "stage-image: $src is not built (cargo build --release -p $bin)" >&2; exit 1; }
  cp "$src" "$root/usr/local/bin/$bin"
  strip "$root/usr/local/bin/$bin" 2>/dev/null || true
  # Every library the binary links, at the path the loader looks for it (the loader itself included).
  ldd "$src" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
printf 'root:x:0:0:root:/:/sbin/nologin\nleancloud:x:10001:10001:leancloud-server:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nleancloud:x:10001:\n' >"$root/etc/group"
echo "stage-image: $root ($(du -sh "$root" | cut -f1))"
