/*
 * What an attempt's outcome counts for (upstream/outcome.c): the stale
 * keep-alive rule's whole truth table, and the hedge race's decision table.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/fail.h"
#include "upstream/outcome.h"

static const char *stale_name(enum lv_stale s)
{
    switch (s) {
    case LV_STALE_BLAMED: return "blamed";
    case LV_STALE_FORGIVEN: return "forgiven";
    case LV_STALE_RETRY_NOW: return "retry_now";
    }
    return "?";
}

Test(outcome, stale_rule_truth_table)
{
    static const uint64_t idles[] = {0, LV_OUTCOME_STALE_IDLE_MS - 1, LV_OUTCOME_STALE_IDLE_MS,
                                     60000};
    unsigned cases = 0, retries = 0, forgiven = 0;
    for (int k = LV_FAIL_NONE; k < LV_FAIL_KIND_COUNT; k++)
        for (unsigned bits = 0; bits < 64; bits++)
            for (unsigned i = 0; i < 4; i++) {
                struct lv_stale_in in = {
                    .kind = (enum lv_fail_kind)k,
                    .reused = bits & 1,
                    .got_bytes = bits & 2,
                    .resp_started = bits & 4,
                    .idempotent = bits & 8,
                    .replayable = bits & 16,
                    .stale_retried = bits & 32,
                    .idle_ms = idles[i],
                };
                bool race = in.reused && in.idle_ms >= 1000 && k == LV_FAIL_RESET &&
                            !in.got_bytes && !in.resp_started;
                enum lv_stale want = !race ? LV_STALE_BLAMED
                                     : in.idempotent && in.replayable && !in.stale_retried
                                         ? LV_STALE_RETRY_NOW
                                         : LV_STALE_FORGIVEN;
                enum lv_stale got = lv_outcome_stale(&in);
                cr_expect_eq(got, want,
                             "%s reused=%d idle=%llu got_bytes=%d resp_started=%d "
                             "idempotent=%d replayable=%d stale_retried=%d: %s, expected %s",
                             lv_fail_info(in.kind)->reason, in.reused,
                             (unsigned long long)in.idle_ms, in.got_bytes, in.resp_started,
                             in.idempotent, in.replayable, in.stale_retried, stale_name(got),
                             stale_name(want));
                cases++;
                retries += got == LV_STALE_RETRY_NOW;
                forgiven += got == LV_STALE_FORGIVEN;
            }
    cr_expect_eq(cases, LV_FAIL_KIND_COUNT * 64 * 4);
    /* the race: reset, reused, idle >= 1 s (2 idles), no byte, not started:
     * 8 combinations of the request's three bits, 1 of which retries */
    cr_expect_eq(retries, 2);
    cr_expect_eq(forgiven, 2 * 7);
}

Test(outcome, the_keep_alive_race_in_words)
{
    struct lv_stale_in in = {
        .kind = LV_FAIL_RESET,
        .reused = true,
        .idle_ms = 1500,
        .idempotent = true,
        .replayable = true,
    };
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_RETRY_NOW);
    in.stale_retried = true;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_FORGIVEN, "once per request");
    in.stale_retried = false;
    in.idempotent = false;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_FORGIVEN,
                 "a POST is not sent twice, but the reset is still not the backend's fault");
    in.idempotent = true;
    in.idle_ms = 20;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_BLAMED, "reused at once: the backend failed");
    in.idle_ms = 1500;
    in.reused = false;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_BLAMED, "a new connection reset: the backend");
    in.reused = true;
    in.got_bytes = true;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_BLAMED, "it had started to answer");
    in.got_bytes = false;
    in.kind = LV_FAIL_RESPONSE_TIMEOUT;
    cr_expect_eq(lv_outcome_stale(&in), LV_STALE_BLAMED, "only a reset is the race");
}

