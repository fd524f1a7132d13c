# shellcheck shell=bash
# bench/lib.sh — the helpers bench/run.sh, bench/tls.sh, bench/ratelimit.sh and
# bench/chaos/run.sh share. Sourced, not run:
#
#     LOG_TAG=bench/tls             # the prefix of die's messages
#     . "$ROOT/bench/lib.sh"
#     init_run levee-bench-tls      # $TMP, and the traps that stop everything at the end
#
# The conventions they keep: everything listens on 127.0.0.1 only, on ports picked at run
# time (pick_port); every process is started with start_bg, which records its PID, and is
# stopped by that PID on exit, also on Ctrl-C or an error (never by name: other levee or
# nginx processes on the machine are not ours); every wait has a deadline.

log() { printf '%s\n' "$*" >&2; }
die() {
    log "${LOG_TAG:-bench}: $*"
    exit 1
}

# need_proxies OPTION KNOWN PROXY...: dies unless every PROXY is one of KNOWN (a
# comma-separated list) and can run here: levee built, nginx and HAProxy installed.
# OPTION is the variable that lists the proxies, for the messages.
need_proxies() {
    local option=$1 known=$2 p
    shift 2
    for p in "$@"; do
        [[ ",$known," == *",$p,"* ]] || die "unknown proxy '$p' in $option (${known//,/, })"
        case $p in
        levee*)
            [[ -x $LEVEE_BIN ]] ||
                die "$LEVEE_BIN not found (make build/levee, or $option=nginx,haproxy)"
            ;;
        *) command -v "$p" >/dev/null || die "$p not installed (scripts/deps.sh --bench)" ;;
        esac
    done
}

# ---------------------------------------------------------------------------- processes

STARTED_PIDS=()

# init_run PREFIX: makes the temporary directory TMP (/tmp/PREFIX.XXXXXX) and sets the
# traps that, on exit, Ctrl-C or an error, stop every process started and remove TMP.
init_run() {
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# Drops a reaped PID from STARTED_PIDS: it may be reused by a process that is not ours.
forget_pid() {
    local i left=()
    for i in "${STARTED_PIDS[@]}"; do
        [[ $i == "$1" ]] || left+=("$i")
    done
    STARTED_PIDS=("${left[@]}")
}

# Stops one process we started: SIGTERM, a grace period (5 s), then SIGKILL. Children are
# looked up first, because an nginx worker outlives a master that is SIGKILLed. Once
# reaped, the PID leaves STARTED_PIDS.
stop_pid() {
    local pid=$1 kids i
    if kill -0 "$pid" 2>/dev/null; then
        kids=$(pgrep -P "$pid" || true)
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            for i in $kids; do
                kill -KILL "$i" 2>/dev/null || true
            done
        fi
    fi
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$TMP"
}

# Starts "$@" in the background with its output in $LOG_FILE; sets STARTED.
start_bg() {
    "$@" >"$LOG_FILE" 2>&1 &
    STARTED=$!
    STARTED_PIDS+=("$STARTED")
}

# Picks a free port below the ephemeral range (so that no outgoing connection takes it
# before the server binds it), never the same twice in one run; sets PORT.
USED_PORTS=" "
pick_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if /usr/bin/python3 -c 'import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$p" 2>/dev/null; then
            USED_PORTS+="$p "
            # shellcheck disable=SC2034 # read by the caller
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}

# wait_port PORT PID NAME LOGFILE: waits (20 s at most) until 127.0.0.1:PORT accepts
# connections, while PID stays alive; otherwise prints the end of LOGFILE and dies.
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

# Raises the soft open-file limit as far as the hard one allows (65536 at most); the
# processes started afterwards inherit it (levee reads RLIMIT_NOFILE). Sets NOFILE.
raise_nofile() {
    NOFILE=$(ulimit -Hn)
    if [[ $NOFILE == unlimited ]] || ((NOFILE > 65536)); then NOFILE=65536; fi
    ulimit -n "$NOFILE"
}

