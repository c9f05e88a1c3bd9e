# Shared by the benchmark scripts (sourced, from the project root, with $build set): a work
# folder cleaned up at exit with every process started, and the helpers below (a do-nothing
# nginx, wrk replaying pre-built requests with $seconds and $connections, triaged on its
# default config).
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Checks that triaged is built and wrk and nginx are installed.
need_triaged_wrk_nginx() {
  [[ -x $build/triaged ]] || { echo "missing $build/triaged: cmake --workflow --preset release" >&2; exit 1; }
  command -v wrk > /dev/null && command -v nginx > /dev/null ||
    { echo "needs wrk and nginx: sudo apt-get install wrk nginx-light" >&2; exit 1; }
}

# Pre-built unique signed requests of each set named (generic: 300,000; x: 100,000), made once
# in build/bench-requests; sets $requests.
requests=build/bench-requests
prepare_requests() {
  mkdir -p "$requests"
  local set
  for set in "$@"; do
    local count=300000
    [[ $set == x ]] && count=100000
    [[ -s $requests/$set.req ]] || python3 bench/make_requests.py "$set" "$count" "$requests/$set.req"
  done
}

# A do-nothing nginx (1 worker, `return 200`) on $nginx_port.
start_nginx() {
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
}

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

# triaged on its default config in the fresh folder $1, plus an x source and an admin token
# ($bench_token), with more sed expressions in the rest of the arguments; sets triaged_pid,
# triaged_port and admin_port (which also serves /metrics).
bench_token=bench-admin-token-0123456789abcdef
start_triaged() {
  local dir=$1
  shift
  mkdir -p "$dir"
  $build/triaged --print-default-config |
    sed -e "s|listen: 127.0.0.1:8080|listen: 127.0.0.1:0|" -e "s|listen: 127.0.0.1:9464|listen: 127.0.0.1:0|" \
        -e "s|./data/|$dir/|" -e 's|^  # x:$|  x:|' -e 's|^  #   type: x$|    type: x|' \
        -e 's|^  #   consumer_secret: {env: X_CONSUMER_SECRET}.*|    consumer_secret: bench-consumer-secret|' \
        -e "s|^  # token: {file: .*|  token: $bench_token|" "$@" \
        > "$dir/config.yaml"
  $build/triaged --config "$dir/config.yaml" --ports-file "$dir/ports.json" 2> "$dir/triaged.log" &
  triaged_pid=$!
  pids+=($triaged_pid)
  for _ in $(seq 400); do [[ -s $dir/ports.json ]] && break; sleep 0.05; done
  triaged_port=$(sed -e 's/.*"ingest":\([0-9]*\).*/\1/' "$dir/ports.json")
  admin_port=$(sed -e 's/.*"admin":\([0-9]*\).*/\1/' "$dir/ports.json")
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

