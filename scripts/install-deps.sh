#!/usr/bin/env bash
# Installs every Debian 12 package lwdm needs to build, run and test.
# Usage (as root): scripts/install-deps.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libcoap3-dev libgnutls28-dev libmicrohttpd-dev libsqlite3-dev libjansson-dev
  libsodium-dev libxml2-dev libcurl4-gnutls-dev libcbor-dev libcmocka-dev
  python3 python3-pytest python3-requests curl sqlite3 procps
  chromium
)
# Browser tests (tests/web): node + npm (Debian's, unless a node with npm is already
# installed: another node build, e.g. nodesource's, conflicts with Debian's npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
