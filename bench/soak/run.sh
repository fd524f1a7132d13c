#!/usr/bin/env bash
# bench/soak/run.sh — `make soak`: levee's ASan build under 10 minutes of mixed load.
#
# Five demo backends (the ASan build too): b1 answers after 2-12 ms, b2 leaves 5 % of its
# requests unanswered (the connection open), b3 resets 10 %, b4 answers 30 % with 503, and
# b5 is healthy but SIGKILLed every SOAK_KILL_EVERY seconds and restarted SOAK_KILL_DOWN
# seconds later, on the same port. levee (2 workers) reloads every SOAK_RELOAD_EVERY
# seconds (SIGHUP) between two configurations that differ (bench/soak/levee.yaml.in), and
# its access log is rotated (mv + SIGUSR1) every minute. bench/soak/clients.py drives it:
# keep-alive GET/HEAD/POST load with pipelining, slow readers of 16 MiB responses, slow
# senders of 256 KiB bodies, idle keep-alive connections and header tricklers.
#
# Every SOAK_INTERVAL seconds it prints levee's RSS and open fds (/proc) and its client and
# backend connections (/metrics on the admin port). It fails if:
#   - RSS or fds grew after the warm-up: the max of the last third of the run is compared
#     with the max of the second tenth (minutes 1-2 of 10) with a margin, and RSS also with
#     the max of the middle third with a tight one (see analyse and bench/README.md);
#   - once the clients are gone, levee does not come back to no connections and the fds
#     it had before the load (+2) within 60 s;
#   - a reload failed, or no request succeeded for 20 s, or most of the load failed;
#   - levee died, did not stop on SIGTERM, exited non-zero, or ASan, LSan (at exit) or
#     UBSan wrote anything to its stderr.
# Only 127.0.0.1, ports picked at run time; every process is started here and stopped by its
# PID (also on Ctrl-C or an error); every wait has a deadline. The output is also saved to
# bench/results/soak-<timestamp>.txt, with levee's stderr beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SOAK_DIR=$ROOT/bench/soak
PYTHON=/usr/bin/python3

DURATION=${SOAK_DURATION:-600}         # seconds of load
INTERVAL=${SOAK_INTERVAL:-10}          # seconds between two samples
RELOAD_EVERY=${SOAK_RELOAD_EVERY:-30}  # seconds between two reloads
KILL_EVERY=${SOAK_KILL_EVERY:-60}      # b5 is killed this often...
KILL_DOWN=${SOAK_KILL_DOWN:-15}        # ...and restarted this much later
RATE=${SOAK_RATE:-100}                 # requests/s of the keep-alive load
RSS_PCT=${SOAK_RSS_PCT:-10}            # RSS margin: this share of the baseline...
RSS_MIB=${SOAK_RSS_MIB:-16}            # ...plus this many MiB
FD_PCT=${SOAK_FD_PCT:-25}              # fd margin: this share of the baseline...
FD_ABS=${SOAK_FD_ABS:-32}              # ...plus this many
LEVEE_BIN=${LEVEE_BIN:-$ROOT/build/asan/levee}
DEMO_BIN=${DEMO_BIN:-$ROOT/build/asan/levee-demo-backend}

LOG_TAG=soak
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$ROOT/bench/lib.sh"

for v in DURATION INTERVAL RELOAD_EVERY KILL_EVERY KILL_DOWN RSS_PCT RSS_MIB FD_PCT FD_ABS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "SOAK_$v must be a whole number (got '${!v}')"
done
((DURATION >= 120)) || die "SOAK_DURATION must be >= 120 (the baseline is its second tenth)"
((INTERVAL >= 1 && KILL_DOWN < KILL_EVERY && RELOAD_EVERY >= 1)) ||
    die "SOAK_INTERVAL and SOAK_RELOAD_EVERY must be >= 1, SOAK_KILL_DOWN < SOAK_KILL_EVERY"
[[ -x $LEVEE_BIN ]] || die "$LEVEE_BIN not found (make asan)"
[[ -x $DEMO_BIN ]] || die "$DEMO_BIN not found (make asan)"

init_run levee-soak
if [[ ${SOAK_KEEP:-0} == 1 ]]; then
    # Stop everything as usual, but keep the temporary directory (configs, logs).
    # shellcheck disable=SC2317 # called by the EXIT trap
    cleanup() {
        local pid
        for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
        log "soak: kept $TMP"
    }
