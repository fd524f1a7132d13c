#!/usr/bin/env bash
# bench/tls.sh — HTTPS keep-alive throughput of levee, nginx and HAProxy.
#
# Each proxy runs 1 worker, terminates TLS with the same certificate (made here with
# openssl: ECDSA P-256 by default, RSA-2048 with BENCH_TLS_KEY=rsa) and proxies to the
# same levee-demo-backend over plain HTTP with keep-alive. wrk drives each one in turn
# (`wrk -t1 -c64 -d10s https://...`, interleaved rounds, best round reported, as
# bench/run.sh does) and the table shows requests/s, p50/p99 latency, the ratio to
# HAProxy and each proxy's CPU time per request (utime + stime from /proc).
#
# Everything listens on 127.0.0.1, on ports picked at run time; configurations, keys
# and logs live in a temporary directory that is removed at the end; every process
# started here is stopped by PID on exit (also on Ctrl-C or an error). See
# bench/README.md ("TLS — bench/tls.sh").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench

# ---------------------------------------------------------------------------- options

DURATION=${BENCH_DURATION:-10}        # seconds of each measured wrk run
ROUNDS=${BENCH_ROUNDS:-2}             # interleaved rounds; the best one is reported
WARMUP=${BENCH_WARMUP:-1}             # seconds of wrk before each measured run
CONNS=${BENCH_CONNECTIONS:-64}        # wrk connections
BODY=${BENCH_BODY:-100}               # response body size of the backend (bytes)
KEY_KIND=${BENCH_TLS_KEY:-ec}         # ec (ECDSA P-256) | rsa (RSA-2048)
ONLY=${BENCH_ONLY:-levee,nginx,haproxy}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}

IFS=, read -r -a PROXIES <<<"$ONLY"

LOG_TAG=bench/tls
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$BENCH_DIR/lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 ]] || die "BENCH_DURATION must be whole seconds >= 1"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "BENCH_ROUNDS must be >= 1"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "BENCH_WARMUP must be whole seconds"
[[ $CONNS =~ ^[0-9]+$ && $CONNS -ge 1 ]] || die "BENCH_CONNECTIONS must be >= 1"
[[ $BODY =~ ^[0-9]+$ ]] || die "BENCH_BODY must be a number of bytes"
case $KEY_KIND in ec | rsa) ;; *) die "BENCH_TLS_KEY must be ec or rsa" ;; esac

init_run levee-bench-tls

# ---------------------------------------------------------------------------- certificate

make_cert() {
    local dir=$TMP/cert
    mkdir -p "$dir"
    local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [[ $KEY_KIND == rsa ]] && newkey=(-newkey rsa:2048)
    openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj "/CN=bench.test" \
        -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" >"$dir/openssl.log" 2>&1 ||
        die "openssl could not make the certificate: $(cat "$dir/openssl.log")"
    cat "$dir/cert.pem" "$dir/key.pem" >"$dir/haproxy.pem" # HAProxy wants both in one file
    CERT=$dir/cert.pem
    KEY=$dir/key.pem
    BUNDLE=$dir/haproxy.pem
    CERT_DESC=$([[ $KEY_KIND == rsa ]] && echo "RSA-2048" || echo "ECDSA P-256")
}

# ---------------------------------------------------------------------------- backend

start_backend() {
    [[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"
    pick_port
    BACKEND_PORT=$PORT
    LOG_FILE=$TMP/backend.log
    start_bg "$DEMO_BIN" --host 127.0.0.1 --port "$BACKEND_PORT" --id fast \
        --body-size "$BODY" --workers 1 --quiet
    BACKEND_PID=$STARTED
    wait_port "$BACKEND_PORT" "$BACKEND_PID" "levee-demo-backend" "$LOG_FILE"
}

# ---------------------------------------------------------------------------- proxies

# start_proxy NAME: writes its config (1 worker, TLS on PROXY_PORT, keep-alive to the
# backend), starts it and waits for its port; sets PROXY_PID and PROXY_PORT.
start_proxy() {
    local name=$1 dir
    dir=$(mktemp -d "$TMP/$name.XXXX")
    pick_port
    PROXY_PORT=$PORT
    LOG_FILE=$dir/output.log
    case $name in
    levee)
        cat >"$dir/levee.yaml" <<EOF
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
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
EOF
        "$LEVEE_BIN" -t -c "$dir/levee.yaml" >"$dir/check.log" 2>&1 ||
            die "levee rejects its benchmark config: $(cat "$dir/check.log")"
        start_bg "$LEVEE_BIN" -c "$dir/levee.yaml"
        ;;
    nginx)
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
user root;                          # as bench/run.sh: workers write temp files in the temp dir
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { use epoll; worker_connections 4096; multi_accept on; }
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    tcp_nodelay on;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream fast {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 1024;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$PROXY_PORT ssl reuseport backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://fast;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
        start_bg nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        ;;
    haproxy)
        cat >"$dir/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 10000
    no strict-limits
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 300s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:$PROXY_PORT ssl crt $BUNDLE alpn http/1.1
    default_backend fast
backend fast
    server fast 127.0.0.1:$BACKEND_PORT
EOF
        start_bg haproxy -db -f "$dir/haproxy.cfg"
        ;;
    *) die "unknown proxy '$name' in BENCH_ONLY (levee, nginx, haproxy)" ;;
    esac
    PROXY_PID=$STARTED
    wait_port "$PROXY_PORT" "$PROXY_PID" "$name" "$LOG_FILE"
    sleep 0.3
}

