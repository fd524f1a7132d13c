/*
 * Per-worker counters. Each is written by its worker only, so an increment
 * is a plain load and store (no locked instruction); the metrics scrape
 * reads them from another thread with relaxed atomic loads and sums the
 * workers. Nothing on the request path takes a lock or contends.
 */
#ifndef LV_PROXY_STATS_H
#define LV_PROXY_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/fail.h"
#include "upstream/retry.h"

struct lv_stats {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t generated[LV_FAIL_KIND_COUNT]; /* levee's own answers, by reason */
    atomic_uint_fast64_t retries;                       /* retry attempts started */
    atomic_uint_fast64_t retry_skips[LV_SKIP_COUNT];    /* retries not made, by reason */
    atomic_uint_fast64_t hedges;                        /* hedged copies sent */
    atomic_uint_fast64_t hedge_wins;                    /* ... that answered first */
};

#define LV_STAT_ADD(counter, n)                                                                    \
    atomic_store_explicit(&(counter),                                                              \
                          atomic_load_explicit(&(counter), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)
#define LV_STAT_INC(counter) LV_STAT_ADD(counter, 1)

static inline uint64_t lv_stat_read(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)c, memory_order_relaxed);
}

#endif
