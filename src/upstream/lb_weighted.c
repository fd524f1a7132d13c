/*
 * weighted: smooth weighted round robin (the algorithm nginx uses). Each
 * pick adds every eligible backend's weight to its running score, takes the
 * highest, and subtracts the total from the winner: weights 5,1,1 give
 * a a b a c a a rather than a a a a a b c.
 */
#include <stdlib.h>

#include "upstream/balancer.h"

struct swrr {
    size_t n;
    int64_t current[];
};

static void *swrr_create(size_t n)
{
    struct swrr *s = calloc(1, sizeof(*s) + n * sizeof(int64_t));
    if (s) s->n = n;
    return s;
}

static int swrr_pick(void *state, const struct lv_pick *p)
{
    struct swrr *s = state;
    int64_t total = 0;
    int best = -1;
    for (size_t i = 0; i < p->n && i < s->n; i++) {
        if (!lv_pick_eligible(p, i)) continue;
        s->current[i] += p->weights[i];
        total += p->weights[i];
        if (best < 0 || s->current[i] > s->current[best]) best = (int)i;
    }
    if (best >= 0) s->current[best] -= total;
    return best;
}

const struct lv_balancer_ops lv_lb_weighted = {"weighted", swrr_create, free, swrr_pick};
