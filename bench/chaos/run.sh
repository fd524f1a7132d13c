#!/usr/bin/env bash
# bench/chaos/run.sh — levee beside nginx and HAProxy in front of misbehaving backends.
#
# For each scenario (all backends well, a backend answering 503s, hanging, resetting, dead,
# killed, flapping, or all of them gone for 5 s) and each proxy, it starts three fresh demo
# backends (the same seeds for every proxy, so each meets the same misbehaviour), a fresh
# proxy configured with the same budgets (connect 1 s, 1 s per try, 3 tries, 3 s in all;
# checks every 1 s, fall 2 / rise 2), drives it with bench/chaos/load.py (an open loop: a
# fixed rate of requests, 80 % GET and 20 % POST) and prints two tables: the summary (one
# row per scenario, one column per proxy: ok %, POST ok %, p99, recovery) and the details
# (p50/p99/max latency, 5xx, timeouts, retries and hedges).
#
# Not part of `make bench`; see bench/README.md ("Chaos") for the options (CHAOS_*
# variables), the configurations and how to read the table. Everything listens on
# 127.0.0.1 only, on ports picked at run time; every process started here is stopped on
# exit, by its PID; every step has a deadline, so the run always ends by itself.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS_DIR=$ROOT/bench/chaos
PYTHON=/usr/bin/python3

# ---------------------------------------------------------------------------- options

DURATION=${CHAOS_DURATION:-25}        # seconds of load per scenario and proxy
RATE=${CHAOS_RATE:-100}               # requests started per second
POST_RATIO=${CHAOS_POST_RATIO:-0.2}   # fraction of POSTs
CLIENT_TIMEOUT=${CHAOS_TIMEOUT:-10}   # client timeout per request, seconds
SETTLE=${CHAOS_SETTLE:-3}             # seconds between the proxy's start and the load
SEED=${CHAOS_SEED:-1}                 # seeds of the backends' chaos and the GET/POST mix
DEAD_FOR=${CHAOS_DEAD_FOR:-5}         # all_dead_then_back: seconds without any backend
ALL_SCENARIOS=healthy,errors,hangs,resets,all_dead_then_back,dead,killed,flapping
ONLY=${CHAOS_ONLY:-$ALL_SCENARIOS}
ALL_PROXIES=levee,levee-ewma,levee-p2c,levee-nohedge,levee-defaults,levee-tuned,nginx,haproxy
PROXY_LIST=${CHAOS_PROXIES:-levee-defaults,levee-tuned,nginx,haproxy}
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/levee-demo-backend}

IFS=, read -r -a SCENARIOS <<<"$ONLY"
IFS=, read -r -a PROXIES <<<"$PROXY_LIST"

# ---------------------------------------------------------------------------- helpers

LOG_TAG=chaos
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$ROOT/bench/lib.sh"

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 3)); then
    die "CHAOS_DURATION must be whole seconds, >= 3"
fi
[[ $SETTLE =~ ^[0-9]+$ ]] || die "CHAOS_SETTLE must be whole seconds"
if ! [[ $CLIENT_TIMEOUT =~ ^[0-9]+$ ]] || ((CLIENT_TIMEOUT < 1)); then
    die "CHAOS_TIMEOUT must be whole seconds, >= 1"
fi
if ! [[ $DEAD_FOR =~ ^[0-9]+$ ]] || ((DEAD_FOR < 1 || 3 * DEAD_FOR > 2 * DURATION - 6)); then
    die "CHAOS_DEAD_FOR must be whole seconds, >= 1, and leave 2 s of load after the restart" \
        "(CHAOS_DURATION >= 3/2 x CHAOS_DEAD_FOR + 3)"
fi

init_run levee-chaos

now_ns() { date +%s%N; }

# Sleeps until the wall clock reaches NS (nanoseconds since the epoch). In the background
# and waited for: a signal then stops the run at once, not when the sleep ends.
sleep_until() {
    local ms=$((($1 - $(now_ns)) / 1000000)) pid
    if ((ms > 0)); then
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" &
        pid=$!
        STARTED_PIDS+=("$pid")
        wait "$pid" || true
        forget_pid "$pid"
    fi
}

# A load generator with hanging requests can hold many connections, and so can a proxy.
raise_nofile

# ---------------------------------------------------------------------------- backends