# The protocol and cipher a default OpenSSL client gets from 127.0.0.1:PORT.
negotiated() {
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername bench.test </dev/null 2>/dev/null |
        awk '/^New, / { sub(/^New, /, ""); sub(/, Cipher is /, " "); print; exit }' || true
}

# ---------------------------------------------------------------------------- report

# The best round of each proxy (highest requests/s), with its ratio to HAProxy's best.
print_table() {
    sort -k2,2 -k3,3nr "$RAW" | awk -v order="$ONLY" '
        BEGIN { n = split(order, names, ",") }
        {
            if ($2 in line) next
            line[$2] = $0
            if ($2 == "haproxy") hap = $3
        }
        END {
            printf "%-8s %9s %9s %9s %8s %10s %10s %6s\n", "proxy", "req/s", "p50 ms", \
                "p99 ms", "vs hap", "cpu us/req", "bk us/req", "errors"
            for (i = 1; i <= n; i++) {
                if (!(names[i] in line)) continue
                split(line[names[i]], f, " ")
                ratio = hap > 0 ? sprintf("%.2f", f[3] / hap) : "-"
                printf "%-8s %9d %9.2f %9.2f %8s %10.1f %10.1f %6d\n", f[2], f[3], f[5], \
                    f[6], ratio, f[8], f[9], f[7]
            }
        }'
}

# ---------------------------------------------------------------------------- main

main() {
    local i n round name stamp results expected
    local -A pids ports protos
    need_proxies BENCH_ONLY levee,nginx,haproxy "${PROXIES[@]}"
    command -v wrk >/dev/null || die "wrk not installed (scripts/deps.sh --bench)"
    command -v openssl >/dev/null || die "openssl not installed"
    n=${#PROXIES[@]}
    expected=$((n * ROUNDS * (WARMUP + DURATION + 1) + 5))
    log "bench/tls: $n proxies x $ROUNDS rounds x ${DURATION}s, -c$CONNS, $BODY B bodies:" \
        "about $((expected / 60)) min $((expected % 60)) s"

    make_cert
    start_backend
    pick_port
    ADMIN_PORT=$PORT
    for name in "${PROXIES[@]}"; do
        start_proxy "$name"
        pids[$name]=$PROXY_PID
        ports[$name]=$PROXY_PORT
        protos[$name]=$(negotiated "$PROXY_PORT")
    done

    RAW=$TMP/raw.txt
    : >"$RAW"
    for ((round = 1; round <= ROUNDS; round++)); do
        for ((i = 0; i < n; i++)); do
            name=${PROXIES[(i + round - 1) % n]}
            log "  round $round: $name"
            echo "$round $name $(measure "$name" "${pids[$name]}" \
                "https://127.0.0.1:${ports[$name]}/" "$CONNS" "$BACKEND_PID")" >>"$RAW"
        done
    done

    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$BENCH_DIR/results"
    results=$BENCH_DIR/results/tls-$stamp.txt
    {
        echo "levee TLS benchmark $stamp  ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit'))"
        echo "machine: $(nproc) cores, $(uname -sr); wrk -t$WRK_THREADS -c$CONNS, ${DURATION}s runs" \
            "after ${WARMUP}s warm-up, best of $ROUNDS interleaved rounds"
        echo "HTTPS keep-alive, 1 worker each, $CERT_DESC certificate, plain HTTP keep-alive to" \
            "levee-demo-backend (1 worker, $BODY B bodies)"
        echo "peers: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3); $(openssl version)"
        for name in "${PROXIES[@]}"; do
            echo "  $name negotiates: ${protos[$name]:-?}"
        done
        echo
        print_table
        echo
        echo "all rounds (round proxy rps requests p50_ms p99_ms errors cpu_us/req backend_cpu_us/req):"
        sed 's/^/  /' "$RAW"
    } >"$results"
    cat "$results"
    log "bench/tls: saved to ${results#"$ROOT"/}"
}

main "$@"
