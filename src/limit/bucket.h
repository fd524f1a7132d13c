/*
 * Rate-limit algorithms, pure functions of their state and `now` (µs):
 *
 * Token bucket, as GCRA (the generic cell rate algorithm, which is a token
 * bucket written as one number): the state is the theoretical arrival time
 * `tat` of the next request. A request at `now` is allowed if
 * tat - now <= (burst - 1) * T, where T = 1/rate; it then moves tat to
 * max(tat, now) + T. One word of state means one compare-and-swap: the
 * global bucket needs no lock.
 *
 * Sliding window (the two-window interpolated counter): counts in the
 * current fixed window plus the previous one's count weighted by how much
 * of it still overlaps the sliding window. Stricter than a bucket at
 * window edges; needs a lock around its three numbers.
 */
#ifndef LV_LIMIT_BUCKET_H
#define LV_LIMIT_BUCKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct lv_limit_cfg {
    double rate;     /* requests per second */
    uint32_t burst;  /* bucket capacity, or the window's limit per `window` */
    uint64_t window; /* µs, sliding window only */
};

/* What a decision tells the client (RateLimit headers, Retry-After). */
struct lv_limit_result {
    bool allowed;
    uint32_t limit;     /* q: the quota (burst, or the window's limit) */
    uint32_t remaining; /* r: requests left now */
    uint64_t reset_us;  /* t: until the quota is whole again */
    uint64_t retry_us;  /* when denied: until a request would be allowed */
};

/* Token bucket (GCRA) on an atomic tat; thread-safe. */
void lv_bucket_take(atomic_uint_fast64_t *tat, const struct lv_limit_cfg *cfg, uint64_t now,
                    struct lv_limit_result *res);

struct lv_window {
    uint64_t start; /* µs: start of the current fixed window */
    uint32_t cur, prev;
};

/* Sliding window; the caller holds whatever lock protects w. The limit is
 * cfg->burst requests per cfg->window. */
void lv_window_take(struct lv_window *w, const struct lv_limit_cfg *cfg, uint64_t now,
                    struct lv_limit_result *res);

#endif
