#!/usr/bin/env bash
# scripts/fuzz-run.sh — runs every libFuzzer target for a fixed time (`make fuzz-run`).
#
# Each build/fuzz/fuzz_NAME (one per tests/fuzz/fuzz_NAME.c, built by `make fuzz`) runs
# for FUZZ_TIME seconds (-max_total_time), FUZZ_JOBS targets at a time, with:
#   - build/fuzz/corpus/NAME/ first: libFuzzer writes the inputs it finds there, and only
#     there (it kept growing from run to run; `make clean` empties it);
#   - tests/fuzz/corpus/NAME/ second, when present: the committed seeds, read, never
#     written (checked: the run fails if a file there changed);
#   - tests/fuzz/NAME.dict, when present, as -dict;
#   - -artifact_prefix=build/fuzz/artifacts/fuzz_NAME/: where a crash, leak, timeout or
#     out-of-memory input is written (never the repository's root).
# It prints one line per target (executions, coverage, corpus, peak RSS, time) and fails
# if any target found something: a non-zero exit, or a sanitizer report in its output.
# The whole log of a target is build/fuzz/logs/fuzz_NAME.log. See tests/fuzz/README.md.
#
#   FUZZ_TIME=60       seconds per target
#   FUZZ_JOBS=nproc    targets run at the same time (each uses one core)
#   FUZZ_TARGETS=...   the targets to run, comma-separated (fuzz_request,fuzz_config);
#                      default: every tests/fuzz/fuzz_*.c
#   FUZZ_FLAGS=...     more libFuzzer options for every target (e.g. -max_len=8192)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FB=build/fuzz
TIME=${FUZZ_TIME:-60}
JOBS=${FUZZ_JOBS:-$(nproc)}
FLAGS=${FUZZ_FLAGS:-}

die() {
    echo "fuzz-run: $*" >&2
    exit 2
}
if ! [[ $TIME =~ ^[0-9]+$ ]] || ((TIME < 1)); then die "FUZZ_TIME must be whole seconds, >= 1"; fi
if ! [[ $JOBS =~ ^[0-9]+$ ]] || ((JOBS < 1)); then die "FUZZ_JOBS must be a number >= 1"; fi

