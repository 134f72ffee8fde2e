#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser tests (tests/tests/browser.rs).
# Idempotent: does nothing when both are already there. No tool ever downloads its own browser.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi

"$(dirname "$0")/apt-install.sh" chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
