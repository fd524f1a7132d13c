/* round_robin: each worker cycles through the eligible backends in order. */
#include <stdlib.h>

#include "upstream/balancer.h"

struct rr {
    size_t next;
};

static void *rr_create(size_t n)
{
    (void)n;
    return calloc(1, sizeof(struct rr));
}

static int rr_pick(void *state, const struct lv_pick *p)
{
    struct rr *rr = state;
    for (size_t k = 0; k < p->n; k++) {
        size_t i = (rr->next + k) % p->n;
        if (lv_pick_eligible(p, i)) {
            rr->next = i + 1;
            return (int)i;
        }
    }
    return -1;
}

const struct lv_balancer_ops lv_lb_round_robin = {"round_robin", rr_create, free, rr_pick};
