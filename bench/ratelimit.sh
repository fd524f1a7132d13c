#!/usr/bin/env bash
# bench/ratelimit.sh — what a rate-limit check costs levee.
#
# Three levee instances in front of the same fast backend, driven by wrk one after the
# other (in rounds, the order rotating): rate limiting off; `store: local` with limits
# so high that nothing is refused (so the figure is the cost of the check); and
# `store: redis` with the same limits, against a redis-server started here. Prints
# requests/s of each and the ratio to "off". See bench/README.md ("Rate limits").
#
# Everything listens on 127.0.0.1 only, on ports picked at run time; every process
# started here is stopped by PID on exit (also on Ctrl-C or an error); every step has
# a deadline.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DURATION=${RL_BENCH_DURATION:-10}       # seconds of each measured wrk run
ROUNDS=${RL_BENCH_ROUNDS:-2}            # rounds; the best one of each mode is reported
WARMUP=${RL_BENCH_WARMUP:-1}            # seconds of wrk before each measured run
CONNS=${RL_BENCH_CONNECTIONS:-64}       # wrk connections (keep-alive)
WORKERS=${RL_BENCH_WORKERS:-1}          # levee workers
REDIS_TIMEOUT=${RL_BENCH_REDIS_TIMEOUT:-50ms}
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}
MODES=(off local redis)

log() { printf '%s\n' "$*" >&2; }
die() {
    log "ratelimit bench: $*"
    exit 1
}

for tool in wrk redis-server curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/deps.sh, or apt-get install $tool)"
done
[[ -x $LEVEE_BIN ]] || die "$LEVEE_BIN not found (make build/levee)"
[[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"
case $LEVEE_BIN in *asan*) log "ratelimit bench: warning: $LEVEE_BIN looks like an ASan build" ;; esac

TMP=$(mktemp -d /tmp/levee-rlbench.XXXXXX)
STARTED_PIDS=()

# SIGTERM, up to 5 s, then SIGKILL; by PID only.
stop_pid() {
    local pid=$1 i left=()
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    wait "$pid" 2>/dev/null || true
    for i in "${STARTED_PIDS[@]}"; do
        [[ $i == "$pid" ]] || left+=("$i")
    done
    STARTED_PIDS=("${left[@]}")
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_bg LOGFILE CMD...: sets STARTED.
start_bg() {
    local logfile=$1
    shift
    "$@" >"$logfile" 2>&1 &
    STARTED=$!
    STARTED_PIDS+=("$STARTED")
}

USED_PORTS=" "
pick_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if /usr/bin/python3 -c 'import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; then
            USED_PORTS+="$p "
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

wait_port() {
    local port=$1 pid=$2 name=$3 logfile=$4 deadline=$((SECONDS + 20))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logfile" >&2 || true
            die "$name exited before listening on port $port"
        fi
        ((SECONDS < deadline)) || die "$name not listening on port $port after 20 s"
        sleep 0.05
    done
}

# metric ADMIN_PORT NAME: the value of an unlabelled metric (empty if absent).
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# ---------------------------------------------------------------------------- servers

pick_port
BACKEND_PORT=$PORT
start_bg "$TMP/backend.log" "$DEMO_BIN" --host 127.0.0.1 --port "$BACKEND_PORT" --id fast \
    --body-size 100 --workers 1 --quiet
wait_port "$BACKEND_PORT" "$STARTED" levee-demo-backend "$TMP/backend.log"

pick_port
REDIS_PORT=$PORT
mkdir -p "$TMP/redis"
start_bg "$TMP/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
    --appendonly no --dir "$TMP/redis" --daemonize no
REDIS_PID=$STARTED
wait_port "$REDIS_PORT" "$REDIS_PID" redis-server "$TMP/redis.log"

# Limits nobody reaches: every request is checked (per client, then global) and passes.
HIGH="requests_per_second: 1000000000
  burst: 1000000000"
rate_section() {
    case $1 in
    off) ;;
    local | redis)
        printf 'rate_limit:\n  %s\n  per_client:\n    requests_per_second: 1000000000\n    burst: 1000000000\n' "$HIGH"
        if [[ $1 == redis ]]; then
            printf '  store: redis\n  on_store_error: local\n  redis:\n    address: 127.0.0.1:%s\n    timeout: %s\n' \
                "$REDIS_PORT" "$REDIS_TIMEOUT"
        fi
        ;;
    esac
}

# start_levee MODE: sets LEVEE_PID, LEVEE_PORT, ADMIN_PORT.
start_levee() {
    local mode=$1 dir=$TMP/levee-$1
    mkdir -p "$dir"
    pick_port
    LEVEE_PORT=$PORT
    pick_port
    ADMIN_PORT=$PORT
    {
        printf 'listen: 127.0.0.1:%s\nworkers: %s\n' "$LEVEE_PORT" "$WORKERS"
        printf 'backends:\n  - id: fast\n    url: http://127.0.0.1:%s\n' "$BACKEND_PORT"
        printf 'access_log: { path: "off" }\ntimeouts: { idle: 300s }\npool: { max_idle: 1024 }\n'
        printf 'admin:\n  listen: 127.0.0.1:%s\n' "$ADMIN_PORT"
        rate_section "$mode"
    } >"$dir/levee.yaml"
    "$LEVEE_BIN" -t -c "$dir/levee.yaml" >"$dir/check.log" 2>&1 ||
        die "levee rejects the $mode config: $(cat "$dir/check.log")"
    start_bg "$dir/levee.log" "$LEVEE_BIN" -c "$dir/levee.yaml"
    LEVEE_PID=$STARTED
    wait_port "$LEVEE_PORT" "$LEVEE_PID" "levee ($mode)" "$dir/levee.log"
    wait_port "$ADMIN_PORT" "$LEVEE_PID" "levee admin ($mode)" "$dir/levee.log"
    if [[ $mode == redis ]]; then
        local deadline=$((SECONDS + 20))
        until [[ $(metric "$ADMIN_PORT" levee_rate_limit_store_up) == "$WORKERS" ]]; do
            ((SECONDS < deadline)) || die "levee did not connect to redis in 20 s"
            sleep 0.1
        done
    fi
    sleep 0.3 # the other workers' listeners
}

