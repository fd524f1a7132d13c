/*
 * The power of two choices: two distinct eligible backends drawn at random,
 * the one with the lower cost wins (Mitzenmacher; Envoy's least_request,
 * HAProxy's random(2), nginx's "random two"). Nearly as good as scanning
 * for the least loaded, without every worker piling onto the same one.
 *
 * power_of_two: cost = requests in flight (all workers) / weight.
 * peak_ewma:    cost = peak EWMA latency × (requests in flight + 1) / weight
 *               (Finagle, Linkerd): slow backends get less, at once, and a
 *               backend that timed out rests until its estimate decays.
 *               One that has never answered costs nothing while idle and a
 *               penalty once busy, so it is tried but not flooded.
 */
#include <stdlib.h>

#include "core/rand.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"

#define NO_SAMPLE_PENALTY 1e9 /* µs per request in flight: above any real latency */

typedef double (*cost_fn)(const struct lv_pick *p, size_t i);

static void *p2c_create(size_t n)
{
    (void)n;
    return malloc(1);
}

static double load_cost(const struct lv_pick *p, size_t i)
{
    return (double)lv_backend_active(p->backends[i]) / p->weights[i];
}

static double ewma_cost(const struct lv_pick *p, size_t i)
{
    struct lv_backend *b = p->backends[i];
    double active = lv_backend_active(b);
    if (!lv_ewma_has_sample(&b->rtt)) return active * NO_SAMPLE_PENALTY;
    return lv_ewma_read(&b->rtt, p->now_ns, LV_EWMA_TAU_NS) * (active + 1) / p->weights[i];
}

/* The k-th eligible backend. */
static size_t nth_eligible(const struct lv_pick *p, size_t k)
{
    for (size_t i = 0; i < p->n; i++) {
        if (lv_pick_eligible(p, i) && k-- == 0) return i;
    }
    return 0; /* not reached: k < the count */
}

static int p2c(const struct lv_pick *p, cost_fn cost)
{
    size_t count = 0;
    for (size_t i = 0; i < p->n; i++)
        count += lv_pick_eligible(p, i);
    if (count == 0) return -1;
    if (count == 1) return (int)nth_eligible(p, 0);
    size_t ka = (size_t)lv_rand_below(p->rand, count);
    size_t kb = (size_t)lv_rand_below(p->rand, count - 1);
    if (kb >= ka) kb++;
    size_t a = nth_eligible(p, ka), b = nth_eligible(p, kb);
    double ca = cost(p, a), cb = cost(p, b);
    if (ca == cb) return (int)(lv_rand_below(p->rand, 2) ? a : b);
    return (int)(ca < cb ? a : b);
}

static int load_pick(void *state, const struct lv_pick *p)
{
    (void)state;
    return p2c(p, load_cost);
}

static int ewma_pick(void *state, const struct lv_pick *p)
{
    (void)state;
    return p2c(p, ewma_cost);
}

const struct lv_balancer_ops lv_lb_power_of_two = {"power_of_two", p2c_create, free, load_pick};
const struct lv_balancer_ops lv_lb_peak_ewma = {"peak_ewma", p2c_create, free, ewma_pick};
