#!/usr/bin/env bash
# Installs Debian packages (the arguments) with apt-get, as root or through sudo: waits for
# another apt/dpkg run instead of failing on its lock, and finishes a half-done earlier install
# once before giving up. Used by install-browser.sh, arm64.sh and bench.sh.
set -euo pipefail
[ "$#" -gt 0 ] || { echo "usage: apt-install.sh PACKAGE..." >&2; exit 2; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "apt-install.sh: need root (or sudo) for apt-get" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
apt=($sudo apt-get -o DPkg::Lock::Timeout=600 -y)

"${apt[@]}" update
if ! "${apt[@]}" install --no-install-recommends "$@"; then
  # An interrupted earlier install leaves dpkg half-done; finish it and try once more.
  "${apt[@]}" -f install
  "${apt[@]}" install --no-install-recommends "$@"
fi