# Backend i (1..3) of the current run: port B_PORT[i], PID B_PID[i] (empty: not running),
# extra arguments B_EXTRA[i]; B_REQS[i] sums the requests of its killed incarnations.
declare -a B_PORT B_PID B_EXTRA B_REQS

# start_backends I...: starts them all, then waits until each listens.
start_backends() {
    local i
    for i in "$@"; do
        LOG_FILE=$RUN_DIR/b$i.log
        # shellcheck disable=SC2086 # B_EXTRA holds several options
        start_bg "$DEMO_BIN" --host 127.0.0.1 --port "${B_PORT[i]}" --id "b$i" \
            --seed "$((SEED * 100 + i))" --quiet ${B_EXTRA[i]}
        B_PID[i]=$STARTED
    done
    for i in "$@"; do
        wait_port "${B_PORT[i]}" "${B_PID[i]}" "backend b$i" "$RUN_DIR/b$i.log"
    done
}

# Requests backend i has seen since it started (/stats is never delayed nor failed;
# health checks are included). Prints 0 if it does not answer within 2 s.
backend_requests() {
    local out
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    out=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
        cat <&3' _ "${B_PORT[$1]}" 2>/dev/null) || true
    if [[ $out =~ \"requests\":([0-9]+) ]]; then
        echo "${BASH_REMATCH[1]}"
    else
        echo 0
    fi
}

# kill_backends I...: SIGKILL, as a crash (the kernel closes their connections). Their
# request counts are read first, so that the kills fall close together.
kill_backends() {
    local i
    for i in "$@"; do
        if [[ -n ${B_PID[i]} ]]; then B_REQS[i]=$((B_REQS[i] + $(backend_requests "$i"))); fi
    done
    # One at a time, each reaped by its own wait: bash reports a job killed by a signal
    # that it reaps elsewhere ("Killed").
    for i in "$@"; do
        if [[ -n ${B_PID[i]} ]]; then
            kill -KILL "${B_PID[i]}" 2>/dev/null || true
            wait "${B_PID[i]}" 2>/dev/null || true
            forget_pid "${B_PID[i]}"
            B_PID[i]=
        fi
    done
}

stop_backends() {
    local i
    for i in 1 2 3; do
        if [[ -n ${B_PID[i]} ]]; then
            B_REQS[i]=$((B_REQS[i] + $(backend_requests "$i")))
            stop_pid "${B_PID[i]}"
            B_PID[i]=
        fi
    done
}

# Logs an event at its offset from the start of the load.
event() {
    local ms=$((($(now_ns) - LOAD_START_NS) / 1000000))
    EVENTS+="$(printf '%d.%02d' $((ms / 1000)) $((ms % 1000 / 10)))s $*; "
}

# ---------------------------------------------------------------------------- scenarios

# Sets B_EXTRA (the misbehaving backend's options) and B_STARTED (which run at first).
scenario_backends() {
    B_EXTRA=([1]="" [2]="" [3]="")
    B_STARTED=([1]=1 [2]=1 [3]=1)
    case $1 in
    dead) B_STARTED[2]=0 ;;
    healthy | killed | flapping | all_dead_then_back) ;;
    errors) B_EXTRA[2]="--error-rate 0.5 --error-status 503" ;;
    # A hung request is answered after 10 s: far beyond every per-try timeout, so for the
    # proxies it is a hang, and the connection it holds is freed in the end.
    hangs) B_EXTRA[2]="--hang-rate 0.2 --hang-for 10s" ;;
    resets) B_EXTRA[2]="--reset-rate 0.3" ;;
    *) die "unknown scenario '$1' in CHAOS_ONLY ($ALL_SCENARIOS)" ;;
    esac
}

# Extra load.py options: when the failures should stop (recovery) and the tail window.
scenario_load_args() {
    case $1 in
    killed) echo "--recovery-from $(awk -v d="$DURATION" 'BEGIN { print d / 3 }')" ;;
    all_dead_then_back)
        # From the restart (DEAD_FOR after the kill at 1/3) on, and the last third.
        echo "--recovery-from $(awk -v d="$DURATION" -v f="$DEAD_FOR" 'BEGIN { print d / 3 + f }')" \
            "--tail-from $(awk -v d="$DURATION" -v f="$DEAD_FOR" \
                'BEGIN { t = 2 * d / 3; r = d / 3 + f; print (t > r ? t : r) }')"
        ;;
    esac
}