fi
mkdir -p "$ROOT/bench/results"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS=$ROOT/bench/results/soak-$STAMP.txt
: >"$RESULTS"
FAILS=()

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
fail() {
    say "soak: FAIL: $*"
    FAILS+=("$*")
}

# ASan keeps freed memory in a quarantine (256 MiB by default) to catch uses after free:
# RSS grows until it is full, at a pace set by how much is freed, which would read as
# growth well after the first minute. 8 MiB fills within seconds at the soak's load and
# still holds the last seconds of frees. LSan checks for leaks when levee exits.
export ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=8${SOAK_ASAN_OPTIONS:+:$SOAK_ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1
SANITIZER='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer'

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Sleeps until the wall clock reaches MS (epoch ms). In the background and waited for: a
# signal then stops the run at once.
sleep_until_ms() {
    local ms=$(($1 - $(now_ms))) pid
    if ((ms > 0)); then
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" &
        pid=$!
        STARTED_PIDS+=("$pid")
        wait "$pid" || true
        forget_pid "$pid"
    fi
}

# ---------------------------------------------------------------------------- backends

declare -a B_PORT B_PID B_ARGS
B_ARGS=([1]="--latency 2ms --jitter 10ms" [2]="--hang-rate 0.05" [3]="--reset-rate 0.1"
    [4]="--error-rate 0.3 --error-status 503" [5]="")

start_backend() {
    local i=$1
    LOG_FILE=$TMP/b$i.log
    # shellcheck disable=SC2086 # B_ARGS holds several options
    start_bg "$DEMO_BIN" --host 127.0.0.1 --port "${B_PORT[i]}" --id "b$i" --seed "$i" \
        --quiet ${B_ARGS[i]}
    B_PID[i]=$STARTED
}

kill_backend() {
    local i=$1
    [[ -n ${B_PID[i]} ]] || return 0
    cat "$TMP/b$i.log" >>"$TMP/b$i.all.log" 2>/dev/null || true
    kill -KILL "${B_PID[i]}" 2>/dev/null || true
    wait "${B_PID[i]}" 2>/dev/null || true
    forget_pid "${B_PID[i]}"
    B_PID[i]=
}

# ---------------------------------------------------------------------------- levee

VERSION=A
render_config() {
    local b3="" w=1 lb=weighted per_try=8s hedge=100ms idle=32
    if [[ $1 == A ]]; then
        b3="  - { id: b3, url: \"http://127.0.0.1:${B_PORT[3]}\", health_check_enabled: true }"
    else
        w=5 lb=least_connections per_try=6s hedge=off idle=8
    fi
    render "$SOAK_DIR/levee.yaml.in" "$TMP/levee.yaml.$1" LISTEN_PORT="$PORT_LISTEN" \
        ADMIN_PORT="$PORT_ADMIN" DIR="$TMP" B1_PORT="${B_PORT[1]}" B2_PORT="${B_PORT[2]}" \
        B3_LINE="$b3" B4_PORT="${B_PORT[4]}" B5_PORT="${B_PORT[5]}" B1_WEIGHT="$w" \
        BALANCER="$lb" PER_TRY="$per_try" HEDGE="$hedge" MAX_IDLE="$idle"
    "$LEVEE_BIN" -t -c "$TMP/levee.yaml.$1" >"$TMP/check.log" 2>&1 ||
        die "levee rejects the soak configuration $1: $(cat "$TMP/check.log")"
}

# GET /metrics on the admin port (3 s at most); the body on stdout, empty on failure.
metrics() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nX-Levee-Admin: 1\r\n\r\n" "$1" >&3
        cat <&3' _ "$PORT_ADMIN" 2>/dev/null || true
}

