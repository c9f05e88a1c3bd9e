#!/usr/bin/env bash
# triaged against nginx, side by side, with the same client (wrk) replaying pre-built unique
# signed requests (bench/make_requests.py, bench/replay.lua), runs interleaved so both see the
# same machine. Per payload set (generic ~550-byte messages, ~3 KB X Account Activity bodies):
# req/s of a do-nothing nginx (1 worker, `return 200`), of triaged on its default config (a
# fresh data folder per run, plus an x source), the ratio, p50/p99, and triaged's CPU per
# request (utime + stime of the process over the run).
#
#   [SETS="generic x"] bench/vs_nginx.sh [SECONDS] [RUNS] [CONNECTIONS]     defaults: 8 5 32
# Needs: cmake --workflow --preset release; wrk and nginx-light (deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
runs=${2:-5}
connections=${3:-32}
build=build/release
[[ -x $build/triaged ]] || { echo "missing $build/triaged: cmake --workflow --preset release" >&2; exit 1; }
command -v wrk > /dev/null && command -v nginx > /dev/null ||
  { echo "needs wrk and nginx: sudo apt-get install wrk nginx-light" >&2; exit 1; }

requests=build/bench-requests
mkdir -p "$requests"
[[ -s $requests/generic.req ]] || python3 bench/make_requests.py generic 300000 "$requests/generic.req"
[[ -s $requests/x.req ]] || python3 bench/make_requests.py x 100000 "$requests/x.req"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
$([[ $(id -u) -eq 0 ]] && echo "user root root;")
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { return 200 '{"accepted":1,"duplicates":0}'; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" &
pids+=($!)
sleep 0.5

# wrk against $1 with the requests of $2: prints "req/s p50_ms p99_ms errors non2xx completed".
drive() {
  local out
  out=$(REQUESTS="$2" wrk -t1 -c"$connections" -d"${seconds}s" --latency -s bench/replay.lua "http://127.0.0.1:$1/")
  local rps result
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
  result=$(grep '^RESULT' <<< "$out")
  local field
  field() { sed -e "s/.* $1=\([^ ]*\).*/\1/" <<< "$result"; }
  echo "$rps $(field p50_ms) $(field p99_ms) $(field errors) $(field non2xx) $(field requests)"
}

start_triaged() {
  local dir=$1
  mkdir -p "$dir"
  $build/triaged --print-default-config |
    sed -e "s|listen: 127.0.0.1:8080|listen: 127.0.0.1:0|" -e "s|listen: 127.0.0.1:9464|listen: 127.0.0.1:0|" \
        -e "s|./data/|$dir/|" -e 's|^  # x:$|  x:|' -e 's|^  #   type: x$|    type: x|' \
        -e 's|^  #   consumer_secret: {env: X_CONSUMER_SECRET}.*|    consumer_secret: bench-consumer-secret|' \
        > "$dir/config.yaml"
  $build/triaged --config "$dir/config.yaml" --ports-file "$dir/ports.json" 2> "$dir/triaged.log" &
  triaged_pid=$!
  pids+=($triaged_pid)
  for _ in $(seq 400); do [[ -s $dir/ports.json ]] && break; sleep 0.05; done
  triaged_port=$(sed -e 's/.*"ingest":\([0-9]*\).*/\1/' "$dir/ports.json")
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

ticks_per_second=$(getconf CLK_TCK)
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
done
