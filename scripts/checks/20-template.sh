#!/usr/bin/env bash
# CI check of the AWS SAM application (issue 5): lint and validate template.yaml offline, run the template test
# (and its self-test), build every function for arm64 with cargo-lambda (printing the sizes), then `sam build`.
# Needs no AWS credentials, no Docker and no network beyond the package registries used by scripts/setup.sh.
#
# The arm64 build goes to its own target dir (CARGO_TARGET_DIR, default target-arm64) so it never clobbers the
# x86_64 binaries other checks run; `sam build` uses the same dir and so reuses the build instead of compiling
# the release binaries a second time.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
started=$SECONDS

scripts/setup.sh aws lambda || { echo "template: 0 passed, 1 failed (scripts/setup.sh aws lambda)"; exit 1; }

# Offline and credential-free: the tools must not find (or need) an AWS profile.
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null SAM_CLI_TELEMETRY=0
# cargo-lambda finds zig only through PATH (python3 -m ziglang inside .venv-lambda).
export PATH="$root/.venv-lambda/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_ARM64:-$root/target-arm64}"
aws="$root/.venv-aws/bin"

# The functions, as template.yaml names them: logical id and binary.
functions=(
  "CreateConversationFunction create-conversation"
  "AddMemberFunction add-member"
  "RemoveMemberFunction remove-member"
  "SendMessageFunction send-message"
  "BroadcastFunction broadcast"
  "SchedulesFunction schedules"
  "RecallMessageFunction recall-message"
  "MuteMembersFunction mute-members"
  "BlockMembersFunction block-members"
)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
step() { # step NAME COMMAND...: run it, count it
  local name=$1
  shift
  echo "-- $name"
  if "$@"; then pass "$name"; else fail "$name"; fi
}
counted() { # counted NAME COMMAND...: run a command that prints "...: N passed, M failed" and add its counts
  local name=$1 out line
  shift
  echo "-- $name"
  out=$("$@" 2>&1)
  local rc=$?
  echo "$out"
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    if [ "$rc" -ne 0 ] && [ "${BASH_REMATCH[2]}" -eq 0 ]; then fail "$name (exit $rc)"; fi
  else
    fail "$name (no summary, exit $rc)"
  fi
}
is_arm64_elf() { # ELF magic and e_machine 183 (EM_AARCH64)
  [ "$(od -An -tx1 -j0 -N4 "$1" | tr -d ' \n')" = 7f454c46 ] && [ "$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')" = 183 ]
}

# ---------------------------------------------------------------- template
step "cfn-lint template.yaml" "$aws/cfn-lint" template.yaml
step "sam validate --lint" "$aws/sam" validate --lint -t template.yaml
step "sam validate --region us-east-1" "$aws/sam" validate --region us-east-1 -t template.yaml
counted "template test" "$aws/python" scripts/checks/template_test.py template.yaml
counted "template test self-test (each check catches a broken template)" \
  "$aws/python" scripts/checks/template_test.py --self-test template.yaml

# ---------------------------------------------------------------- build
if ! grep -qx aarch64-unknown-linux-gnu <<<"$(rustup target list --installed 2>/dev/null)"; then
  rustup target add aarch64-unknown-linux-gnu || true
fi
bins=()
for f in "${functions[@]}"; do bins+=(--bin "${f#* }"); done
echo "-- cargo lambda build --release --arm64 --output-format zip ${bins[*]} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
build_started=$SECONDS
# From the workspace root with --bin, exactly as `sam build` invokes it (CodeUri: .), so both resolve the same
# features and the second build is a no-op.
if cargo lambda build --release --arm64 --output-format zip "${bins[@]}"; then
  built=1
  echo "cargo lambda build: $((SECONDS - build_started)) s"
else
  built=0
fi
for f in "${functions[@]}"; do
  bin=${f#* }
  zip="$CARGO_TARGET_DIR/lambda/$bin/bootstrap.zip"
  if [ "$built" = 1 ] && [ -f "$zip" ]; then
    "$aws/python" - "$zip" "$bin" <<'EOF'
import os, sys, zipfile
path, name = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(path) as z:
    info = z.getinfo("bootstrap")
print(f"size {name}: bootstrap.zip {os.path.getsize(path)} B, bootstrap {info.file_size} B (unzipped)")
EOF
    pass "cargo lambda build $bin (arm64 zip)"
  else
    fail "cargo lambda build $bin (arm64 zip)"
  fi
done

if [ "$built" = 1 ]; then
  rm -rf .aws-sam
  sam_started=$SECONDS
  step "sam build" "$aws/sam" build -t template.yaml
  echo "sam build: $((SECONDS - sam_started)) s"
  for f in "${functions[@]}"; do
    fn=${f%% *}
    artefact=.aws-sam/build/$fn/bootstrap
    if [ -f "$artefact" ] && is_arm64_elf "$artefact"; then
      echo "size $fn: $artefact $(stat -c %s "$artefact") B"
      pass "sam build $fn: aarch64 bootstrap"
    else
      fail "sam build $fn: aarch64 bootstrap missing"
    fi
  done
else
  fail "sam build (skipped: cargo lambda build failed)"
fi

echo "template check: $((SECONDS - started)) s"
echo "template: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
