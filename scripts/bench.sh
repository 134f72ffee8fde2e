#!/usr/bin/env bash
# One benchmark run: the floor (openssl speed rsa2048), the criterion benches, HTTP load on the
# release-built local server (loopback only, bounded in time), cold start and peak RSS, printed
# as one Markdown table with every figure set against the floor measured in the same run; then
# the mint-token function under cargo-lambda's local Lambda runtime with the file ring and with the
# Secrets Manager store (moto), counting Secrets Manager calls over warm invocations.
#
# Builds first (a fresh clone needs several minutes for that); the measuring itself stops by
# itself in about three minutes. Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need wrk || missing+=(wrk)
need openssl || missing+=(openssl)
need taskset || missing+=(util-linux)
need python3 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}" >&2
    scripts/apt-install.sh "${missing[@]}" >&2
fi

if [ ! -x target/py/bin/moto_server ]; then
    echo "==> moto (the Secrets Manager emulator) in target/py" >&2
    [ -x target/py/bin/python ] || python3 -m venv target/py
    target/py/bin/pip install --quiet 'moto[server]>=5' >&2
fi

echo "==> cargo-lambda (its local Lambda runtime hosts mint-token)" >&2
scripts/install-cargo-lambda.sh >&2

echo "==> cargo build --release -p chat-auth -p mint-token; cargo bench --no-run" >&2
cargo build --release --quiet -p chat-auth -p mint-token
cargo bench --quiet --no-run -p chat-auth-shared --bench chat_auth 2>/dev/null ||
    cargo bench --no-run -p chat-auth-shared --bench chat_auth

echo "==> measuring (about three minutes; progress on stderr, the table on stdout)" >&2
exec timeout --signal=TERM --kill-after=10 420 python3 scripts/bench/run.py