if [[ -n ${FUZZ_TARGETS:-} ]]; then
    IFS=, read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
    TARGETS=()
    for src in tests/fuzz/fuzz_*.c; do
        [[ -e $src ]] || continue
        t=${src##*/}
        TARGETS+=("${t%.c}")
    done
fi
((${#TARGETS[@]} > 0)) || die "no fuzz target (tests/fuzz/fuzz_*.c)"
for t in "${TARGETS[@]}"; do
    [[ -x $FB/$t ]] || die "$FB/$t not built (make fuzz)"
done
mkdir -p "$FB/logs" "$FB/artifacts" "$FB/corpus"
rm -f "$FB"/logs/*.pid "$FB"/logs/*.status

# A sanitizer or libFuzzer finding, in a target's output.
FINDING='ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|SUMMARY: |Test unit written to'

# Checksums of the committed seeds of NAME (empty when there are none).
seeds_sum() {
    local dir=tests/fuzz/corpus/$1
    [[ -d $dir ]] || return 0
    find "$dir" -type f -print0 | sort -z | xargs -0 -r md5sum
}

# run_one TARGET: runs it; its exit status and wall time go to logs/TARGET.status.
run_one() {
    local t=$1 name=${1#fuzz_} start rc=0 args
    local log=$FB/logs/$1.log artifacts=$FB/artifacts/$1/
    mkdir -p "$FB/corpus/$name" "$artifacts"
    args=(-max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts")
    [[ -f tests/fuzz/$name.dict ]] && args+=(-dict="tests/fuzz/$name.dict")
    # shellcheck disable=SC2206 # FUZZ_FLAGS holds several options
    args+=($FLAGS "$FB/corpus/$name")
    [[ -d tests/fuzz/corpus/$name ]] && args+=("tests/fuzz/corpus/$name")
    start=$SECONDS
    # The deadline: libFuzzer checks max_total_time between inputs, and an input that
    # hangs is cut at -timeout; the outer timeout only guards against libFuzzer itself.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        timeout --kill-after=10 $((TIME + 120)) "$FB/$t" "${args[@]}" >"$log" 2>&1 &
    echo $! >"$FB/logs/$t.pid"
    wait $! || rc=$?
    rm -f "$FB/logs/$t.pid"
    echo "$rc $((SECONDS - start))" >"$FB/logs/$t.status"
}

# On Ctrl-C or an error: stop the fuzzers still running, by the PID of their `timeout`
# (which passes the signal on to the fuzzer).
# shellcheck disable=SC2317 # called by the trap
stop_all() {
    local f
    for f in "$FB"/logs/*.pid; do
        if [[ -e $f ]]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
    done
    wait || true
}
trap 'stop_all; exit 130' INT TERM

# summary TARGET: one line from its log, and the finding if there is one. Returns 1 on
# a finding.
summary() {
    local t=$1 rc secs log stats
    log=$FB/logs/$t.log
    read -r rc secs <"$FB/logs/$t.status"
    # "#N DONE cov: C ft: F corp: U/SIZE ..." (or the last status line before a crash),
    # "INITED cov: ..." for the coverage of the seeds alone, and the final stats.
    stats=$(awk '
        /^#[0-9]+[ \t]+INITED/ { for (i = 1; i <= NF; i++) if ($i == "cov:") init = $(i + 1) }
        /^#[0-9]+[ \t]+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
                if ($i == "corp:") { corp = $(i + 1); sub(/\/.*/, "", corp) }
            }
        }
        /^stat::number_of_executed_units:/ { execs = $2 }
        /^stat::average_exec_per_sec:/ { rate = $2 }
        /^stat::new_units_added:/ { added = $2 }
        /^stat::peak_rss_mb:/ { rss = $2 }
        END {
            printf "%s execs (%s/s), cov %s (seeds %s), ft %s, corpus %s (+%s), rss %s MB",
                execs == "" ? "?" : execs, rate == "" ? "?" : rate, cov == "" ? "?" : cov,
                init == "" ? "?" : init, ft == "" ? "?" : ft, corp == "" ? "?" : corp,
                added == "" ? "?" : added, rss == "" ? "?" : rss
        }' "$log")
    if ((rc == 0)) && ! grep -qE "$FINDING" "$log"; then
        printf 'fuzz: %-16s ok    %s, %ss\n' "$t" "$stats" "$secs"
        return 0
    fi
    printf 'fuzz: %-16s FAIL  exit %s after %ss; %s\n' "$t" "$rc" "$secs" "$stats"
    # The report: from the first sanitizer or libFuzzer error on, without ASan's legend of
    # shadow bytes, at most 60 lines; then the input (in base64 when libFuzzer printed it).
    awk '/==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer|^==[0-9]+== ERROR/ { on = 1 }
        /^Shadow bytes around/ { skip = 1 } /^==[0-9]+==ABORTING/ { skip = 0 }
        on && !skip && !/^(MS:|stat::|Base64:|0x[0-9a-f]+,)/' "$log" | head -n 60 | sed 's/^/    /'
    local unit
    unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [[ -n $unit ]]; then
        grep -m1 '^Base64: ' "$log" | sed 's/^/    /' || true
        echo "    input: $unit"
        echo "    reproduce: $FB/$t $unit"
    else
        echo "    no input was written; the whole log: $log"
    fi
    return 1
}

declare -A SEEDS
for t in "${TARGETS[@]}"; do SEEDS[$t]=$(seeds_sum "${t#fuzz_}"); done

echo "fuzz-run: ${#TARGETS[@]} targets x ${TIME}s, $JOBS at a time (logs in $FB/logs/)"
running=0
for t in "${TARGETS[@]}"; do
    if ((running >= JOBS)); then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

status=0
for t in "${TARGETS[@]}"; do
    summary "$t" || status=1
    if [[ $(seeds_sum "${t#fuzz_}") != "${SEEDS[$t]}" ]]; then
        echo "fuzz: $t changed its committed seeds in tests/fuzz/corpus/${t#fuzz_}/" >&2
        status=1
    fi
done
exit "$status"
