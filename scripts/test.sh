#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need, then lint, build, test.
#
# On 2 cores the build is the critical path, so nothing waits for anything it does not need:
# - the installs (PyPI, Debian, npm: mostly network) run beside the build;
# - clippy runs beside the test run, in the same target directory (so that the build scripts'
#   outputs, aws-lc's C library among them, are shared), started once `cargo test` has finished
#   its own up-to-date check and released the directory's lock to run the tests.
# Each phase prints its wall time; docs/testing.md quotes a fresh-clone run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Nothing here is rebuilt often enough for incremental compilation to repay its own cost.
export CARGO_INCREMENTAL=0
started=$SECONDS
phase() { echo "==> [$((SECONDS - started)) s] $*"; }

installs() {
  echo "==> Python tools (PyJWT, moto, cfn-lint, AWS's SAM translator, schemathesis) in target/py"
  [ -x target/py/bin/python ] || python3 -m venv target/py
  target/py/bin/pip install --quiet 'pyjwt[crypto]>=2.8' 'moto[server]>=5' 'cfn-lint>=1' \
    'aws-sam-translator>=1.90' 'schemathesis>=4,<5'
  echo "==> cargo-lambda (its local Lambda runtime runs the function binaries) in target/lambda-venv"
  scripts/install-cargo-lambda.sh
  echo "==> Chromium + ChromeDriver (Debian packages) for the browser tests"
  scripts/install-browser.sh
  echo "==> Microsoft's widget package (npm, no install scripts), bundled for the browser tests"
  scripts/install-widget.sh
}

phase "cargo fmt --check"
cargo fmt --all --check

mkdir -p target
phase "installs, in the background (log: target/installs.log)"
installs > target/installs.log 2>&1 &
installing=$!

# The binaries and the test targets in one build: `cargo build --bins` alone resolves features
# without the dev-dependencies' (chat-auth-shared's test-util, the test clients' TLS and tokio
# features), so `cargo test` then rebuilt 77 crates, the AWS SDK among them, a second time.
phase "build the binaries the tests drive, and the tests"
cargo build --workspace --bins --tests

phase "waiting for the installs"
if ! wait "$installing"; then
  cat target/installs.log
  echo "the installs failed (above)" >&2
  exit 1
fi

phase "cargo test, with cargo clippy beside it (log: target/clippy.log)"
tested=0
rm -f target/test.stderr
cargo test --workspace 2> >(tee target/test.stderr >&2) &
testing=$!
# cargo prints "Running" when its build is done and the lock is free; clippy waits for that.
until grep -q "Running" target/test.stderr 2>/dev/null || ! kill -0 "$testing" 2>/dev/null; do
  sleep 1
done
cargo clippy --workspace --all-targets -- -D warnings > target/clippy.log 2>&1 &
linting=$!
wait "$testing" || tested=$?
linted=0
wait "$linting" || linted=$?
if [ "$linted" -ne 0 ]; then
  cat target/clippy.log
  echo "cargo clippy failed (above)" >&2
fi
phase "done (cargo test exit $tested, cargo clippy exit $linted)"
[ "$tested" -eq 0 ] && [ "$linted" -eq 0 ]
