#!/usr/bin/env bash
# One benchmark run: installs what it needs when missing (OpenSSL; moto in target/py;
# cargo-lambda in target/lambda-venv; Node.js, and jose in target/peer), builds the release
# binaries, then `cargo xtask bench` (xtask/src/main.rs) measures the floor, the in-process
# paths, the local server under load beside the Node.js peer (xtask/peer/jose-server.mjs), its
# cold start and memory, and the functions under cargo-lambda's local Lambda runtime, and
# prints one Markdown table with every figure set against the floor measured in the same run.
# It exits 1 when a goal of xtask/src/goals.rs is missed (BENCH_NO_ASSERT=1: print only).
#
# Builds first (a fresh clone needs several minutes for that); the measuring itself stops by
# itself in about three minutes. Not part of scripts/test.sh. Settings: BENCH_SECONDS,
# BENCH_SERVER_CORE, BENCH_LOAD_CORE, BENCH_COLD_RUNS, BENCH_ONLY, BENCH_NO_ASSERT.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need openssl || missing+=(openssl)
need python3 || missing+=(python3 python3-venv)
# The Node.js peer. Debian 12's own nodejs is 18, older than jose 6 needs: xtask then skips the
# peer with a note. Its npm is a package of its own; NodeSource's nodejs brings npm along.
need node || missing+=(nodejs)
need npm || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> apt-get install ${missing[*]}" >&2
    scripts/apt-install.sh "${missing[@]}" >&2
fi

if [ ! -x target/py/bin/moto_server ]; then
    echo "==> moto (the Secrets Manager emulator) in target/py" >&2
    [ -x target/py/bin/python ] || python3 -m venv target/py
    target/py/bin/pip install --quiet 'moto[server]>=5' >&2
fi

# npm ci from the committed lockfile, again whenever it changes. Under target/ (which
# xtask/src/settings.rs does not empty, unlike target/bench), beside a copy of the manifest.
if ! cmp -s xtask/peer/package-lock.json target/peer/package-lock.json ||
    [ ! -f target/peer/node_modules/jose/package.json ]; then
    echo "==> jose (the Node.js peer's JWT library) in target/peer" >&2
    mkdir -p target/peer
    cp xtask/peer/package.json xtask/peer/package-lock.json target/peer/
    npm ci --prefix target/peer --no-audit --no-fund >&2
fi

echo "==> cargo-lambda (its local Lambda runtime hosts the functions)" >&2
scripts/install-cargo-lambda.sh >&2

echo "==> cargo build --release: chat-auth, the five functions (measured and zipped); xtask" >&2
cargo build --release --quiet -p chat-auth-cli -p mint-token -p validate-token -p public-keys \
    -p provider-script -p rotate-keys
# Apart, so that `cargo xtask` (run -p xtask) finds it built with the same features.
cargo build --release --quiet -p xtask

echo "==> measuring (about three minutes; progress on stderr, the table on stdout)" >&2
exec timeout --signal=TERM --kill-after=10 $((300 + 6 * ${BENCH_SECONDS:-10})) cargo xtask bench
