#!/usr/bin/env bash
# Runs every parser fuzzer for SECONDS (default 20) each, seeded with the inbound fixtures.
# A crash fails the run and leaves its input in build/fuzz/artifacts/: copy it to
# tests/fixtures/fuzz/ so the unit tests replay it forever.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
build=build/fuzz
mkdir -p "$build/artifacts"
for kind in generic x meta; do
  corpus=$(mktemp -d)
  echo "== fuzz_$kind for ${seconds}s"
  "$build/fuzz_$kind" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$kind-" -print_final_stats=1 \
    "$corpus" tests/fixtures/inbound tests/fixtures/fuzz 2>&1 | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY)" || true
  rm -rf "$corpus"
  if ls "$build/artifacts/$kind-"* >/dev/null 2>&1; then
    echo "fuzz_$kind found a crash: $(ls "$build/artifacts/$kind-"*)" >&2
    exit 1
  fi
done
