#!/usr/bin/env bash
# Installs cargo-lambda (1.9.x, with zig, from PyPI) in target/lambda-venv unless it is there.
# The tests run the functions under its local Lambda runtime (`cargo lambda watch
# --only-lambda-apis`, `cargo lambda invoke`); scripts/build-lambda.sh builds the zips with it.
# The venv's bin is never put on PATH here: it carries its own python3.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/lambda-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
[ -x "$venv/bin/cargo-lambda" ] || "$venv/bin/pip" install --quiet 'cargo-lambda>=1.9,<2'
"$venv/bin/cargo-lambda" lambda --version
