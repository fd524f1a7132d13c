/* random: uniform over the eligible backends. */
#include <stdlib.h>

#include "core/rand.h"
#include "upstream/balancer.h"

static void *rnd_create(size_t n)
{
    (void)n;
    return malloc(1);
}

static int rnd_pick(void *state, const struct lv_pick *p)
{
    (void)state;
    size_t count = 0;
    for (size_t i = 0; i < p->n; i++)
        count += lv_pick_eligible(p, i);
    if (count == 0) return -1;
    size_t k = (size_t)lv_rand_below(p->rand, count);
    for (size_t i = 0; i < p->n; i++) {
        if (lv_pick_eligible(p, i) && k-- == 0) return (int)i;
    }
    return -1;
}

const struct lv_balancer_ops lv_lb_random = {"random", rnd_create, free, rnd_pick};
