#!/usr/bin/env bash
# The README's second command: installs what lwdm needs, builds it and runs the
# whole test suite three times through ctest:
#   1. the normal build (-Werror): unit, integration, end-to-end, fuzz-corpus replay
#   2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (clang)
#   3. the libFuzzer targets, each run briefly from its seed corpus
# It ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh || exit 1
# playwright-core for the browser tests (label web), from tests/web/package-lock.json
npm ci --prefix tests/web --no-audit --no-fund --loglevel=error || exit 1
jobs=$(nproc)
total_pass=0; total_fail=0; status=0

run_ctest() { # dir label-regex-or-empty
  local dir=$1 labels=${2:-} log
  log=$(mktemp)
  if [ -n "$labels" ]; then
    (cd "$dir" && ctest --output-on-failure -j"$jobs" -L "$labels") 2>&1 | tee "$log"
  else
    (cd "$dir" && ctest --output-on-failure -j"$jobs") 2>&1 | tee "$log"
  fi
  local rc=${PIPESTATUS[0]}
  local line n_fail n_total
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  if [ -n "$line" ]; then
    n_fail=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    n_total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    total_pass=$((total_pass + n_total - n_fail)); total_fail=$((total_fail + n_fail))
  else
    total_fail=$((total_fail + 1))
  fi
  rm -f "$log"
  [ "$rc" -eq 0 ] || status=1
}

echo "== 1/3 normal build"
if scripts/build.sh build -DLWDM_WERROR=ON; then run_ctest build; else echo "build failed"; status=1; total_fail=$((total_fail+1)); fi

echo "== 2/3 AddressSanitizer + UndefinedBehaviorSanitizer"
if scripts/build.sh build-asan -DLWDM_WERROR=ON -DLWDM_SANITIZE=ON -DLWDM_BENCH=OFF -DCMAKE_C_COMPILER=clang; then
  run_ctest build-asan "unit|integration|fuzz|e2e"
else echo "asan build failed"; status=1; total_fail=$((total_fail+1)); fi

echo "== 3/3 libFuzzer smoke runs"
if scripts/build.sh build-fuzz -DLWDM_WERROR=ON -DLWDM_FUZZ=ON -DLWDM_BENCH=OFF -DCMAKE_C_COMPILER=clang; then
  LWDM_FUZZ_SECONDS=${LWDM_FUZZ_SECONDS:-10} run_ctest build-fuzz fuzz
else echo "fuzz build failed"; status=1; total_fail=$((total_fail+1)); fi

echo "${total_pass} passed, ${total_fail} failed"
exit $status
