#!/usr/bin/env bash
# Where triaged's CPU goes per request: triaged on its default config under wrk (the replayed
# requests of bench/vs_nginx.sh), sampled by `perf record` for the length of the run. Prints the
# CPU per request, its split by thread (the threads are named: triaged-io, store-writer,
# blocking pool, RocksDB's rocksdb:*), by library, and the heaviest functions.
#
#   [SET=generic|x] [BUILD=build/release] bench/profile.sh [SECONDS] [CONNECTIONS]   defaults: 10 32
# Needs: perf (linux-perf), wrk, nginx-light; kernel.perf_event_paranoid <= 2 for its own process.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}
set=${SET:-generic}
build=${BUILD:-build/release}
source bench/common.sh
need_triaged_wrk_nginx
command -v perf > /dev/null || { echo "needs perf: sudo apt-get install linux-perf" >&2; exit 1; }
prepare_requests "$set"

start_triaged "$work/t"
perf record -q -F 1999 -g -p "$triaged_pid" -o "$work/perf.data" -- sleep "$((seconds + 1))" 2> /dev/null &
perf_pid=$!
sleep 0.5
before=$(cpu_ticks "$triaged_pid")
read -r rps p50 p99 errors non2xx done < <(drive "$triaged_port" "$requests/$set.req")
after=$(cpu_ticks "$triaged_pid")
wait "$perf_pid" || true
cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
echo "== $set: $rps req/s, p50 $p50 ms, p99 $p99 ms, $((errors + non2xx)) errors; triaged CPU $cpu us/request"
report() { perf report -i "$work/perf.data" --no-children --stdio --percent-limit "$1" "${@:2}" 2> /dev/null | grep -v '^#' | grep -v '^$'; }
echo "== by thread (share of triaged's samples; times $cpu us for the us per request)"
report 0.5 --sort comm -g none
echo "== by library"
report 1 --sort dso -g none
echo "== heaviest functions"
report 0.7 --sort sym -g none | head -40
