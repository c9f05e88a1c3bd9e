#!/usr/bin/env bash
# Start-up benchmark: fills a database with ENTRIES queued entries (bench/store_bench --fill,
# which also times Store::Open alone in a fresh process), then starts the real triaged on it,
# on the shipped config (lexicon, sentiment, rules) with the queue's destination added, and
# prints how long it took to listen (the ports file appears) and its resident size then. Once
# for a clean stop, once after kill -9.
#
#   bench/startup.sh [ENTRIES]     default 1000000
# Needs: cmake --workflow --preset release.
set -euo pipefail
cd "$(dirname "$0")/.."
entries=${1:-1000000}
build=build/release
for bin in triaged store_bench; do
  [[ -x $build/$bin ]] || { echo "missing $build/$bin: run cmake --workflow --preset release" >&2; exit 1; }
done
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== store alone: fill $entries entries, reopen in a fresh process"
$build/store_bench --fill "$entries" "$work/db"

# The shipped config with port 0 listeners, the filled database, and store_bench's
# destination (a helpdesk that refuses connections: nothing leaves while we measure).
$build/triaged --print-default-config |
  sed -e "s|listen: 127.0.0.1:8080|listen: 127.0.0.1:0|" \
      -e "s|listen: 127.0.0.1:9464|listen: 127.0.0.1:0|" \
      -e "s|path: ./data/db|path: $work/db|" \
      -e "s|./data/|$work/|" \
      -e "s|^destinations:|destinations:\n  helpdesk: {type: webhook, url: \"http://127.0.0.1:9/hook\", secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}|" \
      > "$work/config.yaml"

start() {  # $1: label
  rm -f "$work/ports.json"
  local t0 t1
  t0=$(date +%s.%N)
  $build/triaged --config "$work/config.yaml" --ports-file "$work/ports.json" 2> "$work/triaged.log" &
  pid=$!
  for _ in $(seq 2000); do [[ -s $work/ports.json ]] && break; sleep 0.005; done
  t1=$(date +%s.%N)
  [[ -s $work/ports.json ]] || { echo "triaged did not start:" >&2; tail "$work/triaged.log" >&2; exit 1; }
  local rss
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status")
  echo "$1: listening after $(echo "$t1 - $t0" | bc | sed 's/^\./0./') s, rss ${rss} MiB," \
       "$(grep -o 'queued=[0-9]*' "$work/triaged.log" | head -1)"
}

echo "== triaged on the shipped config with $entries queued"
start "clean start"
kill -TERM "$pid"; wait "$pid" || true; pid=
start "restart after a clean stop"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start "restart after kill -9"
