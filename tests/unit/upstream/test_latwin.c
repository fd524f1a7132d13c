/*
 * The sliding-window latency histogram (upstream/latwin.c): buckets,
 * quantiles, the window sliding slice by slice under a fake clock, workers
 * summed, and the cached estimate.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "unit/lv_test.h"
#include "upstream/latwin.h"

#define SPAN 10000 /* slices of 2500 ms */

static void setup(struct lv_latwin *l, unsigned nworkers)
{
    cr_assert_eq(lv_latwin_init(l, nworkers), 0);
}

static void teardown(struct lv_latwin *l)
{
    lv_latwin_dispose(l);
    cr_expect_null(l->w);
    LV_EXPECT_NO_LEAKS();
}

static void add_n(struct lv_latwin *l, unsigned w, uint64_t now, uint64_t us, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        lv_latwin_add(l, w, SPAN, now, us);
}

static struct lv_latwin_est q(struct lv_latwin *l, uint64_t now, double quantile)
{
    return lv_latwin_quantile(l, SPAN, now, quantile);
}

/* --- buckets ------------------------------------------------------------------------ */

Test(latwin, buckets_cover_every_value_in_order_without_gaps)
{
    uint64_t lo, hi, prev_hi = 0;
    for (unsigned b = 0; b < LV_LATWIN_BUCKETS; b++) {
        lv_latwin_bounds(b, &lo, &hi);
        cr_assert_eq(lo, prev_hi, "bucket %u starts at %llu, the last ended at %llu", b,
                     (unsigned long long)lo, (unsigned long long)prev_hi);
        cr_assert_gt(hi, lo);
        cr_assert_eq(lv_latwin_bucket(lo), b, "lo of %u", b);
        cr_assert_eq(lv_latwin_bucket(hi - 1), b, "hi - 1 of %u", b);
        prev_hi = hi;
    }
    cr_expect_eq(lv_latwin_bucket(0), 0);
    cr_expect_eq(lv_latwin_bucket(15), 0);
    cr_expect_eq(lv_latwin_bucket(16), 1);
    cr_expect_eq(lv_latwin_bucket(UINT64_MAX), LV_LATWIN_BUCKETS - 1, "anything longer");
    cr_expect_eq(lv_latwin_bucket(1ull << 28), LV_LATWIN_BUCKETS - 1);
    cr_expect_eq(lv_latwin_bucket((1ull << 28) - 1), LV_LATWIN_BUCKETS - 2);
}

Test(latwin, buckets_are_at_most_a_quarter_wide)
{
    for (unsigned b = 1; b < LV_LATWIN_BUCKETS - 1; b++) {
        uint64_t lo, hi;
        lv_latwin_bounds(b, &lo, &hi);
        cr_assert_leq((hi - lo) * 4, lo, "bucket %u: [%llu, %llu)", b, (unsigned long long)lo,
                      (unsigned long long)hi);
    }
}

/* --- quantiles ------------------------------------------------------------------------ */

Test(latwin, empty_has_no_estimate)
{
    struct lv_latwin l;
    setup(&l, 2);
    struct lv_latwin_est e = q(&l, 0, 0.95);
    cr_expect_eq(e.n, 0);
    cr_expect_eq(e.us, 0);
    e = q(&l, 123456789, 0.5);
    cr_expect_eq(e.n, 0);
    teardown(&l);
}

Test(latwin, a_quantile_falls_in_the_bucket_of_the_true_one)
{
    struct lv_latwin l;
    setup(&l, 1);
    /* 1..1000 ms, one sample each */
    for (uint64_t ms = 1; ms <= 1000; ms++)
        lv_latwin_add(&l, 0, SPAN, 0, ms * 1000);
    static const double qs[] = {0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0};
    for (unsigned i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        struct lv_latwin_est e = q(&l, 0, qs[i]);
        cr_assert_eq(e.n, 1000);
        uint64_t truth = (uint64_t)(qs[i] * 1000 + 0.5) * 1000;
        uint64_t lo, hi;
        lv_latwin_bounds(lv_latwin_bucket(truth), &lo, &hi);
        cr_expect(e.us >= lo && e.us < hi, "q %.2f: %llu not in [%llu, %llu)", qs[i],
                  (unsigned long long)e.us, (unsigned long long)lo, (unsigned long long)hi);
    }
    teardown(&l);
}

