/* Latency buckets and quantiles (core/stats.c). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core/stats.h"

#define NB LV_LAT_BUCKETS
#define INF_BUCKET (LV_LAT_BUCKETS - 1)

Test(lat_bucket, bounds_increase)
{
    cr_expect_eq(lv_lat_bounds_us[0], 100);
    cr_expect_eq(lv_lat_bounds_us[NB - 2], 60000000, "the last finite bound is 60 s");
    for (int i = 1; i < NB - 1; i++)
        cr_expect_gt(lv_lat_bounds_us[i], lv_lat_bounds_us[i - 1], "bound %d", i);
}

Test(lat_bucket, every_bound)
{
    for (unsigned i = 0; i < NB - 1; i++) {
        uint64_t b = lv_lat_bounds_us[i];
        cr_expect_eq(lv_lat_bucket(b), i, "%lu µs: bucket %u, expected %u", (unsigned long)b,
                     lv_lat_bucket(b), i);
        cr_expect_eq(lv_lat_bucket(b + 1), i + 1, "%lu µs: bucket %u, expected %u",
                     (unsigned long)(b + 1), lv_lat_bucket(b + 1), i + 1);
        cr_expect_eq(lv_lat_bucket(b - 1), i, "%lu µs", (unsigned long)(b - 1));
    }
}

Test(lat_bucket, zero_and_huge)
{
    cr_expect_eq(lv_lat_bucket(0), 0);
    cr_expect_eq(lv_lat_bucket(1), 0);
    cr_expect_eq(lv_lat_bucket(60000001), INF_BUCKET);
    cr_expect_eq(lv_lat_bucket(3600ull * 1000000), INF_BUCKET);
    cr_expect_eq(lv_lat_bucket(UINT32_MAX), INF_BUCKET);
    cr_expect_eq(lv_lat_bucket((uint64_t)UINT32_MAX + 1), INF_BUCKET);
    cr_expect_eq(lv_lat_bucket(UINT64_MAX), INF_BUCKET);
}

Test(lat_bucket, a_few_values_between_bounds)
{
    cr_expect_eq(lv_lat_bucket(101), 1); /* (100, 150] */
    cr_expect_eq(lv_lat_bucket(149), 1);
    cr_expect_eq(lv_lat_bucket(999), 6);     /* (750, 1000] */
    cr_expect_eq(lv_lat_bucket(1001), 7);    /* (1000, 1500] */
    cr_expect_eq(lv_lat_bucket(250000), 21); /* (200 ms, 300 ms] */
}

Test(lathist, add_records_bucket_and_sum)
{
    struct lv_lathist h;
    memset(&h, 0, sizeof(h));
    lv_lathist_add(&h, 100);
    lv_lathist_add(&h, 101);
    lv_lathist_add(&h, 70000000);
    cr_expect_eq(lv_stat_read(&h.b[0]), 1);
    cr_expect_eq(lv_stat_read(&h.b[1]), 1);
    cr_expect_eq(lv_stat_read(&h.b[INF_BUCKET]), 1);
    cr_expect_eq(lv_stat_read(&h.sum_us), 70000201);
}

Test(lat_quantile, empty)
{
    uint64_t c[NB] = {0};
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 0, 1e-12);
    cr_expect_float_eq(lv_lat_quantile(c, 0.99), 0, 1e-12);
    cr_expect_float_eq(lv_lat_quantile(c, 0), 0, 1e-12);
    cr_expect_float_eq(lv_lat_quantile(c, 1), 0, 1e-12);
}

Test(lat_quantile, single_bucket_interpolates_inside_it)
{
    uint64_t c[NB] = {0};
    c[6] = 10; /* (750, 1000] µs */
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 0.875, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.1), 0.775, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.99), 0.9975, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 1), 1.0, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0), 0.75, 1e-9);
}

Test(lat_quantile, first_bucket_starts_at_zero)
{
    uint64_t c[NB] = {0};
    c[0] = 4; /* [0, 100] µs */
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 0.05, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.25), 0.025, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 1), 0.1, 1e-9);
}

Test(lat_quantile, single_count)
{
    uint64_t c[NB] = {0};
    c[12] = 1; /* (7.5 ms, 10 ms] */
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 8.75, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.99), 9.975, 1e-9);
}

Test(lat_quantile, two_buckets)
{
    uint64_t c[NB] = {0};
    c[0] = 50; /* [0, 100] µs */
    c[6] = 50; /* (750, 1000] µs */
    cr_expect_float_eq(lv_lat_quantile(c, 0.25), 0.05, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 0.1, 1e-9, "the top of the lower bucket");
    cr_expect_float_eq(lv_lat_quantile(c, 0.75), 0.875, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 0.99), 0.995, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 1), 1.0, 1e-9);
}

Test(lat_quantile, a_known_distribution)
{
    /* 1000 requests: 900 between 300 and 500 µs, 90 between 1.5 and 2 ms,
     * 10 between 750 ms and 1 s. */
    uint64_t c[NB] = {0};
    c[4] = 900; /* (300, 500] */
    c[8] = 90;  /* (1500, 2000] */
    c[24] = 10; /* (750000, 1000000] */
    /* p50: rank 500 of 900 in (300, 500]: 300 + 200 × 5/9 µs. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), (300 + 200 * 500.0 / 900) / 1000, 1e-9);
    /* p90: the top of the first bucket. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.9), 0.5, 1e-9);
    /* p95: rank 950, 50 of 90 in (1500, 2000]. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.95), (1500 + 500 * 50.0 / 90) / 1000, 1e-9);
    /* p99: rank 990, the top of (1500, 2000]. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.99), 2.0, 1e-9);
    /* p99.5: rank 995, 5 of 10 in (750 ms, 1 s]. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.995), 875.0, 1e-6);
}

Test(lat_quantile, a_uniform_spread)
{
    /* One count in each finite bucket: p50 is in bucket 17 (50, 75 ms]. */
    uint64_t c[NB] = {0};
    for (int i = 0; i < NB - 1; i++)
        c[i] = 1;
    /* rank 17.5: 17 seen, half of bucket 17. */
    cr_expect_float_eq(lv_lat_quantile(c, 0.5), 62.5, 1e-9);
    cr_expect_float_eq(lv_lat_quantile(c, 1), 60000.0, 1e-9);
}

Test(lat_quantile, the_open_bucket)
{
    /* Above 60 s there is no upper bound: the answer is at least 60 s. */
    uint64_t c[NB] = {0};
    c[INF_BUCKET] = 3;
    double p50 = lv_lat_quantile(c, 0.5);
    cr_expect_geq(p50, 60000.0, "p50 %f ms", p50);
    cr_expect_leq(lv_lat_quantile(c, 0), lv_lat_quantile(c, 0.99));
}

Test(lat_quantile, is_monotonic_in_q)
{
    uint64_t c[NB] = {0};
    c[2] = 7;
    c[3] = 1;
    c[9] = 13;
    c[20] = 2;
    c[INF_BUCKET] = 1;
    double last = -1;
    for (int i = 0; i <= 1000; i++) {
        double v = lv_lat_quantile(c, i / 1000.0);
        cr_expect_geq(v, last, "q %.3f: %f after %f", i / 1000.0, v, last);
        last = v;
    }
}
