#!/usr/bin/env bash
# bench/routes.sh — what 100 routes cost levee per request.
#
# Two levee instances in front of the same fast backend, driven by wrk one after the
# other (in rounds, the order rotating): "none", the top-level backends only (no
# routes:); "routes100", the same backend behind 100 routes — 50 exact hosts, 49 path
# prefixes that the benchmark's requests miss, then the catch-all `path_prefix: /` that
# they hit, so each request walks the host table and the prefix trie before its route.
# Prints requests/s and levee's CPU time per request of each, and the difference.
# See bench/README.md ("Routes").
#
# Everything listens on 127.0.0.1 only, on ports picked at run time; every process
# started here is stopped by PID on exit (also on Ctrl-C or an error).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DURATION=${ROUTES_BENCH_DURATION:-10} # seconds of each measured wrk run
ROUNDS=${ROUTES_BENCH_ROUNDS:-2}      # rounds; the best one of each mode is reported
WARMUP=${ROUTES_BENCH_WARMUP:-1}      # seconds of wrk before each measured run
CONNS=${ROUTES_BENCH_CONNECTIONS:-64} # wrk connections (keep-alive)
WORKERS=${ROUTES_BENCH_WORKERS:-1}    # levee workers
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}
WRK_THREADS=1
MODES=(none routes100)

LOG_TAG="routes bench"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$ROOT/bench/lib.sh"

