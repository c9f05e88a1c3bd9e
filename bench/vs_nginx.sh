#!/usr/bin/env bash
# triaged against nginx, side by side, with the same client (wrk) replaying pre-built unique
# signed requests (bench/make_requests.py, bench/replay.lua), runs interleaved so both see the
# same machine. Per payload set (generic ~550-byte messages, ~3 KB X Account Activity bodies):
# req/s of a do-nothing nginx (1 worker, `return 200`), of triaged on its default config (a
# fresh data folder per run, plus an x source), the ratio, p50/p99, and triaged's CPU per
# request (utime + stime of the process over the run); then triaged's p50/p99 at a fifth of its
# median rate.
#
#   [SETS="generic x"] bench/vs_nginx.sh [SECONDS] [RUNS] [CONNECTIONS]     defaults: 8 5 32
# Needs: cmake --workflow --preset release; wrk and nginx-light (deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
runs=${2:-5}
connections=${3:-32}
build=${BUILD:-build/release}  # BUILD=another build folder, to compare versions
source bench/common.sh
need_triaged_wrk_nginx
prepare_requests ${SETS:-generic x}
start_nginx

echo "== $(nproc) cores; wrk -t1 -c$connections -d${seconds}s; $runs interleaved runs per payload set"
for set in ${SETS:-generic x}; do
  echo "== $set payloads ($(head -c 12 "$requests/$set.req" | head -1) bytes for the first request)"
  printf "%-4s %12s %12s %7s %9s %9s %9s %9s %11s\n" run nginx_rps triaged_rps ratio ngx_p99 tr_p50 tr_p99 errors cpu_us_req
  : > "$work/ratios"; : > "$work/cpu"; : > "$work/triaged_rps"; : > "$work/nginx_rps"
  for run in $(seq "$runs"); do
    read -r n_rps _ n_p99 _ _ _ < <(drive "$nginx_port" "$requests/$set.req")
    start_triaged "$work/t-$set-$run"
    before=$(cpu_ticks "$triaged_pid")
    read -r t_rps t_p50 t_p99 t_err t_non2xx t_done < <(drive "$triaged_port" "$requests/$set.req")
    after=$(cpu_ticks "$triaged_pid")
    kill "$triaged_pid"; wait "$triaged_pid" 2>/dev/null || true
    rm -rf "$work/t-$set-$run"
    ratio=$(awk -v t="$t_rps" -v n="$n_rps" 'BEGIN {printf "%.3f", t / n}')
    cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$t_done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    printf "%-4s %12s %12s %7s %9s %9s %9s %9s %11s\n" "$run" "$n_rps" "$t_rps" "$ratio" "$n_p99" "$t_p50" "$t_p99" \
      "$((t_err + t_non2xx))" "$cpu"
    echo "$ratio" >> "$work/ratios"; echo "$cpu" >> "$work/cpu"
    echo "$t_rps" >> "$work/triaged_rps"; echo "$n_rps" >> "$work/nginx_rps"
  done
  echo "median: nginx $(median < "$work/nginx_rps") req/s, triaged $(median < "$work/triaged_rps") req/s," \
       "ratio $(median < "$work/ratios") (per run $(sort -g "$work/ratios" | head -1)-$(sort -g "$work/ratios" | tail -1))," \
       "triaged CPU $(median < "$work/cpu") us/request"
  # Latency at a fifth of that rate: each connection waits between its requests (wrk's delay).
  paced=$(awk -v r="$(median < "$work/triaged_rps")" 'BEGIN {printf "%d", r / 5}')
  start_triaged "$work/t-$set-paced"
  read -r p_rps p_p50 p_p99 p_err p_non2xx _ < <(DELAY_MS=$(awk -v c="$connections" -v r="$paced" 'BEGIN {printf "%.2f", c * 1000 / r}') \
    drive "$triaged_port" "$requests/$set.req")
  kill "$triaged_pid"; wait "$triaged_pid" 2>/dev/null || true
  rm -rf "$work/t-$set-paced"
  echo "at a fifth of it ($paced req/s asked, $p_rps served): triaged p50 $p_p50 ms, p99 $p_p99 ms," \
       "$((p_err + p_non2xx)) errors"
done
