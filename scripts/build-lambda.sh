#!/usr/bin/env bash
# Builds the deployable Lambda artifacts the way `sam build` (BuildMethod rust-cargolambda) does:
# cargo-lambda cross-compiles the five function binaries for arm64 (Graviton) and zips each as
# target/lambda/<function>/bootstrap.zip. The CLI (chat-auth) and the tests are not built.
# Installs what it needs on first use: cargo-lambda (and zig, from PyPI) in target/lambda-venv,
# and the aarch64-unknown-linux-gnu Rust target. Fails when a zip is over 8 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

functions=(mint-token validate-token public-keys provider-script rotate-keys)
max_bytes=$((8 * 1024 * 1024))
venv=target/lambda-venv
started=$(date +%s)

echo "==> cargo-lambda (and zig) in $venv"
scripts/install-cargo-lambda.sh

echo "==> Rust target aarch64-unknown-linux-gnu"
rustup target add aarch64-unknown-linux-gnu

bins=()
for f in "${functions[@]}"; do bins+=(--bin "$f"); done
echo "==> cargo lambda build --release --arm64 --output-format zip ${bins[*]}"
build_started=$(date +%s)
# The venv's bin only for this command: it carries its own python3 (with zig) that nothing
# else should pick up.
PATH="$PWD/$venv/bin:$PATH" cargo lambda build --release --arm64 --output-format zip "${bins[@]}"
build_seconds=$(($(date +%s) - build_started))

echo "==> artifacts"
status=0
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  if [ ! -f "$zip" ]; then
    echo "MISSING  $zip" >&2
    status=1
    continue
  fi
  bytes=$(stat -c %s "$zip")
  mib=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')
  if [ "$bytes" -gt "$max_bytes" ]; then
    echo "TOO BIG  $zip  $bytes bytes  $mib MiB (limit $max_bytes bytes = 8 MiB)" >&2
    status=1
  else
    echo "ok       $zip  $bytes bytes  $mib MiB"
  fi
done
total_seconds=$(($(date +%s) - started))
printf '==> cargo lambda build wall time: %dm%02ds (%d s); script total %dm%02ds (%d s)\n' \
  $((build_seconds / 60)) $((build_seconds % 60)) "$build_seconds" \
  $((total_seconds / 60)) $((total_seconds % 60)) "$total_seconds"
exit "$status"
