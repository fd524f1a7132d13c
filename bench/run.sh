#!/usr/bin/env bash
# bench/run.sh — levee beside nginx and HAProxy, in front of the same fast backend.
#
# For workers {1,2} x connections {16,64,1000} x response body {100 B, 16 KiB} it runs wrk
# against the three proxies one after another (interleaved, in rounds, so that the noise
# of a shared machine falls on all of them alike), and prints requests/s, p50/p99 latency,
# the ratio to HAProxy and each proxy's own CPU time per request. Then it measures the
# resident memory each proxy spends per idle client connection, with 10,000 open.
#
# Entry point of `make bench`; see bench/README.md for the options (BENCH_* variables),
# the configurations and how to read the table. Then bench/routes.sh: 100 routes against
# none (BENCH_ROUTES=0 skips it). Everything listens on 127.0.0.1 only,
# on ports picked at run time; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$ROOT/bench

# ---------------------------------------------------------------------------- options

DURATION=${BENCH_DURATION:-10}        # seconds of each measured wrk run
ROUNDS=${BENCH_ROUNDS:-2}             # interleaved rounds; the best round is reported
WARMUP=${BENCH_WARMUP:-1}             # seconds of wrk before each measured run
ONLY=${BENCH_ONLY:-levee,nginx,haproxy}
QUICK=${BENCH_QUICK:-0}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
BACKEND_KINDS=${BENCH_BACKEND:-demo,nginx} # demo, nginx (stand-in), or both: one table each
BACKEND_WORKERS=${BENCH_BACKEND_WORKERS:-1}
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}

WORKERS_LIST=1,2
CONNS_LIST=16,64,1000
if [[ $QUICK == 1 ]]; then
    # A smoke test: one short round of a subset, still every proxy and both bodies.
    DURATION=${BENCH_DURATION:-3}
    ROUNDS=${BENCH_ROUNDS:-1}
    WORKERS_LIST=1
    CONNS_LIST=64
fi
IFS=, read -r -a WORKER_SET <<<"${BENCH_WORKERS:-$WORKERS_LIST}"
IFS=, read -r -a CONN_SET <<<"${BENCH_CONNECTIONS:-$CONNS_LIST}"
# The backends serve these two sizes only (one backend process each).
BODY_SET=(100 16384)

IFS=, read -r -a PROXIES <<<"$ONLY"

# ---------------------------------------------------------------------------- helpers

LOG_TAG=bench
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$BENCH_DIR/lib.sh"
init_run levee-bench

# Resident memory (KiB) of one process, and summed over a process tree.
proc_rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
rss_kib() { tree_sum proc_rss_kib "$1"; }

# Open descriptors of one process, and summed over a process tree.
proc_fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
fd_count() { tree_sum proc_fd_count "$1"; }

# ---------------------------------------------------------------------------- limits

# Every proxy must hold 10,000+ connections. Raise the soft limit as far as the hard one
# allows (65536 at most); the proxies inherit it (levee reads RLIMIT_NOFILE).
raise_nofile
if ((IDLE_CONNS + 1000 > NOFILE)); then
    log "bench: open-file limit $NOFILE: idle connections lowered from $IDLE_CONNS to $((NOFILE - 1000))"
    IDLE_CONNS=$((NOFILE - 1000))
fi
# nginx counts upstream connections too; HAProxy counts client connections, and slows
# down sharply when it reaches maxconn: keep it well above any load we apply.
NGINX_WORKER_CONNECTIONS=$((NOFILE - 200 < 20000 ? NOFILE - 200 : 20000))
HAPROXY_MAXCONN=10000
for c in "${CONN_SET[@]}" "$IDLE_CONNS"; do
    if ((c > HAPROXY_MAXCONN)); then HAPROXY_MAXCONN=$c; fi
done
HAPROXY_MAXCONN=$((HAPROXY_MAXCONN + 1000))

# ---------------------------------------------------------------------------- backend

# Starts the fast backend; sets BACKEND_PORT_100 and BACKEND_PORT_16384 and BACKEND_DESC.
start_backend() {
    if [[ $BACKEND_KIND == demo && ! -x $DEMO_BIN ]]; then
        log "bench: $DEMO_BIN not found: using the nginx stand-in backend"
        BACKEND_KIND=nginx
    fi
    case $BACKEND_KIND in
    demo) start_demo_backend ;;
    nginx) start_standin_backend ;;
    *) die "BENCH_BACKEND must be demo, nginx or demo,nginx" ;;
    esac
}