# run_wrk PORT SECONDS: prints "rps requests errors" (errors: socket errors + non-2xx/3xx).
run_wrk() {
    timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"${2}s" --timeout 5s "http://127.0.0.1:$1/" |
        awk '
            /^Requests\/sec:/ { rps = $2 }
            $2 == "requests" && $3 == "in" { requests = $1 }
            /Non-2xx or 3xx responses:/ { errors += $NF }
            /Socket errors:/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
            END { if (rps == "" || requests == "") exit 1; printf "%.0f %d %d\n", rps, requests, errors }'
}

# CPU time (user + system, clock ticks) of a process, all threads.
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# ---------------------------------------------------------------------------- runs

declare -A PID_OF PORT_OF ADMIN_OF BEST ERRS FALLBACKS CPU REDIS_CPU
for mode in "${MODES[@]}"; do
    start_levee "$mode"
    PID_OF[$mode]=$LEVEE_PID PORT_OF[$mode]=$LEVEE_PORT ADMIN_OF[$mode]=$ADMIN_PORT
    BEST[$mode]=0 ERRS[$mode]=0 CPU[$mode]=- REDIS_CPU[$mode]=-
done

total=$(((WARMUP + DURATION + 1) * ${#MODES[@]} * ROUNDS))
log "ratelimit bench: $ROUNDS round(s) x ${#MODES[@]} modes x (${WARMUP}s warm-up + ${DURATION}s), about ${total}s; $CONNS connections, $WORKERS worker(s)"

for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < ${#MODES[@]}; i++)); do
        mode=${MODES[$(((i + round) % ${#MODES[@]}))]}
        port=${PORT_OF[$mode]}
        if ((WARMUP > 0)); then run_wrk "$port" "$WARMUP" >/dev/null || true; fi
        c0=$(cpu_ticks "${PID_OF[$mode]}") r0=$(cpu_ticks "$REDIS_PID")
        read -r rps requests errors < <(run_wrk "$port" "$DURATION") || die "wrk failed against $mode"
        c1=$(cpu_ticks "${PID_OF[$mode]}") r1=$(cpu_ticks "$REDIS_PID")
        cpu=$(((c1 - c0) * TICK_US * 100 / (requests > 0 ? requests : 1)))   # 1/100 µs
        rcpu=$(((r1 - r0) * TICK_US * 100 / (requests > 0 ? requests : 1)))
        cpu=$(printf '%d.%02d' $((cpu / 100)) $((cpu % 100)))
        rcpu=$(printf '%d.%02d' $((rcpu / 100)) $((rcpu % 100)))
        log "  round $((round + 1)) $mode: $rps req/s, levee $cpu us/req, redis $rcpu us/req, $errors errors"
        if ((rps > BEST[$mode])); then
            BEST[$mode]=$rps CPU[$mode]=$cpu
            if [[ $mode == redis ]]; then REDIS_CPU[$mode]=$rcpu; fi
        fi
        ERRS[$mode]=$((ERRS[$mode] + errors))
    done
done

for mode in local redis; do
    FALLBACKS[$mode]=$(metric "${ADMIN_OF[$mode]}" levee_rate_limit_store_fallbacks_total)
    rejected=$(curl -s --max-time 5 "http://127.0.0.1:${ADMIN_OF[$mode]}/metrics" |
        awk '/^rate_limit_rejected_total/ { s += $2 } END { print s + 0 }')
    ((rejected == 0)) || log "ratelimit bench: warning: $mode refused $rejected requests (limits too low?)"
done

printf '\n%-8s %10s %8s %12s %12s %7s  %s\n' mode "req/s" "vs off" "levee us/req" "redis us/req" errors notes
for mode in "${MODES[@]}"; do
    note=""
    case $mode in
    off) note="no rate_limit section" ;;
    local) note="per-client + global check, local table" ;;
    redis) note="one EVALSHA per request, redis.timeout $REDIS_TIMEOUT; store fallbacks: ${FALLBACKS[redis]:-?}" ;;
    esac
    ratio=$(awk -v a="${BEST[$mode]}" -v b="${BEST[off]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-8s %10s %8s %12s %12s %7s  %s\n' "$mode" "${BEST[$mode]}" "$ratio" "${CPU[$mode]}" \
        "${REDIS_CPU[$mode]}" "${ERRS[$mode]}" "$note"
done
printf '\nbest of %d round(s) of %ss, wrk -t1 -c%s, levee workers %s, %s\n' "$ROUNDS" "$DURATION" \
    "$CONNS" "$WORKERS" "$(basename "$LEVEE_BIN")"
