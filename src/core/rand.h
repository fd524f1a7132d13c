/*
 * A small, fast pseudo-random generator (xoshiro256**), one per worker.
 * Used for jitter and random balancing, never for anything secret.
 */
#ifndef LV_CORE_RAND_H
#define LV_CORE_RAND_H

#include <stdint.h>

struct lv_rand {
    uint64_t s[4];
};

void lv_rand_seed(struct lv_rand *r, uint64_t seed);
uint64_t lv_rand_next(struct lv_rand *r);
/* Uniform in [0, n); n > 0. */
uint64_t lv_rand_below(struct lv_rand *r, uint64_t n);
/* Uniform in [0, 1). */
double lv_rand_unit(struct lv_rand *r);

#endif
