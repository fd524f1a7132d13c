/* The per-worker pseudo-random generator (core/rand.c). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "core/rand.h"

Test(rand, below_stays_in_range)
{
    struct lv_rand r;
    lv_rand_seed(&r, 1);
    const uint64_t ns[] = {1, 2, 3, 7, 10, 1000, UINT64_MAX};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        for (int i = 0; i < 10000; i++) {
            uint64_t v = lv_rand_below(&r, ns[k]);
            cr_assert_lt(v, ns[k], "lv_rand_below(%llu) gave %llu", (unsigned long long)ns[k],
                         (unsigned long long)v);
        }
    }
}

Test(rand, below_one_is_always_zero)
{
    struct lv_rand r;
    lv_rand_seed(&r, 99);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(lv_rand_below(&r, 1), 0);
}

Test(rand, below_hits_every_value_of_a_small_range)
{
    struct lv_rand r;
    lv_rand_seed(&r, 12345);
    unsigned hits[7] = {0};
    for (int i = 0; i < 7000; i++)
        hits[lv_rand_below(&r, 7)]++;
    for (int v = 0; v < 7; v++) {
        /* expected 1000 each; a fair generator stays well inside this */
        cr_expect_gt(hits[v], 800, "value %d hit %u times", v, hits[v]);
        cr_expect_lt(hits[v], 1200, "value %d hit %u times", v, hits[v]);
    }
}

Test(rand, same_seed_same_sequence)
{
    struct lv_rand a, b;
    lv_rand_seed(&a, 42);
    lv_rand_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(lv_rand_next(&a), lv_rand_next(&b), "diverged at %d", i);
}

Test(rand, different_seeds_different_sequences)
{
    struct lv_rand a, b;
    lv_rand_seed(&a, 1);
    lv_rand_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += lv_rand_next(&a) == lv_rand_next(&b);
    cr_expect_eq(same, 0);
}

Test(rand, reseeding_restarts_the_sequence)
{
    struct lv_rand r;
    uint64_t first[8];
    lv_rand_seed(&r, 7);
    for (int i = 0; i < 8; i++)
        first[i] = lv_rand_next(&r);
    lv_rand_seed(&r, 7);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(lv_rand_next(&r), first[i]);
}

Test(rand, zero_seed_is_usable)
{
    /* splitmix64 seeding: seed 0 must not give xoshiro's all-zero state */
    struct lv_rand r;
    lv_rand_seed(&r, 0);
    cr_expect(r.s[0] | r.s[1] | r.s[2] | r.s[3]);
    uint64_t a = lv_rand_next(&r), b = lv_rand_next(&r);
    cr_expect_neq(a, b);
}

/* xoshiro256** reference values (first output after seeding s = {1, 2, 3, 4}). */
Test(rand, matches_xoshiro256starstar)
{
    struct lv_rand r = {{1, 2, 3, 4}};
    /* result = rotl(s1 * 5, 7) * 9 = rotl(10, 7) * 9 = 1280 * 9 */
    cr_expect_eq(lv_rand_next(&r), 11520);
    /* state after one step: s = {7, 0, 262146, 211106232532992} */
    cr_expect_eq(r.s[0], 7);
    cr_expect_eq(r.s[1], 0);
    cr_expect_eq(r.s[2], 262146);
    cr_expect_eq(r.s[3], 211106232532992ull);
    cr_expect_eq(lv_rand_next(&r), 0);
}

Test(rand, unit_in_half_open_interval)
{
    struct lv_rand r;
    lv_rand_seed(&r, 2024);
    double lo = 1, hi = 0, sum = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double u = lv_rand_unit(&r);
        cr_assert(u >= 0.0 && u < 1.0, "lv_rand_unit gave %f", u);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
        sum += u;
    }
    cr_expect_lt(lo, 0.001);
    cr_expect_gt(hi, 0.999);
    cr_expect(sum / n > 0.49 && sum / n < 0.51, "mean %f", sum / n);
}