# Runs the scenario's kills and restarts, timed from LOAD_START_NS; returns at the end of
# the load's schedule at the latest.
scenario_events() {
    local ms=$((DURATION * 1000)) t up=1
    case $1 in
    killed)
        sleep_until $((LOAD_START_NS + ms * 1000000 / 3))
        kill_backends 2
        event "kill -9 b2"
        sleep_until $((LOAD_START_NS + 2 * ms * 1000000 / 3))
        start_backends 2
        event "b2 restarted"
        ;;
    flapping)
        for ((t = 2000; t < ms; t += 2000)); do
            sleep_until $((LOAD_START_NS + t * 1000000))
            if ((up)); then
                kill_backends 2
                event "kill -9 b2"
                up=0
            else
                start_backends 2
                event "b2 restarted"
                up=1
            fi
        done
        ;;
    all_dead_then_back)
        sleep_until $((LOAD_START_NS + ms * 1000000 / 3))
        kill_backends 1 2 3
        event "kill -9 b1 b2 b3"
        sleep_until $((LOAD_START_NS + ms * 1000000 / 3 + DEAD_FOR * 1000000000))
        start_backends 1 2 3
        event "b1 b2 b3 restarted"
        ;;
    esac
}

# ---------------------------------------------------------------------------- proxies

proxy_label() {
    case $1 in
    levee) echo "levee (round robin)" ;;
    levee-ewma) echo "levee (peak_ewma)" ;;
    levee-p2c) echo "levee (power_of_two)" ;;
    levee-nohedge) echo "levee (no hedge)" ;;
    levee-defaults) echo "levee (defaults)" ;;
    levee-tuned) echo "levee (tuned)" ;;
    *) echo "$1" ;;
    esac
}

# render_levee NAME FILE FIELD=VALUE...: levee's configuration for the variant NAME.
#   levee          levee.yaml.in: the tuned breaker, round robin, hedge_after 50ms
#   levee-ewma     the same with load_balancing: peak_ewma
#   levee-p2c      the same with load_balancing: power_of_two
#   levee-nohedge  the same as levee without hedging
#   levee-defaults levee-defaults.yaml.in: the common budgets and nothing else
#   levee-tuned    levee.yaml.in with peak_ewma and hedge_after: auto (the defaults' policies
#                  with the tuned breaker)
render_levee() {
    local name=$1 file=$2
    shift 2
    case $name in
    levee) render "$CHAOS_DIR/levee.yaml.in" "$file" HEDGE=50ms BALANCER=round_robin "$@" ;;
    levee-ewma) render "$CHAOS_DIR/levee.yaml.in" "$file" HEDGE=50ms BALANCER=peak_ewma "$@" ;;
    levee-p2c) render "$CHAOS_DIR/levee.yaml.in" "$file" HEDGE=50ms BALANCER=power_of_two "$@" ;;
    levee-nohedge) render "$CHAOS_DIR/levee.yaml.in" "$file" HEDGE=off BALANCER=round_robin "$@" ;;
    levee-defaults) render "$CHAOS_DIR/levee-defaults.yaml.in" "$file" "$@" ;;
    levee-tuned) render "$CHAOS_DIR/levee.yaml.in" "$file" HEDGE=auto BALANCER=peak_ewma "$@" ;;
    *) die "unknown levee variant '$name'" ;;
    esac
}

