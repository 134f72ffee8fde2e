#!/usr/bin/env bash
# Installs Microsoft's widget and chat SDK packages from npm (tests/widget/package-lock.json pins
# them, with no install scripts run) into target/widget and bundles them with esbuild for the
# browser tests (tests/tests/browser.rs), which load them into Chromium: the widget's token
# handling as target/widget/ms-widget.js, the headless chat SDK as target/widget/ms-chat-sdk.js.
# Idempotent: npm runs again only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine's Node.js and npm; Debian's if it has none.
command -v npm > /dev/null || scripts/apt-install.sh nodejs npm
src=tests/widget
out=target/widget
mkdir -p "$out"
cp "$src"/package.json "$src"/package-lock.json "$src"/empty.js "$src"/loader.mjs "$src"/entry.mjs "$src"/chat-sdk.mjs "$out"/
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
# The chat SDK reaches Azure Communication Services' chat client through require(), for which
# esbuild by default takes `main` (its Node build, where realtime notifications throw "not
# supported in node js") and skips the `browser` map a web app's bundler would apply: ask for the
# browser build. `events` is left to npm's browser implementation, which that client extends.
sdk_aliases=()
for a in "${aliases[@]}"; do [[ $a == --alias:events=* ]] || sdk_aliases+=("$a"); done
node_modules/@esbuild/linux-*/bin/esbuild chat-sdk.mjs --bundle --format=iife --platform=browser \
  --main-fields=browser,module,main "${sdk_aliases[@]}" --define:process.env.NODE_ENV='"production"' \
  --define:global=window --log-level=warning --outfile=ms-chat-sdk.js
echo "bundled Microsoft's headless chat SDK: $PWD/ms-chat-sdk.js ($(wc -c < ms-chat-sdk.js) bytes)"
