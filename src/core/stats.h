/*
 * Counters and latency histograms that one thread writes and another reads.
 * An increment is a plain load and store (no locked instruction: there is a
 * single writer), the reader uses relaxed atomic loads; summing the
 * per-worker copies is the reader's job. Nothing on the request path locks
 * or contends.
 *
 * The latency histogram has fixed, roughly logarithmic buckets from 100 µs
 * to 60 s; Prometheus' coarser buckets are a subset of its bounds, so both
 * the /metrics histogram and recent p50/p99 come from the same counts.
 */
#ifndef LV_CORE_STATS_H
#define LV_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define LV_STAT_ADD(counter, n)                                                                    \
    atomic_store_explicit(&(counter),                                                              \
                          atomic_load_explicit(&(counter), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)
#define LV_STAT_INC(counter) LV_STAT_ADD(counter, 1)

static inline uint64_t lv_stat_read(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)c, memory_order_relaxed);
}

#define LV_STATUS_CODES 600 /* counters indexed by HTTP status */
#define LV_LAT_BUCKETS 36   /* the last one is +Inf */

/* Upper bounds of the buckets, in microseconds (LV_LAT_BUCKETS - 1 of them). */
extern const uint32_t lv_lat_bounds_us[LV_LAT_BUCKETS - 1];

struct lv_lathist {
    atomic_uint_fast64_t b[LV_LAT_BUCKETS];
    atomic_uint_fast64_t sum_us;
};

/* The bucket a duration falls in. */
unsigned lv_lat_bucket(uint64_t us);

/* Records one duration (single writer). */
static inline void lv_lathist_add(struct lv_lathist *h, uint64_t us)
{
    LV_STAT_INC(h->b[lv_lat_bucket(us)]);
    LV_STAT_ADD(h->sum_us, us);
}

/* The q-quantile (0..1) of a set of bucket counts, in milliseconds,
 * interpolated inside its bucket; 0 when there are no counts. */
double lv_lat_quantile(const uint64_t counts[LV_LAT_BUCKETS], double q);

#endif