Test(latwin, the_p95_of_a_fast_backend_with_a_slow_tail)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 100, 1000, 94);  /* 1 ms */
    add_n(&l, 0, 100, 300000, 6); /* 300 ms: 6% */
    struct lv_latwin_est e = q(&l, 100, 0.95);
    cr_expect_geq(e.us, 262144, "the 95th of 100 is in the tail: %llu", (unsigned long long)e.us);
    cr_expect_lt(e.us, 327680);
    add_n(&l, 0, 100, 1000, 100); /* the tail is now 3% */
    e = q(&l, 100, 0.95);
    cr_expect_geq(e.us, 896, "%llu", (unsigned long long)e.us);
    cr_expect_lt(e.us, 1024);
    teardown(&l);
}

Test(latwin, quantile_bounds_are_clamped)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, 20, 1);
    add_n(&l, 0, 0, 5000, 1);
    cr_expect_lt(q(&l, 0, 0).us, 24, "q 0 is the smallest");
    cr_expect_lt(q(&l, 0, -3).us, 24);
    cr_expect_geq(q(&l, 0, 7).us, 4096, "q above 1 is the largest");
    cr_expect_lt(q(&l, 0, 7).us, 5120);
    teardown(&l);
}

Test(latwin, a_single_sample_is_within_its_bucket)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, 1000, 1);
    struct lv_latwin_est e = q(&l, 0, 0.5);
    cr_expect_eq(e.n, 1);
    cr_expect(e.us >= 896 && e.us < 1024, "%llu", (unsigned long long)e.us);
    teardown(&l);
}

Test(latwin, a_huge_sample_lands_in_the_last_bucket)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, UINT64_MAX, 1);
    struct lv_latwin_est e = q(&l, 0, 0.5);
    cr_expect_eq(e.n, 1);
    cr_expect_geq(e.us, 1ull << 28);
    teardown(&l);
}

/* --- the window ------------------------------------------------------------------------ */

Test(latwin, the_window_drops_whole_slices)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, 1000, 10);    /* slice [0, 2500) */
    add_n(&l, 0, 2500, 2000, 20); /* slice [2500, 5000) */
    cr_expect_eq(q(&l, 2500, 0.5).n, 30);
    cr_expect_eq(q(&l, 9999, 0.5).n, 30, "[0, 2500) is still in: 4 slices");
    cr_expect_eq(q(&l, 10000, 0.5).n, 20, "a new slice: the first is out");
    cr_expect_eq(q(&l, 12499, 0.5).n, 20);
    cr_expect_eq(q(&l, 12500, 0.5).n, 0);
    teardown(&l);
}

Test(latwin, a_recycled_slice_starts_empty)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, 300000, 50);
    /* 10 s later the same ring slot is reused for a new period */
    add_n(&l, 0, 10000, 1000, 5);
    struct lv_latwin_est e = q(&l, 10000, 0.99);
    cr_expect_eq(e.n, 5, "the old slow samples are gone");
    cr_expect_lt(e.us, 1024);
    teardown(&l);
}

Test(latwin, a_read_from_the_past_ignores_newer_slices)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 5000, 1000, 3);
    cr_expect_eq(q(&l, 4999, 0.5).n, 0, "a clock read a hair behind another worker's");
    cr_expect_eq(q(&l, 5000, 0.5).n, 3);
    teardown(&l);
}

Test(latwin, a_tiny_span_still_has_slices_of_one_ms)
{
    struct lv_latwin l;
    setup(&l, 1);
    lv_latwin_add(&l, 0, 1, 7, 100);
    cr_expect_eq(lv_latwin_quantile(&l, 1, 7, 0.5).n, 1);
    cr_expect_eq(lv_latwin_quantile(&l, 1, 10, 0.5).n, 1, "4 slices of 1 ms");
    cr_expect_eq(lv_latwin_quantile(&l, 1, 11, 0.5).n, 0);
    teardown(&l);
}

