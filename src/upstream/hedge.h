/*
 * Hedging: when a second copy of a slow request goes to another backend
 * (The Tail at Scale: "defer sending a secondary request until the first
 * request has been outstanding for more than the 95th-percentile expected
 * latency"). Two questions, two pure functions:
 *
 *   lv_hedge_delay   how long after the first try started: a fixed
 *                    `after`, or with `after: auto` the chosen backend's
 *                    recent `quantile` (upstream/latwin.h) kept within
 *                    [min, max] — max itself while fewer than min_samples
 *                    answers are known.
 *   lv_hedge_decide  the timer fired: may the copy go now? Its answer is
 *                    the first line that applies:
 *
 *     why                  when
 *     LV_HEDGE_OFF         hedging is off (after = 0)
 *     LV_HEDGE_UNSAFE      the request is not idempotent, its body is not
 *                          all received or not held to replay, or it asks
 *                          for an upgrade
 *     LV_HEDGE_SETTLED     a response head came back, or a copy is out
 *                          already (one hedge per request)
 *     LV_HEDGE_ATTEMPTS    the attempts are used up (a hedge is one)
 *     LV_HEDGE_NOWHERE     no other backend may take it
 *     LV_HEDGE_DEADLINE    less than `min` left before the deadline: the
 *                          copy would have no time to answer
 *     LV_HEDGE_BUDGET      the retry budget is spent (a hedge holds a
 *                          retry slot: retries and hedges together stay
 *                          under budget_percent of the requests in flight)
 *     LV_HEDGE_GO          send it
 *
 * Samples: the latency of the answers (attempt start to response head).
 * A try that timed out or lost the race has no latency to record (only a
 * lower bound): leaving it out keeps the quantile that of the backend's
 * answers, so that a backend hanging on a fifth of its requests, whose p95
 * would otherwise be the hang, still gets its hanging tries hedged early.
 *
 * Pure: no clock, no I/O; every input is an argument (tests/unit/upstream/
 * test_hedge.c).
 */
#ifndef LV_UPSTREAM_HEDGE_H
#define LV_UPSTREAM_HEDGE_H

#include <stdbool.h>
#include <stdint.h>

#define LV_HEDGE_AUTO UINT64_MAX /* after: auto */

struct lv_hedge_cfg {
    uint64_t after;       /* ms: a fixed delay; LV_HEDGE_AUTO; 0: no hedging */
    double quantile;      /* auto: the backend's quantile to hedge at, 0 < q < 1 (0.95) */
    uint64_t min;         /* auto: ms, the least delay (10ms); also the least time a copy
                             needs before the deadline, fixed or auto */
    uint64_t max;         /* auto: ms, the most, and the delay without an estimate (500ms) */
    uint32_t min_samples; /* auto: answers in the window before the quantile is used (20) */
    uint64_t window;      /* auto: ms of latency history (10s) */
};

enum lv_hedge_why {
    LV_HEDGE_GO = 0,
    LV_HEDGE_OFF,
    LV_HEDGE_UNSAFE,
    LV_HEDGE_SETTLED,
    LV_HEDGE_ATTEMPTS,
    LV_HEDGE_NOWHERE,
    LV_HEDGE_DEADLINE,
    LV_HEDGE_BUDGET,
    LV_HEDGE_WHY_COUNT
};

/* The request and its first try, when the hedge timer fires. */
struct lv_hedge_ask {
    bool idempotent;        /* by method, or Idempotency-Key when configured */
    bool body_complete;     /* the whole request body has been received */
    bool replayable;        /* and is still held in full */
    bool upgrade;           /* it asks for an Upgrade (two tunnels would be wrong) */
    bool answered;          /* the first try has its response head */
    bool hedged;            /* a copy is out already */
    unsigned attempts;      /* attempts made so far */
    unsigned max_attempts;  /* retry.max_attempts */
    bool other_backend;     /* a backend other than the first try's is eligible */
    bool budget;            /* lv_retry_budget_allows, or the request holds a retry slot */
    uint64_t now, deadline; /* ms */
};

/* Token for logs and tests: "go", "off", "unsafe", ... Static. */
const char *lv_hedge_why_name(enum lv_hedge_why why);

/* Is hedging on at all? */
static inline bool lv_hedge_on(const struct lv_hedge_cfg *cfg)
{
    return cfg->after != 0;
}

/*
 * The delay (ms) before a hedge of a request sent to a backend whose
 * answers in the window have the quantile `est_us` (µs, over `samples`
 * answers; lv_latwin_estimate at cfg->quantile and cfg->window). Fixed:
 * cfg->after. Auto: est rounded up to whole ms, within [min, max]; max when
 * samples < min_samples. 0 when hedging is off. A min above max counts as
 * max.
 */
uint64_t lv_hedge_delay(const struct lv_hedge_cfg *cfg, uint64_t est_us, uint64_t samples);

/* May the copy go now? (table above) */
enum lv_hedge_why lv_hedge_decide(const struct lv_hedge_cfg *cfg, const struct lv_hedge_ask *a);

#endif
