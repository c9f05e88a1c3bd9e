#!/usr/bin/env bash
# Delivery rate per destination type against a fast local receiver: triaged on its default
# config with its `tickets` destination paused, filled by wrk with the generic requests for
# SECONDS, then resumed; prints how fast the backlog drains and triaged's CPU per delivery
# (utime + stime while draining, over the deliveries).
#   file     the default: JSON lines appended and fdatasync'ed (group commit)
#   webhook  Standard Webhooks POSTs to a do-nothing nginx (1 worker, `return 200`), 64 workers
#
#   [TYPES="file webhook"] bench/drain.sh [SECONDS] [RUNS]     defaults: 5 3
# Needs: cmake --workflow --preset release; wrk and nginx-light (deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
runs=${2:-3}
connections=32
build=${BUILD:-build/release}  # BUILD=another build folder, to compare versions
source bench/common.sh
need_triaged_wrk_nginx
prepare_requests generic
start_nginx

admin() { curl -sf -H "Authorization: Bearer $bench_token" "$@"; }
# The value of the metric line that starts with $1.
metric() { admin "http://127.0.0.1:$admin_port/metrics" | awk -v m="$1" 'index($0, m) == 1 {print $2; exit}'; }
delivered() { metric 'triage_delivery_attempts_total{destination="tickets",outcome="delivered"}' | awk '{print $1 + 0}'; }

webhook_secret=whsec_$(head -c 32 /dev/urandom | base64)
echo "== $(nproc) cores; backlog from wrk -t1 -c$connections -d${seconds}s with delivery paused; $runs runs per type"
printf "%-8s %-4s %9s %9s %12s %11s\n" type run backlog seconds delivered/s cpu_us_each
for type in ${TYPES:-file webhook}; do
  : > "$work/rates"; : > "$work/cpu"
  for run in $(seq "$runs"); do
    dir=$work/d-$type-$run
    if [[ $type == webhook ]]; then
      start_triaged "$dir" -e "s|^    type: file$|    type: webhook\n    url: http://127.0.0.1:$nginx_port/hook\n    secret: $webhook_secret\n    concurrency: 64\n    rate: 0|" \
        -e '/^    path: .*tickets.jsonl$/d'
    else
      start_triaged "$dir"
    fi
    admin -X POST "http://127.0.0.1:$admin_port/v1/destinations/tickets/pause" > /dev/null
    REQUESTS="$requests/generic.req" wrk -t1 -c"$connections" -d"${seconds}s" -s bench/replay.lua \
      "http://127.0.0.1:$triaged_port/" > /dev/null
    backlog=$(metric 'triage_ingest_messages_total{outcome="stored",source="generic"}' | awk '{print $1 + 0}')
    before=$(cpu_ticks "$triaged_pid")
    start=$(date +%s.%N)
    admin -X POST "http://127.0.0.1:$admin_port/v1/destinations/tickets/resume" > /dev/null
    until [[ $(delivered) -ge $backlog ]]; do sleep 0.1; done
    end=$(date +%s.%N)
    after=$(cpu_ticks "$triaged_pid")
    kill "$triaged_pid"; wait "$triaged_pid" 2>/dev/null || true
    rm -rf "$dir"
    elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b - a}')
    rate=$(awk -v n="$backlog" -v t="$elapsed" 'BEGIN {printf "%.0f", n / t}')
    cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$backlog" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    printf "%-8s %-4s %9s %9s %12s %11s\n" "$type" "$run" "$backlog" "$elapsed" "$rate" "$cpu"
    echo "$rate" >> "$work/rates"; echo "$cpu" >> "$work/cpu"
  done
  echo "median $type: $(median < "$work/rates") delivered/s, $(median < "$work/cpu") us of CPU each"
done