# Two demo backend processes, each answering every path with its --body-size bytes:
# the cheapest way to serve each body size.
start_demo_backend() {
    [[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"
    local size
    for size in "${BODY_SET[@]}"; do
        pick_port
        LOG_FILE=$TMP/backend-$size.log
        # --quiet: no line per request, which would cost the backend more than the proxy.
        start_bg "$DEMO_BIN" --host 127.0.0.1 --port "$PORT" --id "fast$size" \
            --body-size "$size" --workers "$BACKEND_WORKERS" --quiet
        wait_port "$PORT" "$STARTED" "levee-demo-backend" "$LOG_FILE"
        printf -v "BACKEND_PORT_$size" '%s' "$PORT"
        printf -v "BACKEND_PID_$size" '%s' "$STARTED"
    done
    BACKEND_DESC="levee-demo-backend --workers $BACKEND_WORKERS (one process per body size)"
}

# One nginx worker serving a static 100-byte and 16 KiB file on two ports.
start_standin_backend() {
    local dir=$TMP/backend
    mkdir -p "$dir/www"
    head -c 100 /dev/zero | tr '\0' 'x' >"$dir/www/small.bin"
    head -c 16384 /dev/zero | tr '\0' 'x' >"$dir/www/large.bin"
    pick_port
    BACKEND_PORT_100=$PORT
    pick_port
    BACKEND_PORT_16384=$PORT
    render "$BENCH_DIR/standin-backend.conf.in" "$dir/nginx.conf" DIR="$dir" NOFILE="$NOFILE" \
        PORT_SMALL="$BACKEND_PORT_100" PORT_LARGE="$BACKEND_PORT_16384"
    LOG_FILE=$dir/stdout.log
    start_bg nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
    wait_port "$BACKEND_PORT_100" "$STARTED" "stand-in backend" "$dir/error.log"
    wait_port "$BACKEND_PORT_16384" "$STARTED" "stand-in backend" "$dir/error.log"
    # shellcheck disable=SC2034 # read through ${!name} in throughput_phase
    BACKEND_PID_100=$STARTED BACKEND_PID_16384=$STARTED
    BACKEND_DESC="nginx stand-in (static files, 1 worker)"
}

# ---------------------------------------------------------------------------- proxies

# start_proxy NAME WORKERS BACKEND_PORT: writes its config, starts it, waits for its port;
# sets PROXY_PID and PROXY_PORT.
start_proxy() {
    local name=$1 workers=$2 backend_port=$3 dir
    dir=$(mktemp -d "$TMP/$name.XXXX")
    pick_port
    PROXY_PORT=$PORT
    LOG_FILE=$dir/output.log
    case $name in
    levee)
        render "$BENCH_DIR/levee.yaml.in" "$dir/levee.yaml" LISTEN_PORT="$PROXY_PORT" \
            WORKERS="$workers" BACKEND_PORT="$backend_port"
        "$LEVEE_BIN" -t -c "$dir/levee.yaml" >"$dir/check.log" 2>&1 ||
            die "levee rejects its benchmark config: $(cat "$dir/check.log")"
        start_bg "$LEVEE_BIN" -c "$dir/levee.yaml"
        ;;
    nginx)
        render "$BENCH_DIR/nginx.conf.in" "$dir/nginx.conf" LISTEN_PORT="$PROXY_PORT" \
            WORKERS="$workers" BACKEND_PORT="$backend_port" DIR="$dir" NOFILE="$NOFILE" \
            WORKER_CONNECTIONS="$NGINX_WORKER_CONNECTIONS"
        start_bg nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        ;;
    haproxy)
        render "$BENCH_DIR/haproxy.cfg.in" "$dir/haproxy.cfg" LISTEN_PORT="$PROXY_PORT" \
            WORKERS="$workers" BACKEND_PORT="$backend_port" DIR="$dir" \
            MAXCONN="$HAPROXY_MAXCONN"
        start_bg haproxy -db -f "$dir/haproxy.cfg"
        ;;
    *) die "unknown proxy '$name' in BENCH_ONLY (levee, nginx, haproxy)" ;;
    esac
    PROXY_PID=$STARTED
    wait_port "$PROXY_PORT" "$PROXY_PID" "$name" "$LOG_FILE"
    # Port open means the first listener is up; give the other workers a moment.
    sleep 0.3
}

# ---------------------------------------------------------------------------- phases

