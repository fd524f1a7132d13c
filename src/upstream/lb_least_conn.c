/*
 * least_connections: the eligible backend with the fewest requests in
 * flight (counted across all workers), relative to its weight; ties are
 * broken at random so that workers do not all pile onto the first one.
 */
#include <stdlib.h>

#include "core/rand.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"

static void *lc_create(size_t n)
{
    (void)n;
    return malloc(1);
}

static int lc_pick(void *state, const struct lv_pick *p)
{
    (void)state;
    int best = -1;
    int64_t best_active = 0, best_weight = 1;
    size_t ties = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!lv_pick_eligible(p, i)) continue;
        int64_t active = lv_backend_active(p->backends[i]);
        int64_t weight = p->weights[i];
        /* active/weight < best_active/best_weight, without division */
        int64_t lhs = active * best_weight, rhs = best_active * weight;
        if (best < 0 || lhs < rhs) {
            best = (int)i;
            best_active = active;
            best_weight = weight;
            ties = 1;
        } else if (lhs == rhs && lv_rand_below(p->rand, ++ties) == 0) {
            best = (int)i;
        }
    }
    return best;
}

const struct lv_balancer_ops lv_lb_least_connections = {"least_connections", lc_create, free,
                                                        lc_pick};