Test(latwin, every_worker_counts)
{
    struct lv_latwin l;
    setup(&l, 3);
    add_n(&l, 0, 0, 1000, 10);
    add_n(&l, 1, 0, 1000, 10);
    add_n(&l, 2, 0, 400000, 80);
    struct lv_latwin_est e = q(&l, 0, 0.5);
    cr_expect_eq(e.n, 100);
    cr_expect_geq(e.us, 393216, "80%% of all samples are slow: %llu", (unsigned long long)e.us);
    add_n(&l, 7, 0, 1000, 1); /* out of range: worker 0 */
    cr_expect_eq(q(&l, 0, 0.5).n, 101);
    teardown(&l);
}

Test(latwin, zero_workers_get_one)
{
    struct lv_latwin l;
    setup(&l, 0);
    cr_expect_eq(l.nworkers, 1);
    add_n(&l, 3, 0, 1000, 2);
    cr_expect_eq(q(&l, 0, 0.5).n, 2);
    teardown(&l);
}

/* --- the cached estimate ----------------------------------------------------------------- */

Test(latwin, the_estimate_is_cached_for_the_refresh_period)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 1000, 1000, 10);
    struct lv_latwin_est e = lv_latwin_estimate(&l, SPAN, 1000, 0.95);
    cr_expect_eq(e.n, 10);
    add_n(&l, 0, 1000, 1000, 10);
    e = lv_latwin_estimate(&l, SPAN, 1000 + LV_LATWIN_REFRESH_MS - 1, 0.95);
    cr_expect_eq(e.n, 10, "from the cache");
    e = lv_latwin_estimate(&l, SPAN, 1000 + LV_LATWIN_REFRESH_MS, 0.95);
    cr_expect_eq(e.n, 20, "recomputed");
    teardown(&l);
}

Test(latwin, the_cache_is_per_quantile_and_span)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 0, 1000, 50);
    add_n(&l, 0, 0, 100000, 50);
    struct lv_latwin_est p95 = lv_latwin_estimate(&l, SPAN, 0, 0.95);
    struct lv_latwin_est p10 = lv_latwin_estimate(&l, SPAN, 1, 0.10);
    cr_expect_geq(p95.us, 98304);
    cr_expect_lt(p10.us, 1024, "not the p95 from the cache");
    add_n(&l, 0, 2, 1000, 1);
    cr_expect_eq(lv_latwin_estimate(&l, 20000, 2, 0.10).n, 101, "another span");
    teardown(&l);
}

Test(latwin, a_clock_going_back_recomputes)
{
    struct lv_latwin l;
    setup(&l, 1);
    add_n(&l, 0, 5000, 1000, 4);
    cr_expect_eq(lv_latwin_estimate(&l, SPAN, 5000, 0.5).n, 4);
    cr_expect_eq(lv_latwin_estimate(&l, SPAN, 4000, 0.5).n, 0, "not the cache of a later time");
    teardown(&l);
}

/* --- threads ---------------------------------------------------------------------------- */

struct writer {
    struct lv_latwin *l;
    unsigned w;
};

static void *write_many(void *arg)
{
    struct writer *wr = arg;
    for (unsigned i = 0; i < 100000; i++) {
        lv_latwin_add(wr->l, wr->w, SPAN, 0, 1000 + (i % 7) * 10);
        if (i % 1000 == 0) lv_latwin_estimate(wr->l, SPAN, i / 1000, 0.95);
    }
    return NULL;
}

Test(latwin, one_writer_per_worker_loses_nothing)
{
    struct lv_latwin l;
    setup(&l, 4);
    pthread_t t[4];
    struct writer wr[4];
    for (unsigned i = 0; i < 4; i++) {
        wr[i] = (struct writer){&l, i};
        cr_assert_eq(pthread_create(&t[i], NULL, write_many, &wr[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct lv_latwin_est e = q(&l, 0, 0.5);
    cr_expect_eq(e.n, 400000);
    cr_expect(e.us >= 896 && e.us < 1152, "%llu", (unsigned long long)e.us);
    teardown(&l);
}
