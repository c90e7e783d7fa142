#!/usr/bin/env bash
# The README's first command: installs what lwdm needs, builds it and runs the
# server on its embedded SQLite default (./lwdm.db). Extra arguments go to
# `lwdm serve` (see build/lwdm serve --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build -DLWDM_BENCH=OFF
exec build/lwdm serve "$@"