# levee_counters: "HEDGES RETRIES" from the levee under test's /metrics ("- -" if it does
# not answer within 2 s).
levee_counters() {
    local out h r
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    out=$(timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n\r\n" "$1" >&3
        cat <&3' _ "$ADMIN_PORT" 2>/dev/null) || true
    h=$(awk '$1 == "levee_hedges_total" { print $2 }' <<<"$out")
    r=$(awk '$1 == "levee_retries_total" { print $2 }' <<<"$out")
    echo "${h:--} ${r:--}"
}

# start_proxy NAME DIR: writes its config for B_PORT, starts it, waits for its port; sets
# PROXY_PID, PROXY_PORT and PROXY_LOG.
start_proxy() {
    local name=$1 dir=$2 ports
    pick_port
    PROXY_PORT=$PORT
    PROXY_LOG=$dir/output.log
    LOG_FILE=$PROXY_LOG
    ports=(B1_PORT="${B_PORT[1]}" B2_PORT="${B_PORT[2]}" B3_PORT="${B_PORT[3]}")
    case $name in
    levee*)
        pick_port
        ADMIN_PORT=$PORT
        render_levee "$name" "$dir/levee.yaml" LISTEN_PORT="$PROXY_PORT" \
            ADMIN_PORT="$ADMIN_PORT" "${ports[@]}"
        "$LEVEE_BIN" -t -c "$dir/levee.yaml" >"$dir/check.log" 2>&1 ||
            die "levee rejects its chaos config: $(cat "$dir/check.log")"
        start_bg "$LEVEE_BIN" -c "$dir/levee.yaml"
        ;;
    nginx)
        render "$CHAOS_DIR/nginx.conf.in" "$dir/nginx.conf" LISTEN_PORT="$PROXY_PORT" \
            DIR="$dir" "${ports[@]}"
        PROXY_LOG=$dir/error.log
        start_bg nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
        ;;
    haproxy)
        render "$CHAOS_DIR/haproxy.cfg.in" "$dir/haproxy.cfg" LISTEN_PORT="$PROXY_PORT" \
            DIR="$dir" "${ports[@]}"
        start_bg haproxy -db -f "$dir/haproxy.cfg"
        ;;
    *) die "unknown proxy '$name' in CHAOS_PROXIES ($ALL_PROXIES)" ;;
    esac
    PROXY_PID=$STARTED
    wait_port "$PROXY_PORT" "$PROXY_PID" "$name" "$LOG_FILE"
}

proxy_versions() {
    local p out=() levee_done=0
    for p in "${PROXIES[@]}"; do
        case $p in
        levee*)
            ((levee_done)) || out+=("$("$LEVEE_BIN" --version 2>&1 | head -1)")
            levee_done=1
            ;;
        nginx) out+=("$(nginx -v 2>&1 | sed 's/.*: //')") ;;
        haproxy) out+=("$(haproxy -v | head -1 | cut -d' ' -f1-3)") ;;
        esac
    done
    printf '%s, ' "${out[@]}" | sed 's/, $//'
}

# ---------------------------------------------------------------------------- one run

# run_one SCENARIO PROXY: fresh backends, a fresh proxy, the load and the events; appends
# one record to $RECORDS.
run_one() {
    local scenario=$1 name=$2 i load_pid rc=0 alive=1 reqs=0 json counters="- -"
    RUN_DIR=$TMP/$scenario-$name
    mkdir -p "$RUN_DIR"
    scenario_backends "$scenario"
    for i in 1 2 3; do
        pick_port
        B_PORT[i]=$PORT
        B_PID[i]=
        B_REQS[i]=0
    done
    local up=()
    for i in 1 2 3; do
        if ((B_STARTED[i])); then up+=("$i"); fi
    done
    start_backends "${up[@]}"
    start_proxy "$name" "$RUN_DIR"
    # The proxy runs a while before the clients come (its health checks do their rounds),
    # as a proxy in service would have.
    sleep_until $(($(now_ns) + SETTLE * 1000000000))

    json=$RUN_DIR/load.json
    EVENTS=""
    # The events are timed from LOAD_START_NS and so are load.py's requests: a second
    # is ample for the interpreter to start, and if it is late all the same, load.py
    # keeps the time base (the late requests start at once, their lag counted).
    LOAD_START_NS=$(($(now_ns) + 1000000000))
    LOG_FILE=$RUN_DIR/load.log
    # shellcheck disable=SC2046 # scenario_load_args prints several options
    start_bg timeout $((DURATION + CLIENT_TIMEOUT + 30)) "$PYTHON" "$CHAOS_DIR/load.py" \
        "http://127.0.0.1:$PROXY_PORT" --rate "$RATE" --duration "$DURATION" \
        --post-ratio "$POST_RATIO" --timeout "$CLIENT_TIMEOUT" --seed "$SEED" \
        --start-at "$(awk -v ns="$LOAD_START_NS" 'BEGIN { printf "%.3f", ns / 1e9 }')" \
        --out "$json" $(scenario_load_args "$scenario")
    load_pid=$STARTED
    scenario_events "$scenario"
    wait "$load_pid" || rc=$?
    forget_pid "$load_pid"
    if ((rc != 0)) || [[ ! -s $json ]]; then
        cat "$RUN_DIR/load.log" >&2
        die "load.py failed against $name in $scenario (exit $rc)"
    fi
    kill -0 "$PROXY_PID" 2>/dev/null || alive=0
    if ((alive)) && [[ $name == levee* ]]; then counters=$(levee_counters); fi
    stop_pid "$PROXY_PID"
    stop_backends
    for i in 1 2 3; do reqs=$((reqs + B_REQS[i])); done
    # Keep what the report needs beyond the temporary directory's life.
    if ((!alive)); then
        EVENTS+="PROXY EXITED during the run: $(tail -n 5 "$PROXY_LOG" | tr '\n\t' '  '); "
    fi
    printf '%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n' "$scenario" "$(proxy_label "$name")" "$json" \
        "$alive" "$reqs" "${counters% *}" "${counters#* }" "${EVENTS:--}" >>"$RECORDS"
    "$PYTHON" "$CHAOS_DIR/report.py" --one "$RECORDS" >&2
}

