#!/usr/bin/env bash
# Load run: 50 clients mint and validate against the real local server for LOAD_SECONDS
# (default 60) while a rotation runs; loopback only, stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
LOAD_SECONDS="${LOAD_SECONDS:-60}" cargo test -p chat-auth-tests --test integration load:: -- --ignored --nocapture
