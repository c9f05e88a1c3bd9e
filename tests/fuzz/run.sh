#!/usr/bin/env bash
# Runs every source type's parser fuzzer, seeded with the inbound fixtures and past crashes.
#   tests/fuzz/run.sh            CI mode: fixed seed and run count, so a run is reproducible
#   tests/fuzz/run.sh SECONDS    exploration: random seed, SECONDS per parser
# A crash fails the run and leaves its input in build/fuzz/artifacts/: copy it to
# tests/fixtures/fuzz/ (with a line in its README) so the unit tests replay it forever.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build/fuzz
mkdir -p "$build/artifacts"
# One fuzzer per source type (router/sources/<type>/); CI's run counts keep each near a minute.
declare -A ci_runs=([generic]=2000000 [x]=300000 [meta]=400000)
for folder in router/sources/*/; do
  kind=$(basename "$folder")
  if [[ $# -ge 1 ]]; then
    budget=(-max_total_time="$1")
  else
    budget=(-seed=1 -runs="${ci_runs[$kind]:-300000}")
  fi
  corpus=$(mktemp -d)
  echo "== fuzz_$kind ${budget[*]}"
  "$build/fuzz_$kind" "${budget[@]}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/artifacts/$kind-" -print_final_stats=1 \
    "$corpus" tests/fixtures/inbound tests/fixtures/fuzz 2>&1 |
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==|SUMMARY)" || true
  rm -rf "$corpus"
  if ls "$build/artifacts/$kind-"* >/dev/null 2>&1; then
    echo "fuzz_$kind found a crash: $(ls "$build/artifacts/$kind-"*)" >&2
    exit 1
  fi
done
