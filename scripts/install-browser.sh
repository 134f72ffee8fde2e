#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the browser tests (tests/tests/browser.rs).
# Idempotent: does nothing when both are already there. No tool ever downloads its own browser.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-browser.sh: need root (or sudo) for apt-get" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run instead of failing on its lock.
apt=($sudo apt-get -o DPkg::Lock::Timeout=600 -y)

"${apt[@]}" update
if ! "${apt[@]}" install --no-install-recommends chromium chromium-driver; then
  # An interrupted earlier install leaves dpkg half-done; finish it and try once more.
  "${apt[@]}" -f install
  "${apt[@]}" install --no-install-recommends chromium chromium-driver
fi
/usr/bin/chromium --version
/usr/bin/chromedriver --version
