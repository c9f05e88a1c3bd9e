#!/usr/bin/env bash
# The cost of the cluster path: one triaged on its default config (RocksDB, fsync per group)
# against the same triaged on storage.backend: jetstream, in front of a 3-node nats-server
# cluster on loopback (R3 streams), runs interleaved, with the same client (wrk replaying
# pre-built unique signed generic requests). Prints req/s, p50/p99 and triaged's CPU per
# request; the NATS servers' CPU per request for the jetstream runs. Everything shares this
# machine's cores, so this measures cost, not what three hosts would do.
# The jetstream runs go through an nginx load balancer (1 worker, round robin, keep-alive) to 1,
# 2 or 3 triaged nodes on the one cluster and prefix (NODES); triaged's CPU is summed over them.
#
#   bench/cluster.sh [SECONDS] [RUNS] [CONNECTIONS] [NODES]    defaults: 8 3 32 "1 2 3"
# KEEP=DIR keeps each run's triaged folders (config, log) there.
# Needs: cmake --workflow --preset release; wrk, nginx-light, nats-server (deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
runs=${2:-3}
connections=${3:-32}
node_counts=${4:-1 2 3}
build=${BUILD:-build/release}
source bench/common.sh
need_triaged_wrk_nginx
command -v nats-server > /dev/null || [[ -x /usr/sbin/nats-server ]] ||
  { echo "needs nats-server: sudo apt-get install nats-server" >&2; exit 1; }
prepare_requests generic

# Three servers on free ports, each with its own store under $work.
nats_pids=()
client_ports=()
cluster_ports=()
for n in 1 2 3; do client_ports+=("$(free_port)"); cluster_ports+=("$(free_port)"); done
routes=$(printf 'nats-route://127.0.0.1:%s, ' "${cluster_ports[@]}")
for n in 0 1 2; do
  mkdir -p "$work/nats$n"
  cat > "$work/nats$n.conf" <<CONF
server_name: n$n
listen: 127.0.0.1:${client_ports[$n]}
jetstream { store_dir: "$work/nats$n", max_memory_store: 256MiB, max_file_store: 8GiB }
cluster { name: bench, listen: 127.0.0.1:${cluster_ports[$n]}, routes: [${routes%, }] }
CONF
  /usr/sbin/nats-server -c "$work/nats$n.conf" > "$work/nats$n.log" 2>&1 &
  nats_pids+=($!)
  pids+=($!)
done
servers=$(printf '"nats://127.0.0.1:%s", ' "${client_ports[@]}")
sleep 3

nats_ticks() { local t=0 p; for p in "${nats_pids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }

# An nginx balancing over the ports given ($lb_port).
start_balancer() {
  lb_port=$(free_port)
  local dir=$work/lb-$lb_port upstream="" port
  mkdir -p "$dir"
  for port in "$@"; do upstream+="server 127.0.0.1:$port; "; done
  cat > "$dir/nginx.conf" <<CONF
  $([[ $(id -u) -eq 0 ]] && echo "user root root;")
  daemon off;
  worker_processes 1;
  pid $dir/nginx.pid;
  error_log $dir/error.log;
  events { worker_connections 4096; }
  http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream triaged { $upstream keepalive 64; }
    server {
      listen 127.0.0.1:$lb_port;
      location / { proxy_pass http://triaged; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
  }
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  lb_pid=$!
  pids+=($lb_pid)
  sleep 0.5
}

echo "== $(nproc) cores; wrk -t1 -c$connections -d${seconds}s; $runs interleaved runs; generic payloads"
printf "%-4s %-14s %12s %9s %9s %9s %11s %11s\n" run backend rps p50_ms p99_ms errors cpu_us_req nats_us_req
for run in $(seq "$runs"); do
  for config in rocksdb $(for n in $node_counts; do echo "jetstream-$n"; done); do
    nodes=1 extra=() node_pids=() node_ports=()
    if [[ $config == jetstream-* ]]; then nodes=${config#jetstream-}; fi
    for node in $(seq "$nodes"); do
      if [[ $config == jetstream-* ]]; then
        extra=(-e "s|^  backend: rocksdb.*|  backend: jetstream\n  jetstream: {servers: [${servers%, }], prefix: B$run$nodes, node: n$node}|")
      fi
      start_triaged "$work/t-$config-$run-$node" "${extra[@]}"
      node_pids+=("$triaged_pid")
      node_ports+=("$triaged_port")
    done
    port=${node_ports[0]}
    if [[ $config == jetstream-* ]]; then
      start_balancer "${node_ports[@]}"
      port=$lb_port
    fi
    triaged_ticks() { local t=0 p; for p in "${node_pids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }
    before=$(triaged_ticks); nats_before=$(nats_ticks)
    read -r rps p50 p99 err non2xx done < <(drive "$port" "$requests/generic.req")
    after=$(triaged_ticks); nats_after=$(nats_ticks)
    for pid in "${node_pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    if [[ $config == jetstream-* ]]; then kill "$lb_pid"; wait "$lb_pid" 2>/dev/null || true; fi
    [[ -n ${KEEP:-} ]] && cp -r "$work"/t-"$config"-"$run"-* "$KEEP"/ 2>/dev/null; rm -rf "$work"/t-"$config"-"$run"-*
    cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    nats_cpu=-
    [[ $config == jetstream-* ]] &&
      nats_cpu=$(awk -v d=$((nats_after - nats_before)) -v hz="$ticks_per_second" -v n="$done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    printf "%-4s %-14s %12s %9s %9s %9s %11s %11s\n" "$run" "$config" "$rps" "$p50" "$p99" "$((err + non2xx))" "$cpu" "$nats_cpu"
  done
done
