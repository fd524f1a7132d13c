/*
 * What an attempt's outcome counts for — whether its backend is to blame
 * (its circuit breaker hears a failure, its latency estimate a sample) and
 * what the request does next — in the two cases where that is not simply
 * "the backend answered" or "the backend failed":
 *
 * The stale keep-alive race. A pooled connection that sat idle for a while
 * and is reset before any byte of a response came back is most likely one
 * the backend closed just as levee reused it: every keep-alive proxy meets
 * this race, and it is not the backend's fault. A connection reused right
 * away that fails is the backend failing, and counts.
 *
 *   reused  idle >= 1 s  reset  no byte back  response not started │ verdict
 *   ────────────────────────────────────────────────────────────────┼────────────
 *   any of these false                                             │ BLAMED
 *   all true, and idempotent, body replayable, no stale retry yet  │ RETRY_NOW
 *   all true, otherwise                                            │ FORGIVEN
 *
 *   BLAMED: the breaker hears the failure; the retry policy decides.
 *   FORGIVEN: not counted; the retry policy decides.
 *   RETRY_NOW: not counted; tried again at once (no backoff), once per
 *   request, on a new connection, and the attempt does not count against
 *   max_attempts.
 *
 * The race between a request and its hedge (the second copy, sent after
 * hedge_after). When a response head arrives:
 *
 *   status in retry_on  other copy in flight │ action      loser
 *   ─────────────────────────────────────────┼──────────────────────────────
 *   yes                 yes                  │ WAIT_OTHER  — (this copy is dropped)
 *   yes                 no                   │ ASK_RETRY   — (not retried: ANSWER)
 *   no                  no                   │ ANSWER      —
 *   no                  yes, head on hedge   │ ANSWER      FAILED: the first copy's
 *                                            │             outlier detector hears
 *                                            │             a timeout (not its
 *                                            │             breaker), its latency
 *                                            │             estimate its wait
 *   no                  yes, head on first   │ ANSWER      CANCELLED: its admission
 *                                            │             given back, nothing counted
 *
 * The first copy lost to one sent hedge_after later: its backend is too
 * slow, and must hear it — a backend that hangs would otherwise stay in
 * rotation, its failures hidden by hedges. It hears it from the outlier
 * detector (upstream/outlier.h: a lost race counts as a timeout), which
 * compares it with its peers, and from peak_ewma (its wait is a sample):
 * not from its breaker, since a hedge at a backend's p95 loses one race in
 * twenty to a healthy backend, and no request failed. A hedge that lost was only
 * slower than a backend that had a head start: nothing against it.
 * Whichever copy answered, its breaker hears a success when the status is
 * below 500, a failure otherwise.
 *
 * Pure: no clock, no I/O; everything comes in as arguments.
 */
#ifndef LV_UPSTREAM_OUTCOME_H
#define LV_UPSTREAM_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>

#include "core/fail.h"

/* Idle time in the pool after which a connection failing at once is taken
 * for the keep-alive race rather than the backend's failure, ms. */
#define LV_OUTCOME_STALE_IDLE_MS 1000

enum lv_stale { LV_STALE_BLAMED, LV_STALE_FORGIVEN, LV_STALE_RETRY_NOW };

struct lv_stale_in {
    enum lv_fail_kind kind; /* how the attempt failed */
    bool reused;            /* its connection came from the pool */
    uint64_t idle_ms;       /* how long that connection sat idle there */
    bool got_bytes;         /* any byte of a response came back on it */
    bool resp_started;      /* the client's response had started */
    bool idempotent;        /* the request may be sent twice */
    bool replayable;        /* its body is still held in full */
    bool stale_retried;     /* it already had its one stale retry */
};

/* The stale keep-alive rule (table above). */
enum lv_stale lv_outcome_stale(const struct lv_stale_in *in);

enum lv_head_action {
    LV_HEAD_ANSWER,     /* this head is the answer */
    LV_HEAD_WAIT_OTHER, /* drop this copy, the other may do better */
    LV_HEAD_ASK_RETRY,  /* ask the retry policy; if it says no, this is the answer */
};

enum lv_loser {
    LV_LOSER_NONE,      /* no other copy in flight */
    LV_LOSER_CANCELLED, /* closed; its breaker admission given back, nothing counted */
    LV_LOSER_FAILED,    /* closed; counted as failed (loser_kind), its wait a latency sample */
};

struct lv_head_in {
    unsigned status;      /* of the head that arrived */
    bool retryable;       /* status is in retry_on */
    bool on_hedge;        /* it arrived on the hedge (the second copy) */
    bool other_in_flight; /* the other copy is still waiting */
};

struct lv_head_out {
    enum lv_head_action action;
    bool success;                 /* what the answering copy's breaker hears */
    bool hedge_won;               /* count it in levee_hedge_wins_total */
    enum lv_loser loser;          /* with ANSWER: what becomes of the other copy */
    enum lv_fail_kind loser_kind; /* with LV_LOSER_FAILED: the failure it counts as */
};

/* The hedge race (table above). */
struct lv_head_out lv_outcome_head(const struct lv_head_in *in);

/*
 * What a try that failed, or answered with a status in retry_on, weighs in
 * its backend's latency estimate (peak_ewma's cost), µs; 0: no sample.
 * Failures weigh at once, as much as a request timing out would have cost:
 *
 *   kind                               sample
 *   response_timeout, connect_timeout  the wait
 *   reset, bad_response, tls,          the per-try timeout, at most 1 s
 *   connect_failed, bad_status         (LV_OUTCOME_PENALTY_MAX_US), at least
 *                                      the wait
 *   anything else                      none
 *
 * A peak EWMA takes a sample above its estimate at once, so one reset, or
 * one 503 of a backend shedding load, sends the next requests to its peers
 * until the estimate has decayed (upstream/ewma.h): the requests that
 * cannot be retried (a POST that reached it) are spared without waiting
 * for the breaker's count.
 */
#define LV_OUTCOME_PENALTY_MAX_US 1000000
uint64_t lv_outcome_penalty_us(enum lv_fail_kind kind, uint64_t waited_us, uint64_t per_try_ms);

#endif
