#!/usr/bin/env bash
# The cost of the cluster path: one triaged on its default config (RocksDB, fsync per group)
# against the same triaged on storage.backend: jetstream, in front of a 3-node nats-server
# cluster on loopback (R3 streams), runs interleaved, with the same client (wrk replaying
# pre-built unique signed generic requests). Prints req/s, p50/p99 and triaged's CPU per
# request; the NATS servers' CPU per request for the jetstream runs. Everything shares this
# machine's cores, so this measures cost, not what three hosts would do.
#
#   bench/cluster.sh [SECONDS] [RUNS] [CONNECTIONS]     defaults: 8 3 32
# Needs: cmake --workflow --preset release; wrk, nginx-light, nats-server (deploy/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
runs=${2:-3}
connections=${3:-32}
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

echo "== $(nproc) cores; wrk -t1 -c$connections -d${seconds}s; $runs interleaved runs; generic payloads"
printf "%-4s %-10s %12s %9s %9s %9s %11s %11s\n" run backend rps p50_ms p99_ms errors cpu_us_req nats_us_req
for run in $(seq "$runs"); do
  for backend in rocksdb jetstream; do
    extra=()
    if [[ $backend == jetstream ]]; then
      extra=(-e "s|^  backend: rocksdb.*|  backend: jetstream\n  jetstream: {servers: [${servers%, }], prefix: B$run}|")
    fi
    start_triaged "$work/t-$backend-$run" "${extra[@]}"
    before=$(cpu_ticks "$triaged_pid"); nats_before=$(nats_ticks)
    read -r rps p50 p99 err non2xx done < <(drive "$triaged_port" "$requests/generic.req")
    after=$(cpu_ticks "$triaged_pid"); nats_after=$(nats_ticks)
    kill "$triaged_pid"; wait "$triaged_pid" 2>/dev/null || true
    rm -rf "$work/t-$backend-$run"
    cpu=$(awk -v d=$((after - before)) -v hz="$ticks_per_second" -v n="$done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    nats_cpu=-
    [[ $backend == jetstream ]] &&
      nats_cpu=$(awk -v d=$((nats_after - nats_before)) -v hz="$ticks_per_second" -v n="$done" 'BEGIN {printf "%.1f", d / hz / n * 1e6}')
    printf "%-4s %-10s %12s %9s %9s %9s %11s %11s\n" "$run" "$backend" "$rps" "$p50" "$p99" "$((err + non2xx))" "$cpu" "$nats_cpu"
  done
done