static const char *action_name(enum lv_head_action a)
{
    switch (a) {
    case LV_HEAD_ANSWER: return "answer";
    case LV_HEAD_WAIT_OTHER: return "wait_other";
    case LV_HEAD_ASK_RETRY: return "ask_retry";
    }
    return "?";
}

Test(outcome, hedge_race_decision_table)
{
    static const unsigned statuses[] = {101, 200, 304, 404, 499, 500, 502, 503, 504, 599};
    for (unsigned si = 0; si < sizeof(statuses) / sizeof(statuses[0]); si++)
        for (unsigned bits = 0; bits < 8; bits++) {
            struct lv_head_in in = {
                .status = statuses[si],
                .retryable = bits & 1,
                .on_hedge = bits & 2,
                .other_in_flight = bits & 4,
            };
            struct lv_head_out o = lv_outcome_head(&in);
            const char *what = in.retryable ? "retryable" : "final";
            cr_expect_eq(o.success, in.status < 500, "status %u: success is status < 500",
                         in.status);
            if (in.retryable) {
                cr_expect_eq(o.action, in.other_in_flight ? LV_HEAD_WAIT_OTHER : LV_HEAD_ASK_RETRY,
                             "%u %s hedge=%d other=%d: %s", in.status, what, in.on_hedge,
                             in.other_in_flight, action_name(o.action));
                cr_expect_eq(o.loser, LV_LOSER_NONE, "a retryable answer decides no race");
                cr_expect_not(o.hedge_won);
                continue;
            }
            cr_expect_eq(o.action, LV_HEAD_ANSWER);
            if (!in.other_in_flight) {
                cr_expect_eq(o.loser, LV_LOSER_NONE);
                cr_expect_not(o.hedge_won, "no race without another copy");
                cr_expect_eq(o.loser_kind, LV_FAIL_NONE);
            } else if (in.on_hedge) {
                cr_expect(o.hedge_won);
                cr_expect_eq(o.loser, LV_LOSER_FAILED, "the first copy was too slow");
                cr_expect_eq(o.loser_kind, LV_FAIL_RESPONSE_TIMEOUT);
                cr_expect(lv_fail_is_backend(o.loser_kind), "its breaker must hear it");
            } else {
                cr_expect_not(o.hedge_won);
                cr_expect_eq(o.loser, LV_LOSER_CANCELLED, "a slower hedge is not a failure");
                cr_expect_eq(o.loser_kind, LV_FAIL_NONE);
            }
        }
}

Test(outcome, a_hedge_answering_500_wins_and_is_a_failure_itself)
{
    /* 500 not in retry_on: it is the answer; the hedge's breaker hears a
     * failure, and the first copy still lost the race. */
    struct lv_head_in in = {.status = 500, .on_hedge = true, .other_in_flight = true};
    struct lv_head_out o = lv_outcome_head(&in);
    cr_expect_eq(o.action, LV_HEAD_ANSWER);
    cr_expect_not(o.success);
    cr_expect(o.hedge_won);
    cr_expect_eq(o.loser, LV_LOSER_FAILED);
}

/* What a failure weighs in peak_ewma's estimate: a timeout its wait, the
 * other backend failures the per-try timeout (capped at 1 s, at least the
 * wait), anything else nothing. */
Test(outcome_penalty, failures_weigh_at_once)
{
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_RESPONSE_TIMEOUT, 1000123, 1000), 1000123);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_CONNECT_TIMEOUT, 250000, 1000), 250000);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_RESET, 300, 1000), 1000000);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_BAD_STATUS, 300, 200), 200000);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_CONNECT_FAILED, 50, 15000),
                 LV_OUTCOME_PENALTY_MAX_US, "capped");
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_BAD_RESPONSE, 3000000, 1000), 3000000,
                 "at least the wait");
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_TLS, 10, 1000), 1000000);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_CLIENT_CLOSED, 10, 1000), 0);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_NO_BACKEND, 10, 1000), 0);
    cr_expect_eq(lv_outcome_penalty_us(LV_FAIL_NONE, 10, 1000), 0);
}