# ---------------------------------------------------------------------------- main

main() {
    local p s runs expected bound stamp results dir rev changed get_pct post_pct
    need_proxies CHAOS_PROXIES "$ALL_PROXIES" "${PROXIES[@]}"
    for s in "${SCENARIOS[@]}"; do scenario_backends "$s"; done
    [[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make build/levee-demo-backend)"

    # Check levee's configs before spending minutes on the peers.
    dir=$TMP/levee-check
    mkdir -p "$dir"
    for p in "${PROXIES[@]}"; do
        [[ $p == levee* ]] || continue
        render_levee "$p" "$dir/$p.yaml" LISTEN_PORT=1 ADMIN_PORT=5 B1_PORT=2 B2_PORT=3 B3_PORT=4
        "$LEVEE_BIN" -t -c "$dir/$p.yaml" >"$dir/check.log" 2>&1 ||
            die "levee rejects its configuration for $p: $(cat "$dir/check.log")"
    done

    runs=$((${#SCENARIOS[@]} * ${#PROXIES[@]}))
    # Each run: backends and proxy start (~1 s), settle, 1 s lead, load, the last answers (~1 s),
    # stopping (~1 s). At most: the client timeout instead of ~1 s, and the stop grace.
    expected=$((runs * (SETTLE + DURATION + 4)))
    bound=$((runs * (SETTLE + DURATION + CLIENT_TIMEOUT + 30)))
    log "chaos: ${#SCENARIOS[@]} scenarios x ${#PROXIES[@]} proxies x ${DURATION}s" \
        "at $RATE req/s: about $((expected / 60)) min $((expected % 60)) s" \
        "(at most $((bound / 60)) min $((bound % 60)) s)"

    RECORDS=$TMP/records.tsv
    : >"$RECORDS"
    for s in "${SCENARIOS[@]}"; do
        for p in "${PROXIES[@]}"; do
            log "chaos: $s / $(proxy_label "$p")"
            run_one "$s" "$p"
        done
    done

    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$ROOT/bench/results"
    results=$ROOT/bench/results/chaos-$stamp.txt
    rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')
    changed=$( (git -C "$ROOT" status --porcelain -- src 2>/dev/null || true) | wc -l)
    get_pct=$(awk -v r="$POST_RATIO" 'BEGIN { print (1 - r) * 100 }')
    post_pct=$(awk -v r="$POST_RATIO" 'BEGIN { print r * 100 }')
    {
        echo "levee chaos benchmark $stamp  (tree: $rev, $changed files changed in src/)"
        echo "machine: $(nproc) cores, $(uname -sr)"
        echo "load: open loop, $RATE req/s for ${DURATION}s, $get_pct% GET /, $post_pct% POST" \
            "/upload (256 B), client timeout ${CLIENT_TIMEOUT}s; proxies started ${SETTLE}s" \
            "before the load"
        echo "proxies: $(proxy_versions)"
        echo "budgets: connect 1s, 1s per try, 3 tries, 3s in all; checks every 1s, fall 2," \
            "rise 2; b2 misbehaves unless said otherwise; all_dead_then_back: ${DEAD_FOR}s" \
            "without a backend"
        echo
        "$PYTHON" "$CHAOS_DIR/report.py" "$RECORDS"
    } >"$results"
    cat "$results"
    log "chaos: saved to ${results#"$ROOT"/}"
}

main "$@"
