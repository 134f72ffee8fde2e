#!/usr/bin/env bash
# Runs the deployable arm64 artifacts on this (x86_64) machine: installs qemu-user and the
# aarch64 glibc (Debian packages), builds target/lambda/<function>/bootstrap.zip with
# scripts/build-lambda.sh, makes sure target/py has moto and PyJWT, then runs the ignored test
# tests/tests/arm64.rs (rotate-keys, mint-token and public-keys under qemu-aarch64 against the
# Lambda Runtime API emulator and moto). Correctness only: timings under qemu mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

echo "==> qemu-user and the aarch64 glibc (Debian packages)"
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] \
  || [ ! -e /usr/aarch64-linux-gnu/lib/libgcc_s.so.1 ]; then
  scripts/apt-install.sh qemu-user libc6-arm64-cross libgcc-s1-arm64-cross
fi
qemu-aarch64 --version | head -n 1

echo "==> arm64 artifacts (scripts/build-lambda.sh)"
scripts/build-lambda.sh

echo "==> Python tools (PyJWT, moto) in target/py"
[ -x target/py/bin/python ] || python3 -m venv target/py
target/py/bin/pip install --quiet 'pyjwt[crypto]>=2.8' 'moto[server]>=5'

echo "==> the arm64 test under qemu (tests/tests/arm64.rs, ignored by default)"
test_started=$(date +%s)
# --workspace: the same feature resolution as the README test command, so its build is reused.
cargo test -p chat-auth-tests --test integration arm64:: -- --ignored --nocapture
test_seconds=$(($(date +%s) - test_started))
total_seconds=$(($(date +%s) - started))
printf '==> arm64 test (cargo test, build of the test included) %dm%02ds; arm64.sh total %dm%02ds\n' \
  $((test_seconds / 60)) $((test_seconds % 60)) $((total_seconds / 60)) $((total_seconds % 60))