# Throughput phase: appends one line per run to $RAW:
# workers conns body round proxy rps requests p50 p99 errors cpu_us backend_cpu_us
throughput_phase() {
    local workers body conns round i n name pid port bport bpid result
    local -A pids ports
    n=${#PROXIES[@]}
    for workers in "${WORKER_SET[@]}"; do
        for body in "${BODY_SET[@]}"; do
            bport=BACKEND_PORT_$body
            bpid=BACKEND_PID_$body
            # Fresh proxies for each (workers, body); all three run side by side, idle
            # when it is not their turn.
            for name in "${PROXIES[@]}"; do
                start_proxy "$name" "$workers" "${!bport}"
                pids[$name]=$PROXY_PID
                ports[$name]=$PROXY_PORT
            done
            for conns in "${CONN_SET[@]}"; do
                for ((round = 1; round <= ROUNDS; round++)); do
                    # Rotate the order each round: no proxy always runs first.
                    for ((i = 0; i < n; i++)); do
                        name=${PROXIES[(i + round - 1) % n]}
                        log "  workers=$workers conns=$conns body=$body round=$round: $name"
                        result=$(measure "$name" "${pids[$name]}" \
                            "http://127.0.0.1:${ports[$name]}/" "$conns" "${!bpid}")
                        echo "$workers $conns $body $round $name $result" >>"$RAW"
                    done
                done
            done
            for name in "${PROXIES[@]}"; do
                stop_pid "${pids[$name]}"
            done
        done
    done
}

# Idle-memory phase: for each proxy (1 worker) and each kind of idle connection, a fresh
# proxy, RSS before and after IDLE_CONNS connections; appends to $IDLE:
# proxy mode rss_before rss_after open closed_by_peer fds_added
idle_phase() {
    local name mode pid port before after fds0 fds holder out ready open closed deadline
    for name in "${PROXIES[@]}"; do
        for mode in request silent; do
            log "  idle memory: $name, $IDLE_CONNS connections ($mode)"
            start_proxy "$name" 1 "$BACKEND_PORT_100"
            pid=$PROXY_PID
            port=$PROXY_PORT
            # Warm up code paths and the upstream pool, so that "before" is a working proxy.
            # At the concurrency idleconns uses (-c 64), so that the pools it fills (backend
            # connections, buffers) are not charged to the idle connections.
            run_wrk "http://127.0.0.1:$port/" 64 1 >/dev/null 2>&1 || true
            sleep 0.5
            before=$(rss_kib "$pid")
            fds0=$(fd_count "$pid")

            out=$TMP/idle-$name-$mode.out
            : >"$out" # exists before the holder writes to it: we poll it below
            LOG_FILE=$out
            start_bg "$IDLECONNS" -m "$mode" -c 64 -t 60 -H 120 127.0.0.1 "$port" "$IDLE_CONNS"
            holder=$STARTED
            deadline=$((SECONDS + 90))
            until grep -q '^ready' "$out"; do
                ((SECONDS < deadline)) || die "idleconns did not get ready against $name"
                kill -0 "$holder" 2>/dev/null || die "idleconns exited: $(cat "$out")"
                sleep 0.2
            done
            ready=$(grep '^ready' "$out")
            open=${ready#*open=}
            open=${open%% *}
            # A completed handshake is not yet an accepted connection: wait until the
            # proxy holds a descriptor for each (or 20 s).
            deadline=$((SECONDS + 20))
            while fds=$(fd_count "$pid") && ((fds - fds0 < open && SECONDS < deadline)); do
                sleep 0.2
            done
            sleep 1
            after=$(rss_kib "$pid")
            fds=$(($(fd_count "$pid") - fds0))

            stop_pid "$holder"
            closed=$(grep '^done' "$out" || echo "closed_by_peer=? ")
            closed=${closed#*closed_by_peer=}
            closed=${closed%% *}
            echo "$name $mode $before $after $open $closed $fds" >>"$IDLE"
            stop_pid "$pid"
        done
    done
}

# ---------------------------------------------------------------------------- report

# The best round (highest requests/s) of each proxy in each combination, with its ratio
# to HAProxy's best in the same combination.
print_table() {
    sort -k1,1n -k2,2n -k3,3n -k5,5 -k6,6nr "$RAW" | awk -v order="$ONLY" '
        BEGIN { n = split(order, names, ",") }
        {
            key = $1 " " $2 " " $3
            if ((key, $5) in best) next
            best[key, $5] = 1
            line[key, $5] = $0
            if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
            if ($5 == "haproxy") hap[key] = $6
        }
        END {
            printf "%-7s %5s %6s  %-8s %9s %9s %9s %8s %10s %6s\n", "workers", "conns", \
                "body", "proxy", "req/s", "p50 ms", "p99 ms", "vs hap", "cpu us/req", "errors"
            for (k = 1; k <= nk; k++) {
                split(keys[k], c, " ")
                for (i = 1; i <= n; i++) {
                    if (!((keys[k], names[i]) in line)) continue
                    split(line[keys[k], names[i]], f, " ")
                    ratio = (keys[k] in hap && hap[keys[k]] > 0) ? \
                        sprintf("%.2f", f[6] / hap[keys[k]]) : "-"
                    body = c[3] >= 1024 ? (c[3] / 1024) "K" : c[3] "B"
                    printf "%-7s %5s %6s  %-8s %9d %9.2f %9.2f %8s %10.1f %6d\n", c[1], c[2], \
                        body, f[5], f[6], f[8], f[9], ratio, f[11], f[10]
                }
            }
        }'
}

print_idle() {
    printf 'idle client connections, 1 worker, RSS summed over the proxy'"'"'s processes:\n'
    awk '{
        kind = $2 == "request" ? "after 1 request" : "never sent"
        per = $5 > 0 ? ($4 - $3) / $5 : 0
        printf "  %-8s %-16s open %5d  RSS %7d -> %7d KiB  = %5.2f KiB per idle connection" \
            "  (closed by proxy: %s, fds +%d)\n", $1, kind, $5, $3, $4, per, $6, $7
    }' "$IDLE"
}

# ---------------------------------------------------------------------------- main

main() {
    local combos expected stamp results kinds i
    need_proxies BENCH_ONLY levee,nginx,haproxy "${PROXIES[@]}"
    command -v wrk >/dev/null || die "wrk not installed (scripts/deps.sh --bench)"

    IDLECONNS=$TMP/idleconns
    cc -O2 -o "$IDLECONNS" "$BENCH_DIR/idleconns.c" || die "cannot build bench/idleconns.c"

    combos=$((${#WORKER_SET[@]} * ${#CONN_SET[@]} * ${#BODY_SET[@]}))
    # Each run: warm-up + duration + about a second of bookkeeping; each idle test ~8 s.
    expected=$((combos * ROUNDS * ${#PROXIES[@]} * (WARMUP + DURATION + 1) * $(tr -cd , <<<"$BACKEND_KINDS,x" | wc -c) + 10))
    if ((IDLE_CONNS > 0)); then expected=$((expected + ${#PROXIES[@]} * 2 * 8)); fi
    log "bench: ${#PROXIES[@]} proxies x $combos combinations x $ROUNDS rounds x ${DURATION}s," \
        "then idle memory: about $((expected / 60)) min $((expected % 60)) s"

    # One throughput table per backend: a different implementation reveals pool
    # behaviour that one backend can hide. The idle-memory phase runs once.
    IFS=, read -r -a kinds <<<"$BACKEND_KINDS"
    IDLE=$TMP/idle.txt
    : >"$IDLE"
    RAWS=()
    DESCS=()
    for BACKEND_KIND in "${kinds[@]}"; do
        log "bench: backend $BACKEND_KIND"
        start_backend
        RAW=$TMP/raw-$BACKEND_KIND.txt
        : >"$RAW"
        throughput_phase
        if ((IDLE_CONNS > 0)) && [[ ! -s $IDLE ]]; then idle_phase; fi
        RAWS+=("$RAW")
        DESCS+=("$BACKEND_DESC")
        stop_pid "$BACKEND_PID_100"
        stop_pid "$BACKEND_PID_16384"
    done

    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$BENCH_DIR/results"
    results=$BENCH_DIR/results/$stamp.txt
    {
        echo "levee benchmark $stamp  ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit'))"
        echo "machine: $(nproc) cores, $(uname -sr); wrk -t$WRK_THREADS, ${DURATION}s runs" \
            "after ${WARMUP}s warm-up, best of $ROUNDS interleaved rounds"
        echo "peers: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3)"
        echo "levee: its default configuration (bench/levee.yaml.in); the peers log nothing"
        echo
        for i in "${!RAWS[@]}"; do
            RAW=${RAWS[i]}
            echo "backend: ${DESCS[i]}"
            print_table
            echo
        done
        if ((IDLE_CONNS > 0)); then
            print_idle
            echo
        fi
        echo "all rounds (workers conns body round proxy rps requests p50_ms p99_ms errors" \
            "cpu_us/req backend_cpu_us/req):"
        for RAW in "${RAWS[@]}"; do sed 's/^/  /' "$RAW"; done
    } >"$results"
    # 100 routes against none (bench/routes.sh): its table goes to the results too.
    if [[ ${BENCH_ROUTES:-1} == 1 && " ${PROXIES[*]} " == *" levee "* ]]; then
        log "bench: 100 routes against none (bench/routes.sh)"
        {
            echo
            echo "routes (bench/routes.sh):"
            ROUTES_BENCH_DURATION=$DURATION ROUTES_BENCH_ROUNDS=$ROUNDS ROUTES_BENCH_WARMUP=$WARMUP \
                LEVEE_BIN=$LEVEE_BIN DEMO_BIN=$DEMO_BIN "$BENCH_DIR/routes.sh"
        } >>"$results" || log "bench: the routes scenario failed"
    fi
    cat "$results"
    log "bench: saved to ${results#"$ROOT"/}"
}

main "$@"