command -v wrk >/dev/null || die "wrk is not installed (scripts/deps.sh, or apt-get install wrk)"
[[ -x $LEVEE_BIN ]] || die "$LEVEE_BIN not found (make build/levee)"
[[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"
case $LEVEE_BIN in *asan*) log "routes bench: warning: $LEVEE_BIN looks like an ASan build" ;; esac

init_run levee-routesbench

pick_port
BACKEND_PORT=$PORT
LOG_FILE=$TMP/backend.log
start_bg "$DEMO_BIN" --host 127.0.0.1 --port "$BACKEND_PORT" --id fast \
    --body-size 100 --workers 1 --quiet
wait_port "$BACKEND_PORT" "$STARTED" levee-demo-backend "$TMP/backend.log"

# routes_section MODE: nothing, or 100 routes to the default pool.
routes_section() {
    [[ $1 == routes100 ]] || return 0
    local i
    echo "routes:"
    for ((i = 0; i < 50; i++)); do
        printf '  - { name: host%02d, match: { host: svc%02d.example.com }, pool: default }\n' "$i" "$i"
    done
    for ((i = 0; i < 49; i++)); do
        printf '  - { name: path%02d, match: { path_prefix: /svc%02d }, pool: default }\n' "$i" "$i"
    done
    echo "  - { name: all, match: { path_prefix: / }, pool: default }"
}

# start_levee MODE: sets LEVEE_PID, LEVEE_PORT.
start_levee() {
    local mode=$1 dir=$TMP/levee-$1
    mkdir -p "$dir"
    pick_port
    LEVEE_PORT=$PORT
    pick_port
    local admin_port=$PORT
    {
        printf 'listen: 127.0.0.1:%s\nworkers: %s\n' "$LEVEE_PORT" "$WORKERS"
        printf 'backends:\n  - id: fast\n    url: http://127.0.0.1:%s\n' "$BACKEND_PORT"
        printf 'access_log: { path: "off" }\ntimeouts: { idle: 300s }\npool: { max_idle: 1024 }\n'
        printf 'admin:\n  listen: 127.0.0.1:%s\n' "$admin_port"
        routes_section "$mode"
    } >"$dir/levee.yaml"
    "$LEVEE_BIN" -t -c "$dir/levee.yaml" >"$dir/check.log" 2>&1 ||
        die "levee rejects the $mode config: $(cat "$dir/check.log")"
    LOG_FILE=$dir/levee.log
    start_bg "$LEVEE_BIN" -c "$dir/levee.yaml"
    LEVEE_PID=$STARTED
    wait_port "$LEVEE_PORT" "$LEVEE_PID" "levee ($mode)" "$dir/levee.log"
    sleep 0.3 # the other workers' listeners
}

TICK_US=$((1000000 / CLK_TCK))

declare -A PID_OF PORT_OF BEST ERRS TICKS REQS CPU100
for mode in "${MODES[@]}"; do
    start_levee "$mode"
    PID_OF[$mode]=$LEVEE_PID PORT_OF[$mode]=$LEVEE_PORT
    BEST[$mode]=0 ERRS[$mode]=0 TICKS[$mode]=0 REQS[$mode]=0 CPU100[$mode]=0
done

total=$(((WARMUP + DURATION + 1) * ${#MODES[@]} * ROUNDS))
log "routes bench: $ROUNDS round(s) x ${#MODES[@]} modes x (${WARMUP}s warm-up + ${DURATION}s), about ${total}s; $CONNS connections, $WORKERS worker(s)"

for ((round = 0; round < ROUNDS; round++)); do
    for ((i = 0; i < ${#MODES[@]}; i++)); do
        mode=${MODES[$(((i + round) % ${#MODES[@]}))]}
        url=http://127.0.0.1:${PORT_OF[$mode]}/
        if ((WARMUP > 0)); then run_wrk "$url" "$CONNS" "$WARMUP" >/dev/null || true; fi
        c0=$(cpu_ticks "${PID_OF[$mode]}")
        # errors: socket errors + non-2xx/3xx responses.
        read -r rps requests _ _ errors < <(run_wrk "$url" "$CONNS" "$DURATION" | parse_wrk) ||
            die "wrk failed against $mode"
        c1=$(cpu_ticks "${PID_OF[$mode]}")
        cpu=$(((c1 - c0) * TICK_US * 100 / (requests > 0 ? requests : 1))) # 1/100 µs
        text=$(printf '%d.%02d' $((cpu / 100)) $((cpu % 100)))
        log "  round $((round + 1)) $mode: $rps req/s, levee $text us/req, $errors errors"
        if ((rps > BEST[$mode])); then BEST[$mode]=$rps; fi
        TICKS[$mode]=$((TICKS[$mode] + c1 - c0)) REQS[$mode]=$((REQS[$mode] + requests))
        ERRS[$mode]=$((ERRS[$mode] + errors))
    done
done

# CPU per request over every round (the CPU clock ticks every $TICK_US us: one round
# alone is coarse).
declare -A CPU
for mode in "${MODES[@]}"; do
    CPU100[$mode]=$((TICKS[$mode] * TICK_US * 100 / (REQS[$mode] > 0 ? REQS[$mode] : 1)))
    CPU[$mode]=$(printf '%d.%02d' $((CPU100[$mode] / 100)) $((CPU100[$mode] % 100)))
done

printf '\n%-10s %10s %8s %12s %7s  %s\n' mode "req/s" "vs none" "levee us/req" errors notes
for mode in "${MODES[@]}"; do
    case $mode in
    none) note="top-level backends, no routes:" ;;
    routes100) note="50 hosts + 49 prefixes missed, then path_prefix: / (the 100th)" ;;
    esac
    ratio=$(awk -v a="${BEST[$mode]}" -v b="${BEST[none]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-10s %10s %8s %12s %7s  %s\n' "$mode" "${BEST[$mode]}" "$ratio" "${CPU[$mode]}" \
        "${ERRS[$mode]}" "$note"
done
d=$((CPU100[routes100] - CPU100[none]))
sign=""
if ((d < 0)); then sign=- d=$((-d)); fi
printf '\n100 routes add %s%d.%02d us of levee CPU per request over all rounds (target < 0.5 us;\n  on a shared machine the noise is larger: make route-bench measures the matcher alone)\n' \
    "$sign" $((d / 100)) $((d % 100))
printf 'req/s: best of %d round(s) of %ss, wrk -t1 -c%s, levee workers %s, %s\n' "$ROUNDS" "$DURATION" \
    "$CONNS" "$WORKERS" "$(basename "$LEVEE_BIN")"
