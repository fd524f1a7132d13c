/*
 * Retry policy: when a failed attempt may be tried again, how long to wait,
 * and the budget that keeps retries from multiplying load during an outage.
 * Pure: no clock, no I/O; randomness comes in as an argument.
 *
 * The order of the questions is the order a user reads them in a log: is
 * the outcome retryable at all (retry_on); are attempts left; may the
 * request have reached the backend, and if so is it idempotent; can its
 * body be replayed; does the wait fit before the deadline; is there budget.
 */
#ifndef LV_UPSTREAM_RETRY_H
#define LV_UPSTREAM_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/fail.h"
#include "upstream/hedge.h"

#define LV_RETRY_MAX_STATUSES 16
#define LV_RETRY_MAX_ATTEMPTS 10

struct lv_retry_cfg {
    uint32_t max_attempts;                    /* attempts in all, the first included */
    uint32_t classes;                         /* enum lv_fail_class bits that are retryable */
    uint16_t statuses[LV_RETRY_MAX_STATUSES]; /* response codes that are retryable */
    uint32_t nstatuses;
    uint64_t base_delay;            /* ms */
    uint64_t max_delay;             /* ms */
    uint32_t budget_percent;        /* retries in flight, as % of requests in flight */
    uint32_t min_retry_concurrency; /* retries always allowed in flight */
    bool non_idempotent;            /* retry POST & co. even after sending them */
    bool idempotency_key;           /* a request with Idempotency-Key counts as idempotent */
    uint64_t max_replay_body;       /* bytes kept to replay a request body */
    struct lv_hedge_cfg hedge;      /* hedge_after (fixed, auto, or 0: no hedging) and
                                       auto's bounds (upstream/hedge.h) */
};

/* Why a retry did not happen (or LV_SKIP_NONE: retry). */
enum lv_retry_skip {
    LV_SKIP_NONE = 0,
    LV_SKIP_NOT_RETRYABLE, /* the outcome is not in retry_on: not counted as a skip */
    LV_SKIP_ATTEMPTS,      /* max_attempts reached */
    LV_SKIP_NOT_IDEMPOTENT,
    LV_SKIP_BODY_TOO_LARGE,
    LV_SKIP_DEADLINE,
    LV_SKIP_BUDGET,
    LV_SKIP_COUNT
};

/* Token for logs and metrics: "budget", "not_idempotent", ... */
const char *lv_retry_skip_name(enum lv_retry_skip s);

/* Retries and requests in flight, per worker. */
struct lv_retry_budget {
    uint32_t active;   /* requests in flight */
    uint32_t retrying; /* of which are on a retry or a hedge */
};

struct lv_retry_input {
    enum lv_fail_kind kind; /* the failed attempt's outcome */
    unsigned status;        /* response status, with LV_FAIL_BAD_STATUS */
    bool sent;              /* the request may have reached the backend */
    bool idempotent;        /* by method, or Idempotency-Key when configured */
    bool replayable;        /* the body is still held in full */
    unsigned attempts;      /* attempts made so far */
    uint64_t now, deadline; /* ms */
    uint64_t delay;         /* the wait before the next attempt, ms */
    bool already_retrying;  /* this request holds a budget slot already */
};

/* Full-jitter exponential backoff before retry number `retry` (1 = the
 * first retry): uniform in [0, min(max_delay, base_delay * 2^(retry-1))),
 * u uniform in [0, 1). */
uint64_t lv_retry_backoff(const struct lv_retry_cfg *cfg, unsigned retry, double u);

/* Is `status` listed in retry_on? */
bool lv_retry_status(const struct lv_retry_cfg *cfg, unsigned status);

/* May one more retry be in flight? */
bool lv_retry_budget_allows(const struct lv_retry_cfg *cfg, const struct lv_retry_budget *b);

/* The decision for one failed attempt. */
enum lv_retry_skip lv_retry_decide(const struct lv_retry_cfg *cfg, const struct lv_retry_input *in,
                                   const struct lv_retry_budget *budget);

#endif
