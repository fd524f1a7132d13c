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
WRK_THREADS=1
MODES=(off local redis)

LOG_TAG="ratelimit bench"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/bench/lib.sh"

for tool in wrk redis-server curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/deps.sh, or apt-get install $tool)"
done
[[ -x $LEVEE_BIN ]] || die "$LEVEE_BIN not found (make build/levee)"
[[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"
case $LEVEE_BIN in *asan*) log "ratelimit bench: warning: $LEVEE_BIN looks like an ASan build" ;; esac

init_run levee-rlbench

# metric ADMIN_PORT NAME: the value of an unlabelled metric (empty if absent).
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# ---------------------------------------------------------------------------- servers

pick_port
BACKEND_PORT=$PORT
LOG_FILE=$TMP/backend.log
start_bg "$DEMO_BIN" --host 127.0.0.1 --port "$BACKEND_PORT" --id fast \
    --body-size 100 --workers 1 --quiet
wait_port "$BACKEND_PORT" "$STARTED" levee-demo-backend "$TMP/backend.log"

pick_port
REDIS_PORT=$PORT
mkdir -p "$TMP/redis"
LOG_FILE=$TMP/redis.log
start_bg redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
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
    LOG_FILE=$dir/levee.log
    start_bg "$LEVEE_BIN" -c "$dir/levee.yaml"
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

TICK_US=$((1000000 / CLK_TCK))

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
        url=http://127.0.0.1:${PORT_OF[$mode]}/
        if ((WARMUP > 0)); then run_wrk "$url" "$CONNS" "$WARMUP" >/dev/null || true; fi
        c0=$(cpu_ticks "${PID_OF[$mode]}") r0=$(cpu_ticks "$REDIS_PID")
        # errors: socket errors + non-2xx/3xx responses.
        read -r rps requests _ _ errors < <(run_wrk "$url" "$CONNS" "$DURATION" | parse_wrk) ||
            die "wrk failed against $mode"
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
