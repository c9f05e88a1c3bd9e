#!/usr/bin/env bash
# Ingest benchmark: starts the real triaged (release build) on a throw-away data folder, drives
# it with bench/loadgen at a fixed concurrency over keep-alive connections, then drives a
# server that answers 200 without doing any work (the same Beast server code) for comparison.
#
#   bench/run.sh [SECONDS] [CONNECTIONS] [BATCH]     defaults: 10 32 1
# Needs: cmake --workflow --preset release (build/release/{triaged,loadgen,triage_bench,store_bench}).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
batch=${3:-1}
build=build/release
for bin in triaged loadgen triage_bench store_bench; do
  [[ -x $build/$bin ]] || { echo "missing $build/$bin: run cmake --workflow --preset release" >&2; exit 1; }
done

echo "== pure per-message work (Google Benchmark, one core, before any server runs)"
$build/triage_bench --benchmark_min_time=1 2>/dev/null | grep '^BM_'
echo "== queue index memory and storage cost per delivery (200,000 entries)"
$build/store_bench 200000

source bench/common.sh

# The shipped config, with port 0 listeners and the data folder in the temp dir.
$build/triaged --print-default-config |
  sed -e "s|listen: 127.0.0.1:8080|listen: 127.0.0.1:0|" \
      -e "s|listen: 127.0.0.1:9464|listen: 127.0.0.1:0|" \
      -e "s|./data/|$work/|" > "$work/config.yaml"
$build/triaged --config "$work/config.yaml" --ports-file "$work/ports.json" 2> "$work/triaged.log" &
pids+=($!)
for _ in $(seq 200); do [[ -s $work/ports.json ]] && break; sleep 0.05; done
port=$(sed -e 's/.*"ingest":\([0-9]*\).*/\1/' "$work/ports.json")
admin=$(sed -e 's/.*"admin":\([0-9]*\).*/\1/' "$work/ports.json")

echo "== triaged ingest (verify, parse, score, route, group-committed RocksDB write with fsync)"
triaged_line=$($build/loadgen --port "$port" --connections "$connections" --seconds "$seconds" --batch "$batch")
echo "$triaged_line"
wal_syncs=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^triage_ingest_request_duration_seconds_count/ {print $2}')

$build/loadgen --serve-null --port 0 > "$work/null.port" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/null.port ]] && break; sleep 0.05; done
echo "== do-nothing server (same Beast server, handler answers at once)"
null_line=$($build/loadgen --port "$(cat "$work/null.port")" --connections "$connections" --seconds "$seconds" --batch "$batch")
echo "$null_line"

field() { sed -e "s/.*$1=\([0-9.]*\).*/\1/" <<< "$2"; }
echo
printf '%-34s %12s %12s %10s %10s\n' "server" "requests/s" "messages/s" "p50 us" "p99 us"
printf '%-34s %12s %12s %10s %10s\n' "triaged (durable ingest)" \
  "$(field requests_per_s "$triaged_line")" "$(field messages_per_s "$triaged_line")" \
  "$(field p50_us "$triaged_line")" "$(field p99_us "$triaged_line")"
printf '%-34s %12s %12s %10s %10s\n' "do-nothing Beast server" \
  "$(field requests_per_s "$null_line")" "$(field messages_per_s "$null_line")" \
  "$(field p50_us "$null_line")" "$(field p99_us "$null_line")"
echo "(machine: $(nproc) cores; loadgen, server and RocksDB share them; ${wal_syncs:-?} requests answered)"
