#!/usr/bin/env bash
# bench/h2.sh — HTTP/2 over TLS: levee, nginx (http2 on) and HAProxy (alpn h2), each
# with 1 worker in front of the same levee-demo-backend (HTTP/1.1, keep-alive), driven by
# h2load with many streams per connection (issue 17):
#
#   h2load -t1 -c$CONNS -m$STREAMS -D$DURATION https://127.0.0.1:PORT/
#
# Interleaved rounds, best round reported: requests/s, and each proxy's CPU time per
# request (utime + stime from /proc, µs). Ports are picked at run time, everything runs on
# 127.0.0.1 and is stopped by PID at the end (bench/lib.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNECTIONS:-8}
STREAMS=${BENCH_STREAMS:-100}
BODY=${BENCH_BODY:-100}
ONLY=${BENCH_ONLY:-levee,nginx,haproxy}
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}
IFS=, read -r -a PROXIES <<<"$ONLY"

LOG_TAG=bench/h2
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$BENCH_DIR/lib.sh"
command -v h2load >/dev/null || die "h2load not found (Debian nghttp2-client)"
init_run levee-bench-h2

dir=$TMP/cert
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1
cat "$dir/cert.pem" "$dir/key.pem" >"$dir/haproxy.pem"
CERT=$dir/cert.pem KEY=$dir/key.pem BUNDLE=$dir/haproxy.pem

pick_port
BACKEND_PORT=$PORT
LOG_FILE=$TMP/backend.log
start_bg "$DEMO_BIN" --host 127.0.0.1 --port "$BACKEND_PORT" --id fast --body-size "$BODY" \
    --workers 1 --quiet
BACKEND_PID=$STARTED
wait_port "$BACKEND_PORT" "$BACKEND_PID" "levee-demo-backend" "$LOG_FILE"

start_proxy() {
    local name=$1 d
    d=$(mktemp -d "$TMP/$name.XXXX")
    pick_port
    PROXY_PORT=$PORT
    pick_port
    local admin=$PORT
    LOG_FILE=$d/output.log
    case $name in
    levee)
        cat >"$d/levee.yaml" <<EOF
listen:
  - address: 127.0.0.1:$PROXY_PORT
    tls:
      certificates:
        - { cert: $CERT, key: $KEY }
workers: 1
backends:
  - id: fast
    url: http://127.0.0.1:$BACKEND_PORT
access_log: { path: "off" }
timeouts: { idle: 300s }
pool: { max_idle: 1024 }
http2: { max_concurrent_streams: $STREAMS }
admin: { listen: "127.0.0.1:$admin" }
EOF
        start_bg "$LEVEE_BIN" -c "$d/levee.yaml"
        ;;
    nginx)
        cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
user root;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { use epoll; worker_connections 4096; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    http2_max_concurrent_streams $STREAMS;
    tcp_nodelay on;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream fast {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT ssl http2 reuseport backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://fast;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
        start_bg nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
        ;;
    haproxy)
        cat >"$d/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 10000
    no strict-limits
    tune.h2.max-concurrent-streams $STREAMS
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend fe
    bind 127.0.0.1:$PROXY_PORT ssl crt $BUNDLE alpn h2,http/1.1
    default_backend fast
backend fast
    server fast 127.0.0.1:$BACKEND_PORT
EOF
        start_bg haproxy -db -f "$d/haproxy.cfg"
        ;;
    esac
    PROXY_PID=$STARTED
    wait_port "$PROXY_PORT" "$PROXY_PID" "$name" "$LOG_FILE"
    sleep 0.3
}

RAW=$TMP/raw
: >"$RAW"
for ((r = 1; r <= ROUNDS; r++)); do
    for p in "${PROXIES[@]}"; do
        start_proxy "$p"
        h2load -t1 -c"$CONNS" -m"$STREAMS" -D1 "https://127.0.0.1:$PROXY_PORT/" >/dev/null 2>&1 || true
        c0=$(cpu_ticks "$PROXY_PID")
        out=$(h2load -t1 -c"$CONNS" -m"$STREAMS" -D"$DURATION" "https://127.0.0.1:$PROXY_PORT/" 2>&1)
        c1=$(cpu_ticks "$PROXY_PID")
        rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i == "req/s,") print $(i - 1) }' <<<"$out")
        ok=$(awk '/^requests:/ { for (i = 1; i <= NF; i++) if ($i == "succeeded,") print $(i - 1) }' <<<"$out")
        proto=$(awk '/^Application protocol:/ { print $3 }' <<<"$out")
        hz=$(getconf CLK_TCK)
        us=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$ok" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }')
        printf '%s %s %s %s %s\n' "$r" "$p" "$rps" "$us" "$proto" >>"$RAW"
        log "round $r $p: $rps req/s, $us us CPU/request, $ok ok, $proto"
        stop_pid "$PROXY_PID"
    done
done
printf '%-8s %12s %16s %6s\n' proxy "req/s" "CPU us/request" alpn
sort -k2,2 -k3,3nr "$RAW" | awk '!seen[$2]++ { printf "%-8s %12.0f %16s %6s\n", $2, $3, $4, $5 }'
