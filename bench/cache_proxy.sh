#!/usr/bin/env bash
# bench/cache_proxy.sh — the cache's hit path through real sockets: levee with the cache
# on, beside nginx proxy_cache (and levee without a cache, proxying), in front of the
# demo backend; every request after the first is a hit. Prints requests/s and each
# proxy's own CPU time per request (utime+stime of its processes from /proc, over the
# measured run). One worker each, h2load --h1 as the client.
#
#   bench/cache_proxy.sh                      (build/levee and build/levee-demo-backend)
#   CACHE_BENCH_BODY=16384 CACHE_BENCH_DURATION=10 bench/cache_proxy.sh
#
# Listens on 127.0.0.1 only (ports picked at run time), stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}
BODY=${CACHE_BENCH_BODY:-100}
DURATION=${CACHE_BENCH_DURATION:-5}
CONNS=${CACHE_BENCH_CONNS:-64}
ROUNDS=${CACHE_BENCH_ROUNDS:-2}
TMP=$(mktemp -d /tmp/levee-cache-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}
# utime+stime (clock ticks) of a process and its threads, and of its children.
cpu_ticks() {
    local total=0 p
    for p in "$@"; do
        [ -r /proc/"$p"/stat ] || continue
        total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat)))
    done
    echo "$total"
}

BPORT=$(free_port)
"$DEMO_BIN" --port "$BPORT" --body-size "$BODY" --quiet >"$TMP/demo.log" 2>&1 &
PIDS+=($!)
wait_port "$BPORT"

LPORT=$(free_port)
cat >"$TMP/levee.yaml" <<EOF
listen: 127.0.0.1:$LPORT
workers: 1
admin: { listen: "127.0.0.1:$(free_port)" }
backends:
  - id: fast
    url: http://127.0.0.1:$BPORT
access_log: { path: "off" }
pool: { max_idle: 1024 }
cache:
  enabled: true
  default_ttl: 1h
EOF
"$LEVEE_BIN" -c "$TMP/levee.yaml" >"$TMP/levee.log" 2>&1 &
LEVEE_PID=$!
PIDS+=($LEVEE_PID)

NPORT=$(free_port)
sed -e 's/  enabled: true/  enabled: false/' -e "s/$LPORT/$NPORT/" \
    -e "s/admin: .*/admin: { listen: \"127.0.0.1:$(free_port)\" }/" "$TMP/levee.yaml" >"$TMP/plain.yaml"
"$LEVEE_BIN" -c "$TMP/plain.yaml" >"$TMP/plain.log" 2>&1 &
PLAIN_PID=$!
PIDS+=($PLAIN_PID)

XPORT=$(free_port)
mkdir -p "$TMP/nginx/cache"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { use epoll; worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/cb;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/f;
    uwsgi_temp_path $TMP/nginx/u;
    scgi_temp_path $TMP/nginx/s;
    proxy_cache_path $TMP/nginx/cache keys_zone=c:10m max_size=256m;
    upstream fast { server 127.0.0.1:$BPORT; keepalive 64; }
    server {
        listen 127.0.0.1:$XPORT;
        location / {
            proxy_pass http://fast;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache c;
            proxy_cache_valid 200 1h;
            add_header X-Cache \$upstream_cache_status;
        }
    }
}
EOF
HAVE_NGINX=0
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
    "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
    NGINX_PID=$!
    PIDS+=($NGINX_PID)
    HAVE_NGINX=1
fi
wait_port "$LPORT"
wait_port "$NPORT"
[ $HAVE_NGINX = 1 ] && wait_port "$XPORT"

pids_of() { # the process and its children (nginx's worker)
    echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"
}

run() { # name port pid
    local name=$1 port=$2 pid=$3 pids
    curl -s -o /dev/null "http://127.0.0.1:$port/" # fill the cache
    h2load --h1 -c "$CONNS" -t 1 -D 1 "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    pids=$(pids_of "$pid")
    local hz before after out reqs
    hz=$(getconf CLK_TCK)
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    out=$(h2load --h1 -c "$CONNS" -t 1 -D "$DURATION" "http://127.0.0.1:$port/" 2>&1)
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
    local rps
    rps=$(echo "$out" | awk '/^finished in/ {gsub(",","",$4); print $4}')
    local status
    status=$(echo "$out" | awk '/^status codes:/ {print $3, $4}')
    awk -v n="$name" -v r="$rps" -v d="$((after - before))" -v hz="$hz" -v q="$reqs" -v s="$status" \
        'BEGIN { printf "%-22s %12.0f req/s %8.2f us CPU/req   (%s requests, %s)\n", n, r, (q > 0 ? d / hz * 1e6 / q : 0), q, s }'
}

echo "body ${BODY} B, ${CONNS} connections, ${DURATION} s per run, best of ${ROUNDS} rounds printed each"
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    run "levee cache hit" "$LPORT" "$LEVEE_PID"
    if [ $HAVE_NGINX = 1 ]; then run "nginx proxy_cache hit" "$XPORT" "$NGINX_PID"; fi
    run "levee no cache" "$NPORT" "$PLAIN_PID"
done
curl -s -D - -o /dev/null "http://127.0.0.1:$LPORT/" | grep -i -E "cache-status|^age" || true
if [ $HAVE_NGINX = 1 ]; then curl -s -D - -o /dev/null "http://127.0.0.1:$XPORT/" | grep -i "x-cache" || true; fi
