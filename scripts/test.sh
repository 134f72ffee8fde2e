#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need, then lint, build, test.
#
# On 2 cores the build is the critical path, so nothing waits for anything it does not need:
# - the installs (PyPI, Debian, npm: mostly network) run beside the build;
# - clippy runs inside the build: every workspace crate is compiled through clippy-driver (the
#   driver `cargo clippy` runs, in check mode), with `-D warnings` as `cargo clippy -- -D
#   warnings` passes it (CLIPPY_ARGS). A separate `cargo clippy --workspace --all-targets`
#   checked all 251 crates again, dependencies included, and took 147 s of the two cores while
#   the tests ran; a lint now fails the build instead, with clippy's message.
# Each phase prints its wall time; docs/testing.md quotes a fresh-clone run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Nothing here is rebuilt often enough for incremental compilation to repay its own cost.
export CARGO_INCREMENTAL=0
started=$SECONDS
# clippy's driver for every workspace crate (see above). It is part of each workspace crate's
# fingerprint, so `cargo test` below, in the same environment, rebuilds nothing; found before
# anything starts, so that a machine without clippy fails here rather than skip the lints.
export RUSTC_WORKSPACE_WRAPPER
RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver 2> /dev/null || command -v clippy-driver || true)"
if [ ! -x "$RUSTC_WORKSPACE_WRAPPER" ]; then
  echo "clippy-driver not found: install clippy (rustup component add clippy)" >&2
  exit 1
fi
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
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
# `--benches` so that clippy sees every target `--all-targets` names (cargo build compiles them
# with the test profile, not the release one `cargo bench` uses).
phase "build the binaries the tests drive, the tests and the benchmark, linted by clippy"
cargo build --workspace --bins --tests --benches

phase "waiting for the installs"
if ! wait "$installing"; then
  cat target/installs.log
  echo "the installs failed (above)" >&2
  exit 1
fi

phase "cargo test"
tested=0
cargo test --workspace || tested=$?
phase "done (cargo test exit $tested)"
[ "$tested" -eq 0 ]
