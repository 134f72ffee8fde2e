#!/usr/bin/env bash
# Installs Microsoft's widget package from npm (tests/widget/package-lock.json pins it, with no
# install scripts run) into target/widget and bundles its token handling with esbuild into
# target/widget/ms-widget.js, which the browser tests (tests/tests/browser.rs) load into Chromium.
# Idempotent: npm runs again only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine's Node.js and npm; Debian's if it has none.
command -v npm > /dev/null || scripts/apt-install.sh nodejs npm
src=tests/widget
out=target/widget
mkdir -p "$out"
cp "$src"/package.json "$src"/package-lock.json "$src"/empty.js "$src"/loader.mjs "$src"/entry.mjs "$out"/
cd "$out"
if ! cmp -s package-lock.json node_modules/.chat-auth-lock 2>/dev/null; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.chat-auth-lock
fi
# Node built-ins that the dependency tree imports and a browser does not have.
aliases=()
for m in crypto fs path os stream util buffer http https zlib url net tls child_process events; do
  aliases+=("--alias:$m=./empty.js")
done
node_modules/@esbuild/linux-*/bin/esbuild entry.mjs --bundle --format=iife --platform=browser \
  "${aliases[@]}" --define:process.env.NODE_ENV='"production"' --define:global=window \
  --log-level=warning --outfile=ms-widget.js
echo "bundled Microsoft's widget token handling: $PWD/ms-widget.js ($(wc -c < ms-widget.js) bytes)"