# metric NAME TEXT: the value of an unlabelled (or exactly labelled) sample, 0 if absent.
metric() {
    awk -v n="$1" '$1 == n { v = $2 } END { print v == "" ? 0 : v }' <<<"$2"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$LEVEE_PID/status" 2>/dev/null || echo 0; }
fd_count() { find "/proc/$LEVEE_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# jnum KEY: a count from the clients' status file (0 if absent).
jnum() {
    grep -o "\"$1\": [0-9]*" "$TMP/clients.status" 2>/dev/null | awk '{ print $2 }' || true
}
jsum() {
    local k t=0 v
    for k in "$@"; do
        v=$(jnum "$k")
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

levee_alive() { kill -0 "$LEVEE_PID" 2>/dev/null; }

# Adds an access log's answers, by status and reason, to $TMP/answers, then removes it.
count_log() {
    [[ -f $1 ]] || return 0
    sed -n 's/.*"status":\([0-9]*\).*"reason":\("[a-z_]*"\|null\).*/\1 \2/p' "$1" |
        tr -d '"' >>"$TMP/answers"
    rm -f "$1"
}

# ---------------------------------------------------------------------------- main

main() {
    local i t reloads=0 reload_fail=0 b5="up" m rss fds cl bk ok prev_ok=0
    local kill_at=$((KILL_EVERY - KILL_DOWN)) restart_at=-1 start_ms

    pick_port && PORT_LISTEN=$PORT
    pick_port && PORT_ADMIN=$PORT
    for i in 1 2 3 4 5; do
        pick_port
        B_PORT[i]=$PORT
    done
    render_config A
    render_config B
    cp "$TMP/levee.yaml.A" "$TMP/levee.yaml"

    say "soak: levee $("$LEVEE_BIN" --version 2>&1 | head -1) ($LEVEE_BIN)," \
        "tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')," \
        "$(nproc) cores, $(uname -r)"
    say "soak: ${DURATION}s of load: $RATE req/s keep-alive + slow readers, slow senders," \
        "idle and trickling clients; reload every ${RELOAD_EVERY}s; b5 killed every" \
        "${KILL_EVERY}s for ${KILL_DOWN}s; about $(((DURATION + 60) / 60)) min in all" \
        "(at most $(((DURATION + 200) / 60)))"

    for i in 1 2 3 4 5; do start_backend "$i"; done
    for i in 1 2 3 4 5; do wait_port "${B_PORT[i]}" "${B_PID[i]}" "backend b$i" "$TMP/b$i.log"; done
    LOG_FILE=$TMP/levee.stderr
    start_bg "$LEVEE_BIN" -c "$TMP/levee.yaml"
    LEVEE_PID=$STARTED
    wait_port "$PORT_LISTEN" "$LEVEE_PID" levee "$LOG_FILE"
    wait_port "$PORT_ADMIN" "$LEVEE_PID" "levee admin" "$LOG_FILE"
    sleep_until_ms $(($(now_ms) + 3000)) # health checks do their first rounds

    # fds before any client: the figure levee must come back to once they are gone.
    local fds0=1000000 f
    for i in 1 2 3 4 5; do
        f=$(fd_count)
        ((f < fds0)) && fds0=$f
        sleep_until_ms $(($(now_ms) + 200))
    done
    say "soak: levee pid $LEVEE_PID on 127.0.0.1:$PORT_LISTEN (admin $PORT_ADMIN)," \
        "rss $(($(rss_kib) / 1024)) MiB, $fds0 fds before the load"

    LOG_FILE=$TMP/clients.log
    start_bg timeout $((DURATION + 90)) "$PYTHON" "$SOAK_DIR/clients.py" --port "$PORT_LISTEN" \
        --duration "$DURATION" --rate "$RATE" --status "$TMP/clients.status"
    CLIENTS_PID=$STARTED
    start_ms=$(now_ms)
    : >"$TMP/samples"

    say "soak:   time   rss MiB   fds  clients backends |    2xx    4xx    5xx  errors | reloads  b5"
    for ((t = 1; t <= DURATION; t++)); do
        sleep_until_ms $((start_ms + t * 1000))
        if ! levee_alive; then
            fail "levee died at ${t}s; the end of its stderr:"
            tail -n 30 "$TMP/levee.stderr" | tee -a "$RESULTS"
            break
        fi
        if ((t % RELOAD_EVERY == 0)); then
            VERSION=$([[ $VERSION == A ]] && echo B || echo A)
            cp "$TMP/levee.yaml.$VERSION" "$TMP/levee.yaml"
            kill -HUP "$LEVEE_PID"
            reloads=$((reloads + 1))
        fi
        if ((t % 60 == 55)); then # rotate the access log; the old one is counted next time
            count_log "$TMP/access.log.1"
            mv "$TMP/access.log" "$TMP/access.log.1" 2>/dev/null || true
            kill -USR1 "$LEVEE_PID"
        fi
        if ((t == kill_at)); then
            kill_backend 5
            b5=down
            restart_at=$((t + KILL_DOWN))
            kill_at=$((kill_at + KILL_EVERY))
        elif ((t == restart_at)); then
            start_backend 5
            b5=up
        fi
        ((t % INTERVAL == 0)) || continue
        m=$(metrics)
        rss=$(rss_kib)
        fds=$(fd_count)
        cl=$(metric levee_client_connections "$m")
        bk=$(metric levee_backend_connections "$m")
        reload_fail=$(metric 'levee_config_reloads_total{result="failure"}' "$m")
        ok=$(jsum all.2xx all.3xx)
        printf '%d %d %d %d %d %d\n' "$t" "$rss" "$fds" "$cl" "$bk" "$ok" >>"$TMP/samples"
        say "$(printf 'soak: %5ds %9.1f %5d %8d %8d | %6d %6d %6d %7d | %3d/%-3d %4s' "$t" \
            "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$fds" "$cl" "$bk" "$ok" \
            "$(jsum all.4xx)" "$(jsum all.5xx)" \
            "$(grep -o '"all\.err\.[a-zA-Z]*": [0-9]*' "$TMP/clients.status" 2>/dev/null |
                awk '{ s += $2 } END { print s + 0 }')" \
            "$(metric 'levee_config_reloads_total{result="success"}' "$m")" "$reloads" "$b5")"
        [[ -n $m ]] || fail "no answer from /metrics at ${t}s"
        ((reload_fail == 0)) || fail "levee refused a reload (${reload_fail}) at ${t}s"
        # The clients' status is rewritten every 10 s: successes are compared over 20 s.
        if ((t % 20 == 0)); then
            ((t == 20 || ok > prev_ok)) || fail "no request succeeded between $((t - 20))s and ${t}s"
            prev_ok=$ok
        fi
    done

    # The clients end by themselves just after DURATION.
    if levee_alive; then
        wait "$CLIENTS_PID" || fail "the clients failed (exit $?): $(tail -n 5 "$TMP/clients.log")"
        forget_pid "$CLIENTS_PID"
    else
        stop_pid "$CLIENTS_PID"
    fi
    say "soak: clients: $(tail -n 1 "$TMP/clients.log")"
    count_log "$TMP/access.log.1"
    count_log "$TMP/access.log"
    say "soak: levee's answers (access log, status reason count): $(sort "$TMP/answers" |
        uniq -c | sort -rn | awk '{ printf "%s%s %s %d", (NR > 1 ? ", " : ""), $2, $3, $1 }')"
    if ((restart_at > 0)) && [[ $b5 == down ]]; then start_backend 5; fi

    analyse
    if levee_alive; then drain "$fds0"; fi
    stop_levee
    verdict
}

# ---------------------------------------------------------------------------- checks

# Growth after the warm-up: the max of the last third against the max of the second tenth
# (minutes 1-2 of 10), with the margin SOAK_RSS_PCT/SOAK_RSS_MIB (fds: SOAK_FD_PCT/ABS); and
# RSS once more against the middle third, with a tight margin (5 % + 4 MiB): ASan's
# allocator creeps up for a few minutes (see bench/README.md), which the first margin
# absorbs, and is flat by the middle third, where a steady leak still shows.
analyse() {
    local out
    out=$(awk -v d="$DURATION" -v rp="$RSS_PCT" -v rm="$RSS_MIB" -v fp="$FD_PCT" -v fa="$FD_ABS" '
        function max(a, b) { return a > b ? a : b }
        $1 > d / 10 && $1 <= d / 5 { r1 = max(r1, $2); f1 = max(f1, $3); n1++ }
        $1 > d / 3 && $1 <= 2 * d / 3 { r2 = max(r2, $2); n2++ }
        $1 > 2 * d / 3 { r3 = max(r3, $2); f3 = max(f3, $3); n3++ }
        END {
            if (n1 == 0 || n2 == 0 || n3 == 0) { print "FAIL too few samples to compare"; exit }
            rl = r1 * (1 + rp / 100) + rm * 1024
            r2l = r2 * 1.05 + 4 * 1024
            fl = f1 * (1 + fp / 100) + fa
            printf "%s rss: %.1f MiB at most in the last third, %.1f MiB in the second tenth (limit %.1f MiB)\n",
                (r3 > rl ? "FAIL" : "ok"), r3 / 1024, r1 / 1024, rl / 1024
            printf "%s rss: %.1f MiB at most in the last third, %.1f MiB in the middle third (limit %.1f MiB)\n",
                (r3 > r2l ? "FAIL" : "ok"), r3 / 1024, r2 / 1024, r2l / 1024
            printf "%s fds: %d at most in the last third, %d in the second tenth (limit %d)\n",
                (f3 > fl ? "FAIL" : "ok"), f3, f1, fl
        }' "$TMP/samples")
    while IFS= read -r line; do
        if [[ $line == FAIL* ]]; then fail "${line#FAIL }"; else say "soak: ${line#ok }"; fi
    done <<<"$out"
    local ok total
    ok=$(jsum load.2xx load.3xx)
    total=$(jsum load.2xx load.3xx load.4xx load.5xx load.err.refused load.err.reset \
        load.err.closed load.err.timeout load.err.bad)
    say "soak: load: $ok of $total requests answered 2xx/3xx"
    ((total > 0 && ok * 2 >= total)) || fail "most of the load failed ($ok of $total succeeded)"
}

# Once the clients are gone: no connection left, and the fds levee had before the load.
drain() {
    local fds0=$1 deadline=$((SECONDS + 60)) m cl bk fds
    while :; do
        m=$(metrics)
        cl=$(metric levee_client_connections "$m")
        bk=$(metric levee_backend_connections "$m")
        fds=$(fd_count)
        if [[ -n $m ]] && ((cl == 0 && bk == 0 && fds <= fds0 + 2)); then
            say "soak: drained: no connection left, $fds fds ($fds0 before the load)"
            return
        fi
        if ((SECONDS >= deadline)); then
            fail "60 s after the clients left: $cl client and $bk backend connections," \
                "$fds fds ($fds0 before the load)"
            ls -l "/proc/$LEVEE_PID/fd" >>"$RESULTS" 2>/dev/null || true
            return
        fi
        sleep_until_ms $(($(now_ms) + 500))
    done
}

stop_levee() {
    local i rc=0
    if levee_alive; then
        kill -TERM "$LEVEE_PID"
        for ((i = 0; i < 200; i++)); do
            levee_alive || break
            sleep 0.1
        done
        if levee_alive; then
            fail "levee did not stop within 20 s of SIGTERM"
            kill -KILL "$LEVEE_PID" 2>/dev/null || true
        fi
    fi
    wait "$LEVEE_PID" 2>/dev/null || rc=$?
    forget_pid "$LEVEE_PID"
    ((rc == 0)) || fail "levee exited with status $rc"
}

verdict() {
    local i stem=${RESULTS%.txt}
    cp "$TMP/levee.stderr" "$stem-levee.log"
    if grep -qE "$SANITIZER" "$TMP/levee.stderr"; then
        fail "sanitizer report in levee's stderr ($stem-levee.log):"
        grep -m1 -A40 -E "$SANITIZER" "$TMP/levee.stderr" | tee -a "$RESULTS"
    else
        say "soak: no sanitizer report in levee's stderr ($(wc -l <"$TMP/levee.stderr") lines)"
    fi
    for i in 1 2 3 4 5; do
        cat "$TMP/b$i.log" >>"$TMP/b$i.all.log" 2>/dev/null || true
        if grep -qE "$SANITIZER" "$TMP/b$i.all.log"; then
            say "soak: warning: sanitizer report in the demo backend b$i (not levee):"
            grep -m1 -A20 -E "$SANITIZER" "$TMP/b$i.all.log" | tee -a "$RESULTS"
        fi
    done
    if ((${#FAILS[@]} == 0)); then
        say "soak: PASS (saved to ${RESULTS#"$ROOT"/})"
        exit 0
    fi
    say "soak: FAIL (${#FAILS[@]} checks; saved to ${RESULTS#"$ROOT"/})"
    exit 1
}

main "$@"
