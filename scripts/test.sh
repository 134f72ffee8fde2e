#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need, then lint, build, test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> Python tools (PyJWT, moto, cfn-lint, AWS's SAM translator) in target/py"
[ -x target/py/bin/python ] || python3 -m venv target/py
target/py/bin/pip install --quiet 'pyjwt[crypto]>=2.8' 'moto[server]>=5' 'cfn-lint>=1' 'aws-sam-translator>=1.90' 'schemathesis>=4,<5'
echo "==> cargo-lambda (its local Lambda runtime runs the function binaries) in target/lambda-venv"
scripts/install-cargo-lambda.sh
echo "==> Chromium + ChromeDriver (Debian packages) for the browser tests"; scripts/install-browser.sh
echo "==> Microsoft's widget package (npm, no install scripts), bundled for the browser tests"; scripts/install-widget.sh

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The binaries and the test targets in one build: `cargo build --bins` alone resolves features
# without the dev-dependencies' (chat-auth-shared's test-util, the test clients' TLS and tokio
# features), so `cargo test` then rebuilt 77 crates, the AWS SDK among them, a second time
# (6 min 00 s + 10 min 34 s on a fresh clone of this 2-core machine, at e086b94).
echo "==> build the binaries the tests drive, and the tests"
cargo build --workspace --bins --tests

echo "==> cargo test"
cargo test --workspace
