#!/usr/bin/env bash
# Create (once) the Python virtualenvs the project's tools need. Idempotent: a venv whose stamp matches is reused.
# Usage: scripts/setup.sh sdk|aws|lambda ...   (no argument: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Separate venvs because the pins conflict (leancloud 3.0.2 pins Werkzeug 1.x; moto's server needs Flask/Werkzeug 3).
declare -A packages=(
  [sdk]="leancloud==3.0.2 awslambdaric==4.2.2"
  [aws]="cfn-lint==1.58.0 aws-sam-cli==1.170.0 moto[server]==5.2.5 boto3"
  [lambda]="cargo-lambda==1.9.2 ziglang"
)

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(sdk aws lambda)
for name in "${want[@]}"; do
  spec=${packages[$name]:?unknown venv $name}
  dir="$root/.venv-$name"
  if [ -f "$dir/.stamp" ] && [ "$(cat "$dir/.stamp")" = "$spec" ]; then
    continue
  fi
  echo "setup: creating .venv-$name ($spec)" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check $spec
  echo "$spec" > "$dir/.stamp"
done
