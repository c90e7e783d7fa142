#!/bin/sh
# run_fuzzer.sh BINARY SEED_CORPUS WORKDIR: a bounded libFuzzer smoke run.
set -e
bin=$1; seeds=$2; work=$3
rm -rf "$work"; mkdir -p "$work/corpus"
[ -d "$seeds" ] && cp -r "$seeds"/. "$work/corpus/" 2>/dev/null || true
exec "$bin" -max_total_time="${LWDM_FUZZ_SECONDS:-15}" -rss_limit_mb=2048 -timeout=10 \
     -artifact_prefix="$work/" "$work/corpus"