# Fills the @KEY@ fields of a template: render TEMPLATE OUT KEY=VALUE...
render() {
    local template=$1 out=$2 kv expr=()
    shift 2
    for kv in "$@"; do
        expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
    done
    sed "${expr[@]}" "$template" >"$out"
    if grep -q '@[A-Z0-9_]*@' "$out"; then
        die "unfilled field in $out: $(grep -o '@[A-Z0-9_]*@' "$out" | head -1)"
    fi
}

# ---------------------------------------------------------------------------- /proc

# The process and its children (nginx: master and workers), one PID per word.
proc_tree() {
    echo "$1"
    pgrep -P "$1" || true
}

# tree_sum FUNC PID: the sum of what FUNC prints for each process of PID's tree (a
# process that is gone counts 0).
tree_sum() {
    local fn=$1 p total=0 t
    for p in $(proc_tree "$2"); do
        t=$("$fn" "$p" 2>/dev/null) || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# CPU time (user + system, clock ticks) of one process, all its threads included.
proc_cpu_ticks() {
    # Fields after "pid (comm) ": state is 1st, utime 12th, stime 13th.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# CPU time (clock ticks) of a process tree; threads are included.
cpu_ticks() { tree_sum proc_cpu_ticks "$1"; }

CLK_TCK=$(getconf CLK_TCK) # clock ticks per second

# ---------------------------------------------------------------------------- wrk

# Prints "rps requests p50_ms p99_ms errors" from wrk --latency output on stdin (errors:
# socket errors + non-2xx/3xx responses); exits 1 if the output has no result.
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            return v + 0
        }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $2 == "requests" && $3 == "in" { requests = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { errors += $NF }
        /Socket errors:/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
        END {
            if (rps == "" || requests == "") exit 1
            printf "%.0f %d %.3f %.3f %d\n", rps, requests, p50, p99, errors
        }'
}

# run_wrk URL CONNS SECONDS: keep-alive load with WRK_THREADS threads (1 if unset); wrk's
# output on stdout. The deadline: the run, plus 30 s.
run_wrk() {
    local url=$1 conns=$2 seconds=$3
    timeout $((seconds + 30)) wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"${seconds}s" --timeout 5s \
        --latency "$url"
}

# measure NAME PID URL CONNS BACKEND_PID: one warm-up (WARMUP s, none if 0) and one
# measured wrk run (DURATION s); prints "rps requests p50 p99 errors cpu_us_per_req
# backend_cpu_us_per_req": the CPU time of PID's and BACKEND_PID's process trees over the
# measured run, divided by the requests wrk completed.
measure() {
    local name=$1 pid=$2 url=$3 conns=$4 backend_pid=$5 out cpu0 cpu1 bcpu0 bcpu1 parsed
    out=$TMP/wrk-$name-$conns-$RANDOM.txt
    if ((WARMUP > 0)); then
        run_wrk "$url" "$conns" "$WARMUP" >/dev/null 2>&1 || true
    fi
    cpu0=$(cpu_ticks "$pid")
    bcpu0=$(cpu_ticks "$backend_pid")
    run_wrk "$url" "$conns" "$DURATION" >"$out" 2>&1 || true
    cpu1=$(cpu_ticks "$pid")
    bcpu1=$(cpu_ticks "$backend_pid")
    kill -0 "$pid" 2>/dev/null || die "$name died during the run"
    if ! parsed=$(parse_wrk <"$out"); then
        log "${LOG_TAG:-bench}: could not read wrk's output for $name:"
        cat "$out" >&2
        echo "0 0 0 0 1 0 0"
        return
    fi
    echo "$parsed" | awk -v c="$((cpu1 - cpu0))" -v b="$((bcpu1 - bcpu0))" -v hz="$CLK_TCK" '{
        us = $2 > 0 ? c * 1e6 / hz / $2 : 0
        bus = $2 > 0 ? b * 1e6 / hz / $2 : 0
        printf "%s %.1f %.1f\n", $0, us, bus
    }'
}
